"""PyDisco's version, shared by the server, the browser wheel and the CLI."""

__version__ = "0.1.0"
