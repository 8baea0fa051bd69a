"""Brokers: one module per SMS broker's wire format, selected by name in `registry.py`."""
