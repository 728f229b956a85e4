"""Decentralized learning on the server: signaling and pacing only; peers exchange models among themselves."""
