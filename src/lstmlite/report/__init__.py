"""lstmlite.report."""
