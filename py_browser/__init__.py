"""Runs only in Pyodide: the page's worker, tinygrad's WebGPU device, browser transports."""
