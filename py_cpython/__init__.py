"""CPython implementations of py_shared's platform interfaces, shared by the server and the CLI."""
