"""The Delta Lake protocol as Apiary speaks it: actions, schemas, values and checkpoints.

Pure logic over bytes and Arrow types (no storage): :mod:`apiary.ledger` reads and writes a
frame's ``_delta_log/`` with it. The protocol is ``PROTOCOL.md`` in delta-io/delta.
"""
