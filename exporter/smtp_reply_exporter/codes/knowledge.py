"""The knowledge base of SMTP reply codes, loaded once from packaged data and validated.

Facts come from RFC 5321 (and extension RFCs) and the IANA enhanced status code
registry; the operator-facing prose lives beside them in the same JSON files.
Unknown but well-formed codes fall back to their class and subject.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

# RFC 5321 section 4.2 allows 0-5 as second digit; software in the wild also sends
# 6-9 (e.g. 299), which stays well-formed here and falls back to "unassigned".
BASIC_SYNTAX = r"[2-5][0-9][0-9]"
# RFC 3463 section 2: class "." subject "." detail, 1-3 digits, no leading zeros.
ENHANCED_SYNTAX = r"[245]\.(?:0|[1-9][0-9]{0,2})\.(?:0|[1-9][0-9]{0,2})"
_BASIC = re.compile(BASIC_SYNTAX)
_ENHANCED = re.compile(r"([245Xx])\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})")

CLASS_NAMES = {
    "2xx": "Positive Completion",
    "3xx": "Positive Intermediate",
    "4xx": "Transient Negative Completion",
    "5xx": "Permanent Negative Completion",
}
CATEGORIES = {  # RFC 5321 section 4.2.1: the second digit
    "0": "syntax",
    "1": "information",
    "2": "connections",
    "3": "unspecified",
    "4": "unspecified",
    "5": "mail system",
}
_UNASSIGNED = "unassigned"
WEIGHTS = ("normal", "intermediate", "transient_pressure", "transient", "permanent")
_CLASS_WEIGHT = {"2": "normal", "3": "intermediate", "4": "transient", "5": "permanent"}


class CodeError(ValueError):
    """A code that is not a well-formed SMTP reply or enhanced status code."""


class KnowledgeBaseError(RuntimeError):
    """The packaged data contradicts itself (a bug in the data, caught at load)."""


@dataclass(frozen=True, slots=True)
class BasicCode:
    code: str
    klass: str
    class_name: str
    category: str
    weight: str
    meaning: str
    when: str
    fix: str
    rfc: str
    rfc_text: str | None
    known: bool


@dataclass(frozen=True, slots=True)
class EnhancedCode:
    code: str
    klass: str  # "2", "4", "5" or "X" for a class-less registry form
    class_name: str
    subject: str  # "Mail Delivery Protocol Status"
    title: str
    description: str
    weight: str | None
    when: str
    fix: str
    rfc: str
    associated_basic_codes: tuple[str, ...]
    known: bool


class KnowledgeBase:
    """Look-ups of basic and enhanced codes; built once by `knowledge_base()`."""

    def __init__(self, basic: dict[str, Any], enhanced: dict[str, Any]) -> None:
        self._basic = {entry["code"]: _basic_from_data(entry) for entry in basic["codes"]}
        self.weights: dict[str, dict[str, str]] = basic["weights"]
        if tuple(self.weights) != WEIGHTS:
            raise KnowledgeBaseError(f"weights must be exactly {WEIGHTS}")
        self._enh_classes = {c["code"]: c for c in enhanced["classes"]}
        self._enh_subjects = {s["code"].split(".")[1]: s for s in enhanced["subjects"]}
        self._enh_codes = {c["code"]: c for c in enhanced["codes"]}
        self._guidance = enhanced["guidance"]
        self._pressure = frozenset(self._guidance["pressure"])
        self.registry_updated: str = enhanced["registry"]["updated"]
        _validate_enhanced(self)

    def basic_codes(self) -> list[BasicCode]:
        return list(self._basic.values())

    def enhanced_codes(self) -> list[str]:
        return list(self._enh_codes)

    def is_known(self, code: str) -> bool:
        """Whether a basic code is one of the knowledge base's own (not a class fallback)."""
        return code in self._basic

    def enhanced_label(self, code: str) -> str:
        """A well-formed enhanced code as a bounded label value: itself when the registry has it, else
        folded to its class and subject ("4.5.x"; "4.x.x" when the subject is unregistered too)."""
        if not code:
            return ""
        klass, subject, detail = code.split(".")
        if f"X.{subject}.{detail}" in self._enh_codes:
            return code
        return f"{klass}.{subject}.x" if subject in self._enh_subjects else f"{klass}.x.x"

    def basic(self, code: str) -> BasicCode:
        code = code.strip()
        if not _BASIC.fullmatch(code):
            raise CodeError(f"not an SMTP reply code: {code!r} (expected three digits, 2xx-5xx)")
        known = self._basic.get(code)
        if known is not None:
            return known
        klass = code[0] + "xx"
        return BasicCode(
            code=code,
            klass=klass,
            class_name=CLASS_NAMES[klass],
            category=CATEGORIES.get(code[1], _UNASSIGNED),
            weight=_CLASS_WEIGHT[code[0]],
            meaning=f"Unregistered code: no RFC defines {code}; read it as a generic "
            f"{CLASS_NAMES[klass].lower()} reply ({CATEGORIES.get(code[1], _UNASSIGNED)} category).",
            when="Only from software that invents its own codes.",
            fix="Read the text that came with the reply and the sending software's documentation.",
            rfc="none",
            rfc_text=None,
            known=False,
        )

    def enhanced(self, code: str) -> EnhancedCode:
        match = _ENHANCED.fullmatch(code.strip())
        if not match:
            raise CodeError(
                f"not an enhanced status code: {code!r} (expected class.subject.detail, e.g. 4.5.3 or X.5.3)"
            )
        klass, subject, detail = match.group(1).upper(), match.group(2), match.group(3)
        generic = f"X.{subject}.{detail}"
        entry = self._enh_codes.get(generic)
        subj = self._enh_subjects.get(subject)
        guide = self._guidance["subjects"].get(subject, {})
        class_entry = self._enh_classes.get(klass)
        class_name = class_entry["title"] if class_entry else "Any class"
        weight = None if klass == "X" else _CLASS_WEIGHT[klass]
        if weight == "transient" and generic in self._pressure:
            weight = "transient_pressure"
        subject_title = subj["title"] if subj else "Unregistered subject"
        if entry is not None:
            title = entry["title"] or f"{generic} (untitled registry entry)"
            description, rfc = entry["description"], ", ".join(entry["rfc"])
            basics = tuple(str(b) for b in entry["associated_basic_codes"])
        else:
            title = f"Unregistered code {generic}"
            where = f"subject {subject_title}" if subj else f"an unregistered subject X.{subject}"
            description = (
                f"The IANA registry (updated {self.registry_updated}) has no entry {generic}; "
                f"read it by its class ({class_name}) and {where}."
            )
            rfc, basics = "none", ()
        return EnhancedCode(
            code=f"{klass}.{subject}.{detail}",
            klass=klass,
            class_name=class_name,
            subject=subject_title,
            title=title,
            description=description,
            weight=weight,
            when=guide.get("when", "Only from software that uses codes outside the registry."),
            fix=guide.get("fix", "Read the text that came with the reply."),
            rfc=rfc,
            associated_basic_codes=basics,
            known=entry is not None,
        )


def _basic_from_data(entry: dict[str, Any]) -> BasicCode:
    code, klass = entry["code"], entry["class"]
    if not _BASIC.fullmatch(code):
        raise KnowledgeBaseError(f"{code}: not a well-formed reply code")
    if klass != code[0] + "xx":
        raise KnowledgeBaseError(f"{code}: class {klass} disagrees with its first digit")
    if entry["category"] != CATEGORIES.get(code[1]):
        raise KnowledgeBaseError(f"{code}: category {entry['category']} disagrees with its second digit")
    weight = entry["weight"]
    allowed = {"4": ("transient", "transient_pressure")}.get(code[0], (_CLASS_WEIGHT[code[0]],))
    if weight not in allowed:
        raise KnowledgeBaseError(f"{code}: weight {weight} is not allowed for class {klass}")
    for field in ("meaning", "when", "fix", "rfc"):
        if not entry.get(field):
            raise KnowledgeBaseError(f"{code}: missing {field}")
    return BasicCode(
        code=code,
        klass=klass,
        class_name=CLASS_NAMES[klass],
        category=entry["category"],
        weight=weight,
        meaning=entry["meaning"],
        when=entry["when"],
        fix=entry["fix"],
        rfc=entry["rfc"],
        rfc_text=entry.get("rfc_text"),
        known=True,
    )


def _validate_enhanced(kb: KnowledgeBase) -> None:
    for code, entry in kb._enh_codes.items():
        match = _ENHANCED.fullmatch(code)
        if not match or match.group(1) != "X":
            raise KnowledgeBaseError(f"{code}: registry entries are class-less X.subject.detail")
        if match.group(2) not in kb._enh_subjects:
            raise KnowledgeBaseError(f"{code}: subject X.{match.group(2)} is not in the registry")
        for basic in entry["associated_basic_codes"]:
            if not _BASIC.fullmatch(str(basic)):
                raise KnowledgeBaseError(f"{code}: associated basic code {basic} is malformed")
    if set(kb._guidance["subjects"]) != set(kb._enh_subjects):
        raise KnowledgeBaseError("guidance must cover exactly the registry's subjects")


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files(__package__).joinpath(name).read_text("utf-8"))
    return data


@cache
def knowledge_base() -> KnowledgeBase:
    """The one knowledge base of the process, loaded and validated on first use."""
    return KnowledgeBase(_load("basic.json"), _load("enhanced.json"))
