"""How DataFusion's allocator treats memory, set before its library loads.

DataFusion's Python package links mimalloc, which asks Linux for transparent huge pages on
its 1 GiB arenas and hands freed memory back after ~0.1 s. A node that idles between tasks
then takes every page back as a fresh 2 MB huge page the kernel must zero first: measured on
a TPC-H Q8 task run twelve times 0.3 s apart, 47 % of the time went to clearing pages and the
median task took 292 ms, against 130 ms with huge pages off (and 0.3 s of system time instead
of 2 s). ``MIMALLOC_ALLOW_THP=0`` makes mimalloc turn them off for the process
(``PR_SET_THP_DISABLE``). Set ``MIMALLOC_ALLOW_THP=1`` in the environment to keep them.
"""

from __future__ import annotations

import os

os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")
