"""Example data for the predefined tasks: one module per data set, each turning a pinned registry package into
the files a person would connect (a CSV, a zip of images with labels.csv, a plain text file)."""
