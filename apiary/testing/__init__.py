"""A local S3 for tests and benchmarks: moto's server in its own process, and a proxy in front
of it that counts requests and injects faults. Needs the ``test`` or ``bench`` extra (moto)."""
