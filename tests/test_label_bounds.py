"""Each label is bounded on its own, and a flood of invented codes never hides a registered one."""

import re

from smtp_reply_exporter.codes import knowledge_base
from smtp_reply_exporter.metrics import DEFAULT_MAX_SERIES, Counts
from test_metrics import LINE, feed

SAID = ("Nov 28 12:01:11 mx postfix/smtp[2]: 4E746: to=<a@b>, relay=mx[192.0.2.9]:25, delay=1, "
        "delays=0/0/0/1, dsn={enh}, status=deferred (host mx[192.0.2.9] said: {code} {enh} busy "
        "(in reply to RCPT command))\n")
GENUINE = {"mta": "postfix", "role": "client", "command": "RCPT", "code": "455", "class": "4xx",
           "enhanced_code": "4.5.3"}


def distinct_pairs(n: int) -> list[tuple[int, str]]:
    """`n` different (code, enhanced code) pairs over every class, subject and detail, 455 4.5.3 left out."""
    out = []
    for i in range(n + 1):
        j = i // 400
        pair = (200 + i % 400, f"{'245'[j % 3]}.{j // 3 % 10}.{j // 30}")
        if pair != (455, "4.5.3"):
            out.append(pair)
    return out[:n]


def test_a_flood_of_distinct_codes_beyond_the_cap_leaves_room_for_a_genuine_455_4_5_3():
    pairs = distinct_pairs(50_000)  # 38,000 series once folded: 3.8 times the cap
    flood = "".join(SAID.format(code=code, enh=enh) for code, enh in pairs).encode()
    counts, reg = feed(flood, Counts())
    feed(SAID.format(code=455, enh="4.5.3").encode(), counts)
    assert reg.get_sample_value("smtp_replies_total", GENUINE) == 1
    series = len(counts.replies) + len(counts.warnings) + len(counts.deliveries)
    assert series <= DEFAULT_MAX_SERIES
    dropped = {r: reg.get_sample_value("smtp_exporter_series_dropped_total", {"reason": r})
               for r in ("unregistered", "cap")}
    assert dropped["unregistered"] > 0 and dropped["cap"] == 0
    assert sum(counts.replies.values()) + sum(dropped.values()) == len(pairs) + 1  # lost ones are counted


def test_enhanced_code_labels_are_registered_codes_or_folded_to_class_and_subject():
    counts, _ = feed("".join(SAID.format(code=code, enh=enh) for code, enh in distinct_pairs(20_000)).encode())
    registered = {code.replace("X", klass) for code in knowledge_base().enhanced_codes() for klass in "245"}
    labels = {key[4] for key in counts.replies}
    folded = {label for label in labels if label not in registered}
    assert all(re.fullmatch(r"[245]\.(?:[0-7]\.x|x\.x)", label) for label in folded), folded
    assert len(labels) <= len(registered) + 3 * 8 + 3


def test_an_unregistered_detail_folds_into_its_subject_and_an_unregistered_subject_into_its_class():
    lines = [SAID.format(code=455, enh="4.5.999"), SAID.format(code=550, enh="5.42.1"),
             SAID.format(code=550, enh="5.7.26")]
    counts, _ = feed("".join(lines).encode())
    assert sorted(key[4] for key in counts.replies) == ["4.5.x", "5.7.26", "5.x.x"]


def test_an_unknown_reply_code_is_its_own_label_value():
    counts, _ = feed(SAID.format(code=299, enh="2.0.0").encode())
    assert [key[3] for key in counts.replies] == ["299"]


def test_registered_series_beyond_the_whole_cap_are_dropped_for_the_cap():
    lines = "".join(LINE.format(code=550, enh=f"5.7.{i}") for i in range(20))
    counts, reg = feed(lines.encode(), Counts(max_series=6))
    assert len(counts.replies) == 6
    assert reg.get_sample_value("smtp_exporter_series_dropped_total", {"reason": "cap"}) == 14
    assert reg.get_sample_value("smtp_exporter_series_dropped_total", {"reason": "unregistered"}) == 0


def test_unregistered_series_take_at_most_half_of_the_cap():
    lines = "".join(LINE.format(code=code, enh="4.0.0") for code in range(460, 480))
    counts, reg = feed(lines.encode(), Counts(max_series=10))
    assert len(counts.replies) == 5
    assert reg.get_sample_value("smtp_exporter_series_dropped_total", {"reason": "unregistered"}) == 15
