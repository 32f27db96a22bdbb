"""Benchmarks of bink-python against the reference approach (see bench/README.md)."""
