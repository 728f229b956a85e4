"""Turning a participant's data into examples: parsing, encoding, splitting. Pure Python: the platform reads
the files (the browser through `js`, the CLI from disk) and passes their contents in."""

from py_shared.data.examples import DataError, Examples

__all__ = ["DataError", "Examples"]
