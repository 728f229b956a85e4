"""The wire protocol shared by the server, the browser and the CPython client."""
