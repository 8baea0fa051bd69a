"""The core's root exception; every error the core raises derives from `CoreError`."""

from __future__ import annotations

__all__ = ["CoreError"]


class CoreError(Exception):
    """A rule of the core was broken by its caller (an illegal transition, an unknown id...)."""
