"""The HTTP side: broker webhooks, the read API, health, and the OpenAPI document."""
