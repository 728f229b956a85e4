"""Federated rounds on the server: one room per task, and the WebSocket endpoint clients join through."""
