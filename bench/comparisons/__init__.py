"""The comparisons the harness runs, one module each: ours (bink-python) against the reference."""
