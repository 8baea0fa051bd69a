"""SMS segmentation: how an outbound text is encoded, counted and cut into SMS parts.

Pure: no I/O, no clock. The alphabet is the `gsm0338` package's table, never written out here.

The rules (3GPP TS 23.038 / 23.040, as phones and brokers apply them):

- **Encoding.** GSM-7 when every character is in the GSM 03.38 default alphabet or its
  extension table; otherwise UCS-2. The ESC code (0x1B) is the extension table's escape, not a
  character: a text holding U+001B is UCS-2.
- **Cost.** GSM-7 counts septets: an extension character (``^ { } \\ [ ~ ] | €`` and form feed)
  is ESC + code, two septets. UCS-2 counts UTF-16 code units: a character outside the BMP (most
  emoji) is a surrogate pair, two units.
- **Limits.** A single SMS holds 160 septets or 70 units; a part of a concatenated SMS holds 153
  septets or 67 units (the rest carries the concatenation header). The whole text's encoding
  applies to every part.
- **Cuts.** Parts are cut at grapheme-cluster boundaries only (see `grapheme_clusters`), so an
  escape pair, a surrogate pair, an accented letter or an emoji sequence stays in one part.
  Only a single cluster longer than a whole part (say a letter under 80 combining marks) is cut
  inside, at code-point boundaries; a Python `str` holds code points, so even then no surrogate
  pair is split. There is no word-wrapping: a cut falls where the part is full.
  ``"".join(parts) == text`` always holds.
- **Empty text.** It is no SMS: 0 parts, 0 units, and the full single-message room left
  (`count_segments`), and no parts to send (`split_text`, `truncate_text`, `prepare`).

What to call:

- while the agent types: `count_segments` (encoding, parts, room left in the current part);
- before sending, with the broker's policy: `prepare` (`split_text` or `truncate_text`), which
  raises `TooLong` when a split needs more parts than the broker sends;
- when a new reply comes while another waits in the outbox: `consolidate`.

Errors: `TooLong` is a `server.core.errors.CommandRefused` (code ``"text_too_long"``), so a
reply command refused for its length reaches the agent as a command error.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from gsm0338.charset import BASIC_CHARACTER_SET, BASIC_CHARACTER_SET_EXTENSION

from server.core.errors import CommandRefused

__all__ = [
    "Encoding",
    "LongTextPolicy",
    "SegmentCount",
    "TooLong",
    "consolidate",
    "count_segments",
    "grapheme_clusters",
    "prepare",
    "split_text",
    "truncate_text",
]

Encoding = Literal["GSM-7", "UCS-2"]
LongTextPolicy = Literal["split", "truncate"]


@dataclass(frozen=True, slots=True)
class _Limits:
    """How much one SMS holds in an encoding: alone (`single`) or as a part (`per_part`)."""

    single: int
    per_part: int


_LIMITS: Final[Mapping[Encoding, _Limits]] = MappingProxyType(
    {"GSM-7": _Limits(single=160, per_part=153), "UCS-2": _Limits(single=70, per_part=67)}
)


def _gsm_septets() -> Mapping[str, int]:
    """Each GSM 03.38 character and its septets: 1 in the default alphabet, 2 in the extension.

    Built from the `gsm0338` package's tables (Unicode names by code). ESC is left out: it is the
    escape to the extension table, and a lone one would swallow the character after it.
    """
    septets = {
        unicodedata.lookup(name): 1 for name in BASIC_CHARACTER_SET.values() if name != "ESCAPE"
    }
    septets.update({unicodedata.lookup(name): 2 for name in BASIC_CHARACTER_SET_EXTENSION.values()})
    return MappingProxyType(septets)


_GSM_SEPTETS: Final[Mapping[str, int]] = _gsm_septets()


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """What a text costs as SMS, for the agent's counter before sending.

    `units` is the whole text's length in septets (GSM-7) or UTF-16 code units (UCS-2).
    `per_part` is the room of one part: the single-message limit (160 / 70) while the text fits
    one message, the multipart limit (153 / 67) once it needs more. `remaining_in_part` is the
    room left in the last part as `split_text` cuts it (a cut at a cluster boundary can leave a
    part a little short, so it is not always ``per_part - units % per_part``). An empty text
    counts 0 parts with the whole single-message room remaining.
    """

    encoding: Encoding
    parts: int
    units: int
    per_part: int
    remaining_in_part: int


class TooLong(CommandRefused):
    """The text needs more SMS parts than the broker sends (`count.parts` > `max_parts`).

    Shorten the text, or send it through a broker that takes more parts. `detail` says so in words
    an agent can read.
    """

    def __init__(self, *, count: SegmentCount, max_parts: int) -> None:
        unit = "characters" if count.encoding == "GSM-7" else "UTF-16 units"
        super().__init__(
            "text_too_long",
            f"the text needs {count.parts} SMS parts ({count.units} {unit}, {count.encoding}); "
            f"at most {max_parts} can be sent",
        )
        self.count = count
        self.max_parts = max_parts

    @property
    def parts_needed(self) -> int:
        """How many parts the text would take."""
        return self.count.parts


# -- encoding and cost -------------------------------------------------------------------------


def _encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in the GSM 03.38 tables, else UCS-2."""
    return "GSM-7" if all(char in _GSM_SEPTETS for char in text) else "UCS-2"


def _cost(chunk: str, encoding: Encoding) -> int:
    """`chunk`'s length in septets (GSM-7) or UTF-16 code units (UCS-2)."""
    if encoding == "GSM-7":
        return sum(_GSM_SEPTETS[char] for char in chunk)
    return sum(2 if ord(char) > 0xFFFF else 1 for char in chunk)


# -- grapheme clusters -------------------------------------------------------------------------

_ZWJ: Final = "\u200d"
_ZWNJ: Final = "\u200c"
_KEYCAP: Final = "\u20e3"
_CONTROL_CATEGORIES: Final = frozenset({"Cc", "Zl", "Zp"})
_MARK_CATEGORIES: Final = frozenset({"Mn", "Me", "Mc"})


def _is_control(char: str) -> bool:
    """Line and paragraph breaks and other controls stand alone (UAX #29 GB4, GB5)."""
    return unicodedata.category(char) in _CONTROL_CATEGORIES


def _is_regional_indicator(char: str) -> bool:
    """One letter of a flag (U+1F1E6..1F1FF); two make one flag."""
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _extends(char: str) -> bool:
    """Whether `char` belongs to the cluster before it (UAX #29 Extend, ZWJ and SpacingMark).

    Combining marks, ZWJ / ZWNJ, variation selectors, emoji skin-tone modifiers, emoji tag
    characters and the combining keycap.
    """
    code = ord(char)
    return (
        char in (_ZWJ, _ZWNJ, _KEYCAP)
        or 0xFE00 <= code <= 0xFE0F  # variation selectors (FE0F: emoji presentation)
        or 0xE0100 <= code <= 0xE01EF  # variation selectors supplement
        or 0x1F3FB <= code <= 0x1F3FF  # emoji modifiers (skin tones)
        or 0xE0020 <= code <= 0xE007F  # tags (subdivision flags such as England's)
        or unicodedata.combining(char) != 0
        or unicodedata.category(char) in _MARK_CATEGORIES
    )


def _joins(before: str, char: str, *, regional_run: int) -> bool:
    """Whether no cluster boundary falls between `before` and `char`.

    `regional_run` counts the regional indicators in a row that end with `before`: an odd count
    means `before` opens a flag that `char` may close.
    """
    if before == "\r":
        return char == "\n"  # CR LF is one cluster
    if _is_control(before) or _is_control(char):
        return False
    if _extends(char) or before == _ZWJ:
        return True  # GB9, GB9a; GB11 widened: ZWJ joins whatever follows it
    return _is_regional_indicator(char) and regional_run % 2 == 1


def grapheme_clusters(text: str) -> tuple[str, ...]:
    """`text` cut into user-perceived characters, an approximation of UAX #29's extended clusters.

    Kept together: CR LF; a base with its combining marks (Mn, Me, Mc), ZWJ / ZWNJ, variation
    selectors, skin-tone modifiers, tag characters and keycap (U+20E3); whatever follows a ZWJ
    (so ZWJ emoji sequences stay whole; UAX #29 asks for a pictograph there, which the standard
    library cannot tell, and joining more only means fewer places to cut); regional indicators
    in pairs, counted from the start of their run. Controls (Cc, Zl, Zp) stand alone, and a mark
    after one starts its own cluster. Not covered: Hangul jamo sequences and prepended
    concatenation marks, which are each cut like separate characters.
    """
    clusters: list[str] = []
    start = 0
    regional_run = 0
    for index in range(1, len(text)):
        before = text[index - 1]
        regional_run = regional_run + 1 if _is_regional_indicator(before) else 0
        if not _joins(before, text[index], regional_run=regional_run):
            clusters.append(text[start:index])
            start = index
    if text:
        clusters.append(text[start:])
    return tuple(clusters)


def _pieces(text: str, *, encoding: Encoding, room: int) -> Iterator[tuple[str, int]]:
    """The uncuttable pieces of `text` with their cost: its clusters, except that a cluster
    costing more than `room` comes code point by code point (the last resort)."""
    for cluster in grapheme_clusters(text):
        cost = _cost(cluster, encoding)
        if cost <= room:
            yield cluster, cost
        else:
            for char in cluster:
                yield char, _cost(char, encoding)


# -- counting, splitting, truncating -----------------------------------------------------------


def _cut(text: str, encoding: Encoding) -> tuple[str, ...]:
    """`text` as SMS parts in `encoding`: one when it fits a single message, else as few
    multipart-sized parts as cluster boundaries allow (each part filled before the next)."""
    limits = _LIMITS[encoding]
    if not text:
        return ()
    if _cost(text, encoding) <= limits.single:
        return (text,)
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for piece, cost in _pieces(text, encoding=encoding, room=limits.per_part):
        if used + cost > limits.per_part:
            parts.append("".join(current))
            current, used = [], 0
        current.append(piece)
        used += cost
    parts.append("".join(current))
    return tuple(parts)


def count_segments(text: str) -> SegmentCount:
    """The encoding, number of parts and room left that `text` would take, for the agent's
    counter. Counts what `split_text` cuts, so ``parts == len(split_text(text, ...))``."""
    encoding = _encoding_of(text)
    limits = _LIMITS[encoding]
    parts = _cut(text, encoding)
    per_part = limits.single if len(parts) <= 1 else limits.per_part
    last = _cost(parts[-1], encoding) if parts else 0
    return SegmentCount(
        encoding=encoding,
        parts=len(parts),
        units=_cost(text, encoding),
        per_part=per_part,
        remaining_in_part=per_part - last,
    )


def split_text(text: str, *, max_parts: int) -> tuple[str, ...]:
    """`text` cut into the SMS parts to send, in order; ``"".join`` of them is `text`.

    One part when it fits a single message (160 septets / 70 units), else parts of at most 153
    septets / 67 units cut at cluster boundaries. An empty text gives no parts. Raises `TooLong`
    when more than `max_parts` would be needed, and ValueError when `max_parts` is below 1.
    """
    if max_parts < 1:
        raise ValueError(f"max_parts must be at least 1, not {max_parts}")
    encoding = _encoding_of(text)
    parts = _cut(text, encoding)
    if len(parts) > max_parts:
        raise TooLong(count=count_segments(text), max_parts=max_parts)
    return parts


def truncate_text(text: str) -> str:
    """The longest beginning of `text` that fits ONE single SMS, cut at a cluster boundary.

    The beginning is measured in its own encoding: when the only non-GSM characters come late,
    the GSM-7 beginning before them may keep up to 160 septets, else up to 70 UTF-16 units are
    kept. Returns `text` itself when it fits, and "" for "". A cluster longer than a whole message
    (which no SMS could carry whole) is cut at a code point, as `split_text` does.
    """
    kept = 0  # length of the longest beginning found to fit
    septets = units = 0  # its cost in GSM-7 (while it is GSM) and in UCS-2
    gsm = True
    for piece, cost in _pieces(text, encoding="UCS-2", room=_LIMITS["UCS-2"].single):
        gsm = gsm and _encoding_of(piece) == "GSM-7"
        if gsm:
            septets += _cost(piece, "GSM-7")
        units += cost
        fits = septets <= _LIMITS["GSM-7"].single if gsm else units <= _LIMITS["UCS-2"].single
        if not fits:
            break  # a longer beginning costs no less, nor can it turn GSM again
        kept += len(piece)
    return text[:kept]


def prepare(text: str, *, long_text: LongTextPolicy, max_parts: int) -> tuple[str, ...]:
    """The SMS parts to send for `text` under a broker's policy for long texts.

    ``"split"``: `split_text` (raises `TooLong` beyond `max_parts`). ``"truncate"``: the one part
    `truncate_text` keeps; `max_parts` is not used. An empty text gives no parts.
    """
    if long_text == "split":
        return split_text(text, max_parts=max_parts)
    kept = truncate_text(text)
    return (kept,) if kept else ()


def consolidate(waiting: str, new: str, separator: str = "\n") -> str | None:
    """`waiting` + `separator` + `new` when that still fits ONE single SMS, else None.

    For adding a new reply to one still waiting in the outbox (PureConnect's consolidation). The
    limit is that of the combination's own encoding: a UCS-2 character in either text, or in the
    separator, brings it to 70 units. An empty text adds nothing and takes no separator.
    """
    combined = separator.join(text for text in (waiting, new) if text)
    count = count_segments(combined)
    return combined if count.parts <= 1 else None
