from __future__ import annotations

import pytest

from server.core.keywords import Keyword, classify_keyword


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", Keyword.STOP),
        ("stop", Keyword.STOP),
        ("  Stop.  ", Keyword.STOP),
        ("stop!!!", Keyword.STOP),
        ("Unsubscribe", Keyword.STOP),
        ("cancel", Keyword.STOP),
        ("END", Keyword.STOP),
        ("quit", Keyword.STOP),
        ("revoke", Keyword.STOP),
        ("optout", Keyword.STOP),
        ("Opt Out", Keyword.STOP),
        ("opt   out", Keyword.STOP),
        ("STOPALL", Keyword.STOP_ALL),
        ("stop all", Keyword.STOP_ALL),
        ("Start", Keyword.START),
        ("yes", Keyword.START),
        ("UNSTOP", Keyword.START),
        ("help", Keyword.HELP),
        ("HELP?", Keyword.HELP),
        ("info", Keyword.HELP),
        ("please stop", None),
        ("stop it", None),
        ("stopping", None),
        ("", None),
        ("yes please", None),
        ("s t o p", None),
    ],
)
def test_whole_body_keywords(body: str, expected: Keyword | None) -> None:
    assert classify_keyword(body) is expected
