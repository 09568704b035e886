"""lstmlite.importers."""
