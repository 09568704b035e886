"""lstmlite.cli."""
