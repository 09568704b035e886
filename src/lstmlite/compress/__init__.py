"""lstmlite.compress."""
