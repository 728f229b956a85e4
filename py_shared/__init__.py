"""Code shared by the browser, the CPython client and the server: pure Python + tinygrad, no I/O, no numpy."""

from py_shared.version import __version__

__all__ = ["__version__"]
