"""Building blocks, one module per concern."""
