"""Compliance keywords: STOP and its kin, START, HELP (PRODUCT.md, capability 7).

A keyword is a text whose *whole* body, case folded, trimmed, with inner runs of white space made
one space and trailing punctuation dropped, is one of the words below. "Stop." is STOP;
"please stop texting me" is not a keyword.
"""

from __future__ import annotations

import enum
import string

__all__ = ["Keyword", "classify_keyword"]


class Keyword(enum.Enum):
    STOP = "stop"  # opt out from the number texted
    STOP_ALL = "stop_all"  # opt out from every number of the organisation
    START = "start"  # opt back in
    HELP = "help"  # answer with the configured help text


_WORDS: dict[str, Keyword] = {
    "stop": Keyword.STOP,
    "unsubscribe": Keyword.STOP,
    "cancel": Keyword.STOP,
    "end": Keyword.STOP,
    "quit": Keyword.STOP,
    "revoke": Keyword.STOP,
    "optout": Keyword.STOP,
    "opt out": Keyword.STOP,
    "stopall": Keyword.STOP_ALL,
    "stop all": Keyword.STOP_ALL,
    "start": Keyword.START,
    "yes": Keyword.START,
    "unstop": Keyword.START,
    "help": Keyword.HELP,
    "info": Keyword.HELP,
}

_TRAILING = string.punctuation + "\u00a1\u00bf\u2026\u3002\uff01\uff1f"


def classify_keyword(body: str) -> Keyword | None:
    """Return the keyword that `body` is in whole, or None when it is an ordinary text."""
    if len(body) > 32:
        return None
    folded = " ".join(body.casefold().split()).rstrip(_TRAILING).strip()
    return _WORDS.get(folded)
