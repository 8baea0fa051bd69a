"""Tests of the agent protocol: its JSON Schemas and the reference client."""
