"""The namespace tree: hives → boxes → frames. Selecting a frame describes it; ``i`` puts its
name into the editor."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tui.data import Namespace

FramePath = tuple[str, str, str]


class NamespaceTree(Tree[tuple[str, ...]]):
    BINDINGS = [Binding("i", "insert_name", "Insert name")]

    class FrameSelected(Message):
        def __init__(self, hive: str, box: str, frame: str) -> None:
            super().__init__()
            self.hive, self.box, self.frame = hive, box, frame

    class InsertName(Message):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, **kwargs: object) -> None:
        super().__init__("hives", data=(), **kwargs)  # type: ignore[arg-type]
        self.show_root = False
        self.namespace: Namespace = {}

    def on_mount(self) -> None:
        self.border_title = "Hives"

    def show(self, namespace: Namespace) -> None:
        """Rebuild when the catalog changed, keeping what the user had expanded."""
        if namespace == self.namespace:
            return
        expanded = {n.data for n in _walk(self.root) if n.is_expanded}
        first = not self.namespace  # the first listing opens every box
        self.namespace = namespace
        self.clear()
        for hive, boxes in namespace.items():
            hive_node = self.root.add(hive, data=(hive,), expand=True)
            for box, frames in boxes.items():
                opened = first or (hive, box) in expanded
                box_node = hive_node.add(box, data=(hive, box), expand=opened)
                for frame in frames:
                    box_node.add_leaf(frame, data=(hive, box, frame))
        if not namespace:
            self.root.add_leaf("(no hives yet)", data=())

    def frames(self) -> list[str]:
        return [".".join(n.data) for n in _walk(self.root) if n.data and len(n.data) == 3]

    def on_tree_node_selected(self, event: Tree.NodeSelected[tuple[str, ...]]) -> None:
        data = event.node.data
        if data and len(data) == 3:
            event.stop()
            self.post_message(self.FrameSelected(*data))

    def action_insert_name(self) -> None:
        node = self.cursor_node
        if node is not None and node.data:
            self.post_message(self.InsertName(".".join(node.data)))


def _walk(node: TreeNode[tuple[str, ...]]) -> list[TreeNode[tuple[str, ...]]]:
    found = []
    for child in node.children:
        found.append(child)
        found.extend(_walk(child))
    return found
