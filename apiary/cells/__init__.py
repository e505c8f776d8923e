"""Cells: the Parquet files of a frame, and the pure logic of the write path.

``types`` (frame column types), ``inputs`` (anything Arrow-shaped → ``pa.Table``), ``conform``
(fit data to the frame schema without ever losing or changing it), ``partition`` (split by
partition values), ``stats`` (min / max / null count for the ledger) and ``sizing`` (leafcutter
cell sizes). None of these modules touch storage.
"""
