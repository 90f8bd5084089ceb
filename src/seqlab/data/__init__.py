"""Data: formats, loaders, synthetic generators and checks."""
