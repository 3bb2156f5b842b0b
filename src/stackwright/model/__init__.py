"""The model layer: what users write."""
