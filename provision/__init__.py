"""Scripted setup: system packages, the offline browser runtime, and our own browser wheel."""
