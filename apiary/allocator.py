"""How DataFusion's allocator treats memory, set before its library loads.

DataFusion's Python package links mimalloc, which asks Linux for transparent huge pages on
its 1 GiB arenas and hands freed memory back after ~0.1 s. A node that idles between tasks
then takes every page back as a fresh 2 MB huge page the kernel must zero first: measured on
a TPC-H Q8 task run twelve times 0.3 s apart, 47 % of the time went to clearing pages and the
median task took 292 ms, against 130 ms with huge pages off (and 0.3 s of system time instead
of 2 s). ``MIMALLOC_ALLOW_THP=0`` makes mimalloc turn them off for the process
(``PR_SET_THP_DISABLE``).

Even as small pages, memory handed back within ~0.1 s is taken back page by page (a fault
each) by the next query, which on a node comes a few hundred milliseconds later.
``MIMALLOC_PURGE_DELAY=1000`` keeps freed memory for reuse for a second (whole arenas ten)
before it goes back: `apiary bench tpch --sf 1`, two paired runs, Apiary's time 0.94 of
before (Q21 0.86, Q18 0.89, Q1 0.91), DuckDB's unchanged. A node's memory is bounded by its
bees' budgets either way; it is only returned to the system a little later.

Either variable set in the environment wins (``MIMALLOC_ALLOW_THP=1`` keeps huge pages,
``MIMALLOC_PURGE_DELAY=10`` is mimalloc's own default).
"""

from __future__ import annotations

import os

os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")
os.environ.setdefault("MIMALLOC_PURGE_DELAY", "1000")
