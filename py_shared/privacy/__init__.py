"""Differential privacy: clipping and Gaussian noise on updates, and the accountant that reports (epsilon, delta)."""
