"""Demonstration datasets, normalisation statistics and the image/prompt pipeline."""
