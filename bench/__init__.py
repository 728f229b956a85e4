"""Benchmarks: each module prints JSON lines, comparing against a reference measured in the same run."""
