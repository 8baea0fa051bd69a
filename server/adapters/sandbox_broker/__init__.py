"""The built-in sandbox broker: a real HTTP broker under `/sandbox/`, with a phone-side API.

It shares Parley's process and store but talks to Parley only over HTTP, as an outside broker
would. See docs/brokers.md, "The sandbox broker".
"""
