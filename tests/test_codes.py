"""The knowledge base: complete, self-consistent, and strict about syntax."""

import json
from pathlib import Path

import pytest

from smtp_reply_exporter.codes import CLASS_NAMES, WEIGHTS, CodeError, KnowledgeBase, KnowledgeBaseError
from smtp_reply_exporter.codes import knowledge_base as kb_
from smtp_reply_exporter.codes.knowledge import _load

FIXTURES = Path(__file__).parent / "fixtures"
RFC5321_CODES = [211, 214, 220, 221, 250, 251, 252, 354, 421, 450, 451, 452, 455,
                 500, 501, 502, 503, 504, 550, 551, 552, 553, 554, 555]
EXTENSION_CODES = {235: "4954", 334: "4954", 432: "4954", 454: "4954", 530: "4954", 534: "4954",
                   535: "4954", 538: "4954", 521: "7504", 556: "7504", 253: "1985", 458: "1985", 459: "1985"}


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return kb_()


@pytest.mark.parametrize("code", RFC5321_CODES)
def test_every_rfc5321_code_is_known(kb, code):
    entry = kb.basic(str(code))
    assert entry.known and "5321" in entry.rfc and entry.rfc_text


@pytest.mark.parametrize(("code", "rfc"), EXTENSION_CODES.items())
def test_extension_rfc_codes_are_known_with_their_rfc(kb, code, rfc):
    entry = kb.basic(str(code))
    assert entry.known and rfc in entry.rfc


def test_every_registry_entry_loads_with_title_rfc_and_basics(kb):
    registry = json.loads((FIXTURES / "iana_enhanced_codes.json").read_text())
    assert len(kb.enhanced_codes()) == len(registry["codes"]) == 81
    for raw in registry["codes"]:
        for klass in "245":
            entry = kb.enhanced(raw["code"].replace("X", klass))
            assert entry.known and entry.rfc == ", ".join(raw["rfc"])
            assert entry.associated_basic_codes == tuple(str(c) for c in raw["associated_basic_codes"])
    assert kb.enhanced("X.7.30").title == "REQUIRETLS support required"


def test_class_category_and_weight_follow_the_digits_for_every_basic_code(kb):
    categories = {"0": "syntax", "1": "information", "2": "connections", "3": "unspecified",
                  "4": "unspecified", "5": "mail system"}
    for entry in kb.basic_codes():
        assert entry.klass == entry.code[0] + "xx"
        assert entry.class_name == CLASS_NAMES[entry.klass]
        assert entry.category == categories[entry.code[1]]
        assert entry.weight in WEIGHTS
        expected = {"2": {"normal"}, "3": {"intermediate"}, "4": {"transient", "transient_pressure"},
                    "5": {"permanent"}}[entry.code[0]]
        assert entry.weight in expected, entry.code
        assert entry.meaning and entry.when and entry.fix


def test_221_is_normal_and_455_452_421_are_transient_pressure(kb):
    assert kb.basic("221").weight == "normal"
    for code in ("455", "452", "421"):
        assert kb.basic(code).weight == "transient_pressure"
    assert kb.basic("450").weight == "transient"
    assert kb.basic("550").weight == "permanent"


def test_prose_is_our_own_not_the_rfc_text(kb):
    for entry in kb.basic_codes():
        assert entry.meaning != entry.rfc_text


def test_unknown_wellformed_codes_fall_back_to_class_and_subject(kb):
    b = kb.basic("299")
    assert not b.known and b.klass == "2xx" and b.weight == "normal" and "Unregistered" in b.meaning
    e = kb.enhanced("4.9.99")
    assert not e.known and e.klass == "4" and e.weight == "transient" and "no entry X.9.99" in e.description
    e = kb.enhanced("5.1.99")
    assert not e.known and e.subject == "Addressing Status" and e.weight == "permanent"


@pytest.mark.parametrize("bad", ["45", "655", "abc", "", "2500", "1.2.3", "4.5", "4.05.3", "6.1.1"])
def test_malformed_codes_are_rejected(kb, bad):
    with pytest.raises(CodeError):
        kb.enhanced(bad) if "." in bad else kb.basic(bad)


def test_a_code_whose_class_disagrees_with_its_digit_fails_at_load():
    basic = _load("basic.json")
    basic["codes"][0] = dict(basic["codes"][0], **{"class": "5xx"})
    with pytest.raises(KnowledgeBaseError, match="disagrees with its first digit"):
        KnowledgeBase(basic, _load("enhanced.json"))


def test_a_wrong_weight_for_the_class_fails_at_load():
    basic = _load("basic.json")
    i = next(i for i, c in enumerate(basic["codes"]) if c["code"] == "221")
    basic["codes"][i] = dict(basic["codes"][i], weight="transient")
    with pytest.raises(KnowledgeBaseError, match="221: weight"):
        KnowledgeBase(basic, _load("enhanced.json"))
