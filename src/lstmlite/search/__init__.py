"""lstmlite.search."""
