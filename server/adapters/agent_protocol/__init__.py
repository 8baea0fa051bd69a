"""The agent WebSocket protocol (docs/protocol.md): frame schemas, their validation, the gateway."""
