"""Predefined tasks: their definitions (definitions/*.json) and the scripts that prepare their example data."""
