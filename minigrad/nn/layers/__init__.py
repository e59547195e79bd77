"""Layers by family; ``minigrad.nn`` re-exports every class."""
