"""Every parser against its sample file: the expected result is written beside each line."""

import json
from pathlib import Path

import pytest

from smtp_reply_exporter.parse import REGISTRY, line_parser

SAMPLES = Path(__file__).parent / "samples"
CORPUS = Path(__file__).parent / "fixtures" / "corpus"


def sample_cases(mta: str) -> list[tuple[int, dict, str]]:
    cases, expect = [], None
    for no, line in enumerate((SAMPLES / f"{mta}.log").read_text().splitlines(), 1):
        if line.startswith("#> "):
            expect = json.loads(line[3:])
        elif line and not line.startswith("#"):
            assert expect is not None, f"line {no} has no expectation"
            cases.append((no, expect, line))
            expect = None
    return cases


@pytest.mark.parametrize("mta", sorted(REGISTRY))
def test_every_registered_parser_has_a_sample_file(mta):
    assert len(sample_cases(mta)) >= 10


@pytest.mark.parametrize("mta", sorted(REGISTRY))
def test_sample_lines_parse_to_the_expected_replies(mta):
    parse = line_parser(mta)  # one parser for the whole file: it keeps per-transaction state
    for no, expect, line in sample_cases(mta):
        got = parse(line)
        assert got is not None, f"{mta}.log:{no} not recognised"
        assert [list(r) for r in got.replies] == expect["replies"], f"{mta}.log:{no}"
        assert [list(r) for r in got.warnings] == expect.get("warnings", []), f"{mta}.log:{no}"
        assert got.delivery == expect.get("delivery"), f"{mta}.log:{no}"
        assert got.deliveries == expect.get("deliveries", 1), f"{mta}.log:{no}"


def test_auto_detection_finds_the_same_as_the_named_parser():
    for mta in REGISTRY:
        auto, named = line_parser("auto"), line_parser(mta)
        for _no, _expect, line in sample_cases(mta):
            assert auto(line) == named(line)


def test_hand_checked_corpus_lines_agree():
    """The shared corpus's hand-checked answers (direction inbound = our server replied)."""
    role = {"inbound": "server", "outbound": "client"}
    checked = 0
    for raw in (CORPUS / "expected.jsonl").read_text().splitlines():
        case = json.loads(raw)
        got = line_parser("auto")(case["line"])
        assert got is None or got.mta == case["mta"]
        replies = [(r.role, r.command, r.code, r.enhanced or None) for r in (got.replies if got else ())]
        assert replies == [(role[r["direction"]], r["command"], r["code"], r["enhanced"]) for r in case["replies"]]
        assert (got.delivery if got else None) == case["delivery_status"]
        checked += 1
    assert checked == 87


def test_lines_of_other_programs_are_not_recognised():
    parse = line_parser()
    for line in ("Nov 28 12:01:11 mx dovecot[12]: imap-login: Login: user=<a>",
                 "Nov 28 12:01:11 mx postfix1[12345]: 550 5.1.1 foo",
                 "garbage 550 5.7.1 without a header", ""):
        assert parse(line) is None
