"""Benchmarks: a vectorised synthetic dataset generator and ``make bench`` (``python -m bench.run_bench``)."""
