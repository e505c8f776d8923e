"""The whole-screen notice shown while the storage root cannot be read."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class Unreachable(Static):
    def show(self, storage: str, reason: str, every: float) -> None:
        text = Text("Storage root unreachable\n\n", style="bold red")
        text.append(f"{storage}\n\n", style="bold")
        text.append(f"{reason}\n\n")
        text.append(
            f"Retrying every {every:g} s; this screen goes away by itself when the root answers.\n"
            "Check the network, the endpoint and the credentials (apiary doctor checks all "
            "three). F3 still opens the SQL editor; ctrl+q quits.",
            style="dim",
        )
        self.update(text)
