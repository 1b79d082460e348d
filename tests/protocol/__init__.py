"""Pure, fast tests of the sans-IO protocol core."""
