"""The pure core: decides, never does I/O, never reads the clock (see docs/architecture.md)."""
