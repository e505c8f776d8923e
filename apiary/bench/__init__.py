"""Benchmarks behind `apiary bench`."""
