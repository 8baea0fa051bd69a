from __future__ import annotations

import unicodedata

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from server.core import sms_segments
from server.core.errors import CommandRefused, CoreError
from server.core.sms_segments import (
    SegmentCount,
    TooLong,
    consolidate,
    count_segments,
    grapheme_clusters,
    prepare,
    split_text,
    truncate_text,
)

BIG = 10_000  # max_parts for tests that are not about the limit


def _gsm_alphabet() -> tuple[str, ...]:
    """Every character the `gsm03.38` codec encodes, found by asking the codec (ESC excluded)."""
    found = []
    for code in range(0x10000):
        char = chr(code)
        if char == "\x1b":
            continue
        try:
            char.encode("gsm03.38")
        except UnicodeEncodeError:
            continue
        found.append(char)
    return tuple(found)


GSM_ALPHABET = _gsm_alphabet()
GSM_EXTENSION = tuple(c for c in GSM_ALPHABET if len(c.encode("gsm03.38")) == 2)

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧, 8 UTF-16 units
FLAG_FR = "\U0001f1eb\U0001f1f7"  # 🇫🇷, 4 units
THUMB_MEDIUM = "\U0001f44d\U0001f3fd"  # 👍🏽, 4 units
KEYCAP_ONE = "1\ufe0f\u20e3"  # 1️⃣, 3 units
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"  # 🏴󠁧󠁢󠁥󠁮󠁧󠁿
GRIN = "\U0001f600"  # 😀, 2 units
HEART = "\u2764\ufe0f"  # ❤️
E_ACUTE_COMBINING = "e\u0301"


def _units(text: str, encoding: str) -> int:
    """A text's cost measured by the codecs, not by the module under test."""
    if encoding == "GSM-7":
        return len(text.encode("gsm03.38"))
    return len(text.encode("utf-16-le")) // 2


# -- facts the expectations below rest on (asked of the codec, not guessed) --------------------


def test_the_alphabet_facts_used_below() -> None:
    for char in "éüÑåÇ@£$¥èùìòØøÅΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÜ§¿äöñà":
        assert len(char.encode("gsm03.38")) == 1, char
    for char in "^{}\\[~]|€\x0c":
        assert len(char.encode("gsm03.38")) == 2, char
    with pytest.raises(UnicodeEncodeError):
        "ç".encode("gsm03.38")  # only the capital Ç is in the default alphabet


def test_the_encoding_and_cost_of_every_bmp_character_agree_with_the_codec() -> None:
    gsm = set(GSM_ALPHABET)
    for code in range(0x10000):
        char = chr(code)
        count = count_segments(char)
        if char in gsm:
            assert (count.encoding, count.units) == ("GSM-7", len(char.encode("gsm03.38"))), code
        else:
            assert (count.encoding, count.units) == ("UCS-2", 1), code


def test_escape_is_not_a_character_to_send_in_gsm() -> None:
    assert count_segments("a\x1be").encoding == "UCS-2"


# -- encoding, counting and splitting ----------------------------------------------------------

MIXED = "Hello Привет مرحبا 你好 " * 5  # Latin, Cyrillic, Arabic, CJK: 110 BMP characters


@pytest.mark.parametrize(
    ("text", "encoding", "units", "part_lengths"),
    [
        pytest.param("a" * 160, "GSM-7", 160, [160], id="ascii-160-one-part"),
        pytest.param("a" * 161, "GSM-7", 161, [153, 8], id="ascii-161-two-parts"),
        pytest.param("a" * 306, "GSM-7", 306, [153, 153], id="ascii-306-two-parts"),
        pytest.param("a" * 307, "GSM-7", 307, [153, 153, 1], id="ascii-307-three-parts"),
        pytest.param("€" * 80, "GSM-7", 160, [80], id="euro-80-is-160-septets"),
        pytest.param("€" * 81, "GSM-7", 162, [76, 5], id="euro-81-two-parts"),
        pytest.param("\x0c" * 80, "GSM-7", 160, [80], id="form-feed-counts-two"),
        pytest.param("{[|]}~^\\" * 10, "GSM-7", 160, [80], id="extension-brackets-count-two"),
        pytest.param(
            "a" * 152 + "€" + "b" * 10, "GSM-7", 164, [152, 11], id="escape-pair-not-split"
        ),
        pytest.param("éüÑå" * 40, "GSM-7", 160, [160], id="accented-gsm-letters-stay-gsm"),
        pytest.param("Ç" * 160, "GSM-7", 160, [160], id="capital-c-cedilla-is-gsm"),
        pytest.param("ç" + "a" * 69, "UCS-2", 70, [70], id="small-c-cedilla-is-ucs2"),
        pytest.param("ç" + "a" * 70, "UCS-2", 71, [67, 4], id="small-c-cedilla-71"),
        pytest.param("я" * 70, "UCS-2", 70, [70], id="ucs2-70-one-part"),
        pytest.param("я" * 71, "UCS-2", 71, [67, 4], id="ucs2-71-two-parts"),
        pytest.param("я" * 134, "UCS-2", 134, [67, 67], id="ucs2-134-two-parts"),
        pytest.param("я" * 135, "UCS-2", 135, [67, 67, 1], id="ucs2-135-three-parts"),
        pytest.param(GRIN * 35, "UCS-2", 70, [35], id="emoji-counts-two-units"),
        pytest.param(GRIN * 36, "UCS-2", 72, [33, 3], id="emoji-36-two-parts"),
        pytest.param("я" * 66 + GRIN + "я" * 10, "UCS-2", 78, [66, 11], id="emoji-at-boundary"),
        pytest.param("я" * 60 + FAMILY + "я" * 10, "UCS-2", 78, [60, 15], id="zwj-family"),
        pytest.param("я" * 65 + FLAG_FR + "я" * 5, "UCS-2", 74, [65, 7], id="flag"),
        pytest.param("я" * 64 + THUMB_MEDIUM + "я" * 5, "UCS-2", 73, [64, 7], id="skin-tone"),
        pytest.param("я" * 65 + KEYCAP_ONE + "я" * 5, "UCS-2", 73, [65, 8], id="keycap"),
        pytest.param("я" * 60 + ENGLAND + "я" * 5, "UCS-2", 79, [60, 12], id="tag-sequence"),
        pytest.param(
            "я" * 66 + E_ACUTE_COMBINING + "я" * 5, "UCS-2", 73, [66, 7], id="combining-mark"
        ),
        pytest.param(MIXED, "UCS-2", 110, [67, 43], id="mixed-scripts"),
        pytest.param("", "GSM-7", 0, [], id="empty"),
    ],
)
def test_encoding_count_and_parts(
    text: str, encoding: str, units: int, part_lengths: list[int]
) -> None:
    parts = split_text(text, max_parts=BIG)
    assert [len(part) for part in parts] == part_lengths
    assert "".join(parts) == text
    count = count_segments(text)
    assert (count.encoding, count.units, count.parts) == (encoding, units, len(part_lengths))
    assert _units(text, encoding) == units


def test_a_part_boundary_leaves_clusters_whole() -> None:
    assert split_text("a" * 152 + "€" + "b" * 10, max_parts=2)[1].startswith("€")
    assert split_text("я" * 60 + FAMILY + "я" * 10, max_parts=2)[1].startswith(FAMILY)
    assert split_text("я" * 65 + FLAG_FR + "я" * 5, max_parts=2)[1].startswith(FLAG_FR)
    assert split_text("я" * 64 + THUMB_MEDIUM + "я" * 5, max_parts=2)[1].startswith(THUMB_MEDIUM)
    assert split_text("я" * 65 + KEYCAP_ONE + "я" * 5, max_parts=2)[1].startswith(KEYCAP_ONE)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", SegmentCount("GSM-7", 0, 0, 160, 160), id="empty-no-part"),
        pytest.param("Hi", SegmentCount("GSM-7", 1, 2, 160, 158), id="short"),
        pytest.param("a" * 160, SegmentCount("GSM-7", 1, 160, 160, 0), id="full-single"),
        pytest.param("a" * 161, SegmentCount("GSM-7", 2, 161, 153, 145), id="multipart"),
        pytest.param(
            "a" * 152 + "€" + "b" * 10,
            SegmentCount("GSM-7", 2, 164, 153, 141),
            id="last-part-after-a-short-cut",
        ),
        pytest.param("Hi " + GRIN, SegmentCount("UCS-2", 1, 5, 70, 65), id="ucs2-single"),
        pytest.param("я" * 71, SegmentCount("UCS-2", 2, 71, 67, 63), id="ucs2-multipart"),
    ],
)
def test_count_segments_for_the_agents_counter(text: str, expected: SegmentCount) -> None:
    assert count_segments(text) == expected


def test_a_cluster_longer_than_a_part_is_cut_at_code_points_as_a_last_resort() -> None:
    text = "a" + "\u0301" * 100  # one cluster, 101 units
    parts = split_text(text, max_parts=BIG)
    assert [len(part) for part in parts] == [67, 34]
    assert "".join(parts) == text


def test_an_astral_cluster_longer_than_a_part_is_cut_between_code_points() -> None:
    text = "\U0001f3f4" + "\U000e0067" * 40  # one tag sequence, 82 units
    parts = split_text(text, max_parts=BIG)
    assert "".join(parts) == text
    assert [_units(part, "UCS-2") for part in parts] == [66, 16]


# -- grapheme clusters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "clusters"),
    [
        pytest.param(FAMILY, [FAMILY], id="zwj-family"),
        pytest.param(
            FLAG_FR + "\U0001f1e9\U0001f1ea", [FLAG_FR, "\U0001f1e9\U0001f1ea"], id="flags"
        ),
        pytest.param(
            FLAG_FR + "\U0001f1e9", [FLAG_FR, "\U0001f1e9"], id="odd-regional-indicator-alone"
        ),
        pytest.param(THUMB_MEDIUM, [THUMB_MEDIUM], id="skin-tone"),
        pytest.param(KEYCAP_ONE + "2", [KEYCAP_ONE, "2"], id="keycap"),
        pytest.param(HEART, [HEART], id="variation-selector"),
        pytest.param("\u845b\U000e0100", ["\u845b\U000e0100"], id="ideographic-variation"),
        pytest.param(ENGLAND, [ENGLAND], id="tag-sequence"),
        pytest.param("e\u0301\u0323x", ["e\u0301\u0323", "x"], id="combining-marks"),
        pytest.param("\u0915\u093f", ["\u0915\u093f"], id="devanagari-spacing-mark"),
        pytest.param("a\r\nb", ["a", "\r\n", "b"], id="crlf"),
        pytest.param("\n\u0301", ["\n", "\u0301"], id="mark-after-control-stands-alone"),
        pytest.param("ab", ["a", "b"], id="letters"),
        pytest.param("", [], id="empty"),
    ],
)
def test_grapheme_clusters(text: str, clusters: list[str]) -> None:
    assert list(grapheme_clusters(text)) == clusters


# -- max_parts, truncation, policy -------------------------------------------------------------


def test_more_parts_than_the_broker_sends_is_refused() -> None:
    with pytest.raises(TooLong) as refused:
        split_text("a" * 307, max_parts=2)
    assert (refused.value.parts_needed, refused.value.max_parts) == (3, 2)
    assert refused.value.count == count_segments("a" * 307)
    assert isinstance(refused.value, CommandRefused)
    assert isinstance(refused.value, CoreError)
    assert refused.value.code == "text_too_long"
    assert "3 SMS parts" in refused.value.detail
    assert "at most 2" in refused.value.detail


def test_exactly_max_parts_is_sent() -> None:
    assert len(split_text("a" * 307, max_parts=3)) == 3
    assert split_text("a" * 160, max_parts=1) == ("a" * 160,)


def test_max_parts_below_one_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_parts"):
        split_text("hi", max_parts=0)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        pytest.param("Hello", "Hello", id="fits"),
        pytest.param("a" * 160, "a" * 160, id="exactly-160"),
        pytest.param("a" * 200, "a" * 160, id="gsm-cut-at-160"),
        pytest.param("a" * 159 + "€", "a" * 159, id="escape-pair-not-split"),
        pytest.param("a" * 158 + "€b", "a" * 158 + "€", id="escape-pair-kept-whole"),
        pytest.param("я" * 69 + GRIN, "я" * 69, id="surrogate-pair-not-split"),
        pytest.param("я" * 66 + FAMILY, "я" * 66, id="zwj-sequence-not-split"),
        pytest.param("я" * 67 + FLAG_FR, "я" * 67, id="flag-not-split"),
        pytest.param("я" * 69 + E_ACUTE_COMBINING, "я" * 69, id="combining-mark-not-split"),
        pytest.param(GRIN + "a" * 200, GRIN + "a" * 68, id="ucs2-cut-at-70-units"),
        pytest.param("a" * 100 + GRIN + "b", "a" * 100, id="gsm-beginning-longer"),
        pytest.param("a" * 50 + GRIN + "b" * 30, "a" * 50 + GRIN + "b" * 18, id="ucs2-beginning"),
        pytest.param("a" + "\u0301" * 100, "a" + "\u0301" * 69, id="overlong-cluster"),
        pytest.param("", "", id="empty"),
    ],
)
def test_truncate_keeps_the_longest_beginning_that_fits_one_message(text: str, kept: str) -> None:
    assert truncate_text(text) == kept


def test_prepare_applies_the_brokers_policy() -> None:
    text = "a" * 200
    assert prepare(text, long_text="split", max_parts=2) == ("a" * 153, "a" * 47)
    assert prepare(text, long_text="truncate", max_parts=1) == ("a" * 160,)
    assert prepare("", long_text="split", max_parts=1) == ()
    assert prepare("", long_text="truncate", max_parts=1) == ()
    with pytest.raises(TooLong):
        prepare(text, long_text="split", max_parts=1)


# -- consolidation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("waiting", "new", "combined"),
    [
        pytest.param("Hello", "World", "Hello\nWorld", id="fits"),
        pytest.param("a" * 100, "b" * 59, "a" * 100 + "\n" + "b" * 59, id="exactly-160"),
        pytest.param("a" * 100, "b" * 60, None, id="161-does-not-fit"),
        pytest.param("a" * 79, "€" * 40, "a" * 79 + "\n" + "€" * 40, id="euro-counts-two"),
        pytest.param("a" * 80, "€" * 40, None, id="euro-over"),
        pytest.param("a" * 60, "я" * 9, "a" * 60 + "\n" + "я" * 9, id="ucs2-exactly-70"),
        pytest.param("a" * 60, "я" * 10, None, id="ucs2-71-does-not-fit"),
        pytest.param("a" * 100, "я", None, id="one-ucs2-char-brings-the-limit-to-70"),
        pytest.param("a" * 60, GRIN * 5, None, id="emoji-counts-two"),
        pytest.param("", "new", "new", id="nothing-waiting"),
        pytest.param("waiting", "", "waiting", id="nothing-new"),
    ],
)
def test_consolidate(waiting: str, new: str, combined: str | None) -> None:
    assert consolidate(waiting, new) == combined


def test_consolidate_counts_the_separator_in_the_encoding() -> None:
    assert consolidate("a" * 30, "b" * 30, separator=" — ") == "a" * 30 + " — " + "b" * 30
    assert consolidate("a" * 40, "b" * 40, separator=" — ") is None  # the dash is UCS-2
    assert consolidate("a", "b", separator=" ") == "a b"


def test_all_names_are_exported() -> None:
    for name in sms_segments.__all__:
        assert hasattr(sms_segments, name)


# -- properties --------------------------------------------------------------------------------

_CONTROL = frozenset({"Cc", "Zl", "Zp"})


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in _CONTROL


def _is_extender(char: str) -> bool:
    """Characters that belong to the character before them (written apart from the module)."""
    code = ord(char)
    return (
        unicodedata.category(char) in {"Mn", "Me", "Mc"}
        or unicodedata.combining(char) != 0
        or char in "\u200c\u200d\u20e3"
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _cuts_a_cluster(text: str, at: int) -> bool:
    """Whether a cut of `text` before index `at` falls inside a user-perceived character."""
    before, after = text[at - 1], text[at]
    if before == "\r" and after == "\n":
        return True
    if _is_control(before) or _is_control(after):
        return False
    if _is_extender(after) or before == "\u200d":
        return True
    run = 0
    while at - 1 - run >= 0 and _is_regional_indicator(text[at - 1 - run]):
        run += 1
    return _is_regional_indicator(after) and run % 2 == 1


SEQUENCES = [FAMILY, FLAG_FR, THUMB_MEDIUM, KEYCAP_ONE, ENGLAND, GRIN, HEART, E_ACUTE_COMBINING]
gsm_texts = st.text(
    alphabet=st.one_of(st.sampled_from(GSM_ALPHABET), st.sampled_from(GSM_EXTENSION)),
    max_size=500,
)
emoji_texts = st.lists(
    st.one_of(
        st.sampled_from(SEQUENCES),
        st.sampled_from(["a", "я", " ", "€", "\u200d", "\u0301", "\U0001f1e9", "\ufe0f", "\r"]),
        st.sampled_from(["\n", "\U0001f3fd", "\u20e3"]),
    ),
    max_size=150,
).map("".join)
# A run of one-unit letters ending near a part's end, then sequences: cuts land in and around them.
boundary_texts = st.builds(
    lambda run, sequences, rest: "я" * run + "".join(sequences) + rest,
    st.integers(min_value=55, max_value=67),
    st.lists(st.sampled_from(SEQUENCES), min_size=1, max_size=6),
    emoji_texts,
)
any_texts = st.text(max_size=400)
texts = st.one_of(any_texts, gsm_texts, emoji_texts, boundary_texts)


def _fits_whole_clusters(text: str) -> bool:
    """No cluster is longer than a part (else the last-resort cut applies)."""
    return all(_units(cluster, "UCS-2") <= 67 for cluster in grapheme_clusters(text))


@given(texts)
def test_parts_rejoin_to_the_text(text: str) -> None:
    assert "".join(split_text(text, max_parts=BIG)) == text


@given(texts)
def test_every_part_fits_its_limit_in_the_whole_texts_encoding(text: str) -> None:
    parts = split_text(text, max_parts=BIG)
    encoding = count_segments(text).encoding
    single, per_part = (160, 153) if encoding == "GSM-7" else (70, 67)
    limit = single if len(parts) == 1 else per_part
    assert all(0 < _units(part, encoding) <= limit for part in parts)


@given(texts)
def test_no_part_starts_inside_a_cluster(text: str) -> None:
    assume(_fits_whole_clusters(text))
    parts = split_text(text, max_parts=BIG)
    at = 0
    for part in parts[:-1]:
        at += len(part)
        assert not _cuts_a_cluster(text, at), (text[at - 1 : at + 1], at)


@given(texts)
def test_no_part_ends_inside_a_surrogate_or_escape_pair(text: str) -> None:
    parts = split_text(text, max_parts=BIG)
    for part in parts:
        encoded = part.encode("utf-16-le")
        last_unit = int.from_bytes(encoded[-2:], "little")
        assert not 0xD800 <= last_unit <= 0xDBFF
    if count_segments(text).encoding == "GSM-7":
        septets = [part.encode("gsm03.38") for part in parts]
        assert all(not encoded.endswith(b"\x1b") for encoded in septets)
        assert b"".join(septets) == text.encode("gsm03.38")


@given(texts)
def test_the_count_matches_the_split(text: str) -> None:
    count = count_segments(text)
    parts = split_text(text, max_parts=BIG)
    assert count.parts == len(parts)
    assert count.units == _units(text, count.encoding)
    if parts:
        assert count.remaining_in_part == count.per_part - _units(parts[-1], count.encoding)


@given(texts)
def test_truncate_keeps_a_whole_cluster_beginning_that_fits_one_message(text: str) -> None:
    assume(_fits_whole_clusters(text))
    kept = truncate_text(text)
    assert text.startswith(kept)
    assert count_segments(kept).parts <= 1
    if text and len(kept) < len(text):
        assert kept
        assert not _cuts_a_cluster(text, len(kept))
        longer = "".join(grapheme_clusters(text)[: len(grapheme_clusters(kept)) + 1])
        assert count_segments(longer).parts > 1  # the next cluster would not fit
