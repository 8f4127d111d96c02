"""The console's pages: one module per part, each with a ``router``."""
