"""The hot path reads a few shapes with str methods instead of the regexes that define them: each reading must
equal the regex's on any text, near misses included (run against the compiled variant too)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from smtp_reply_exporter.parse import exim

# Texts close to the shapes: real openings with characters replaced, cut or added from an alphabet of the
# characters that matter (digits, separators, signs, brackets, dashes, a non-ASCII digit and letter).
OPENINGS = ("2026-11-28 12:01:11 ", "2026-11-28 12:01:11 [123] ", "2026-11-28 12:01:11 +0100 ",
            "1vPzAb-000ABC-12 ", "1Ai79e-0000Dq-8i ", "1Ai79e--8i ", "1Ai79e-0000Dq- ")
ALPHABET = "0123456789- :+[]_abcZ\u0663\u00e9"


@st.composite
def near(draw: st.DrawFn) -> str:
    text = list(draw(st.sampled_from(OPENINGS)) + draw(st.text(ALPHABET, max_size=6)))
    for _ in range(draw(st.integers(0, 3))):
        text[draw(st.integers(0, len(text) - 1))] = draw(st.sampled_from(ALPHABET))
    return "".join(text)[: draw(st.integers(0, len(text)))]


PLAIN_STAMP = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?![+-])")


@settings(max_examples=1000, deadline=None)
@given(near())
def test_exim_plain_stamp_is_read_as_the_timestamp_regex_reads_it(text: str) -> None:
    m = PLAIN_STAMP.match(text)
    found = exim._plain_stamp(text)
    if found:  # what the fast path accepts the regex accepts, with the same stamp
        assert m is not None and m.group(1) == found
    else:  # what it leaves is an Exim line with more than a plain stamp, read by _PREFIX, or no stamp at all
        assert m is None or len(text) <= 20 or not m.group(1).isascii()


@settings(max_examples=1000, deadline=None)
@given(near())
def test_exim_message_id_is_read_as_the_prefix_regex_reads_it(text: str) -> None:
    m = re.compile(r"([^\W_]{6}-[^\W_]*-[^\W_]*) ").match(text)
    assert exim._message_id(text, 0) == ((m.group(1), text[m.end():]) if m else ("", text))
