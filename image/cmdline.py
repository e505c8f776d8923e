"""The kernel command line in ``cmdline.txt``: one line of space-separated arguments.

Raspberry Pi kernels boot with the memory cgroup disabled, so systemd's ``MemoryMax`` on the
node is only enforced once ``cgroup_enable=memory cgroup_memory=1`` is on that line.
"""

from __future__ import annotations

MEMORY_CGROUP = ("cgroup_enable=memory", "cgroup_memory=1")


def with_memory_cgroup(text: str) -> str:
    """``text`` with the memory cgroup enabled; every other argument kept, in order.

    Idempotent; a ``cgroup_disable=memory`` that would override it is dropped.
    """
    lines = text.splitlines()
    first = lines[0] if lines else ""
    args = [a for a in first.split() if a != "cgroup_disable=memory"]
    args += [a for a in MEMORY_CGROUP if a not in args]
    ending = "\n" if text.endswith("\n") or not text else ""
    return "\n".join([" ".join(args), *lines[1:]]) + ending
