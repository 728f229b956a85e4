"""Decentralized learning: the round logic every peer runs, whatever carries its connections."""
