"""The loss library: one module per family, and a registry by name (``registry``)."""
