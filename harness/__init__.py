"""Drives a real PyDisco server and headless Chromium; shared by the browser tests and the benchmarks."""
