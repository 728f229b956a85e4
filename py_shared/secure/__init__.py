"""Secure aggregation (Bonawitz et al. 2017; Bell et al. 2020): fixed-point codec, Shamir sharing, masks, rounds."""
