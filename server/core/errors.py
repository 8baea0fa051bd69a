"""The core's root exception; every error the core raises derives from `CoreError`."""

from __future__ import annotations

__all__ = ["CommandRefused", "CoreError"]


class CoreError(Exception):
    """A rule of the core was broken by its caller (an illegal transition, an unknown id...)."""


class CommandRefused(CoreError):
    """An agent's command cannot be carried out; `code` is the protocol's error code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
