"""lstmlite.train."""
