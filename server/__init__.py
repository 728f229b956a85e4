"""PyDisco's server: static app, task API, federated aggregation, decentralized signaling."""
