"""Federated learning: the client's round state machine (shared by browser and CPython) and its status."""
