"""lstmlite.export."""
