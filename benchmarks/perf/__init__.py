"""The pieces of `benchmarks/run.py`: load generation, server processes, client drivers and the report."""
