"""Checking real answers against the OpenAPI document the server serves."""

from __future__ import annotations

from typing import Any

import jsonschema

from tests.end_to_end.conftest import Stack

__all__ = ["check", "served_document"]


def served_document(stack: Stack) -> dict[str, Any]:
    """The OpenAPI document as `GET /openapi.json` serves it."""
    with stack.client() as client:
        served: dict[str, Any] = client.get("/openapi.json").json()
        return served


def check(document: dict[str, Any], schema_name: str, instance: object) -> None:
    """Raise unless `instance` is valid against the document's schema `schema_name`."""
    jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    ).validate(instance)
