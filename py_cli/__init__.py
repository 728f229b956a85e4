"""The CPython client: the same py_shared code as the browser, fed from disk, for headless experiments."""

import os

# Before tinygrad is imported anywhere in the client: compute on the CPU device (kernels compiled by clang).
os.environ.setdefault("DEV", "CPU")
