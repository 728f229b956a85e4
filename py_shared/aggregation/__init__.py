"""Combining participants' updates into one: the aggregation rules and the per-round state that feeds them."""
