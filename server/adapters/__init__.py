"""Adapters: turn the outside world into core inputs, and core effects into I/O."""
