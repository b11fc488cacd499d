"""What `explain` and `compare` print: a code, or a pair of codes, in words an operator acts on."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from .codes import BasicCode, CodeError, EnhancedCode, knowledge_base


@dataclass(frozen=True, slots=True)
class Query:
    """One code as a person asked for it: basic, enhanced, or a basic+enhanced pair."""

    basic: BasicCode | None
    enhanced: EnhancedCode | None

    @property
    def code(self) -> str:
        return " ".join(part.code for part in (self.basic, self.enhanced) if part is not None)


def parse_query(text: str) -> Query:
    """Accept `455`, `4.5.3`, `X.5.3` and `455 4.5.3`; raise CodeError on anything else."""
    parts = text.split()
    kb = knowledge_base()
    if not parts:
        raise CodeError("empty code: give a reply code such as 455 or an enhanced code such as 4.5.3")
    if len(parts) == 1:
        if "." in parts[0]:
            return Query(None, kb.enhanced(parts[0]))
        return Query(kb.basic(parts[0]), None)
    if len(parts) == 2 and "." not in parts[0]:
        basic, enhanced = kb.basic(parts[0]), kb.enhanced(parts[1])
        if enhanced.klass not in ("X", basic.code[0]):
            raise CodeError(f"{text!r}: enhanced class {enhanced.klass} disagrees with reply code {basic.code}")
        return Query(basic, enhanced)
    raise CodeError(f"not a code or a 'basic enhanced' pair: {text!r}")


def _enhanced_dict(e: EnhancedCode) -> dict[str, Any]:
    return {
        "code": e.code,
        "class": e.klass,
        "class_name": e.class_name,
        "category": e.subject,
        "weight": e.weight,
        "meaning": f"{e.title}. {e.description}",
        "when": e.when,
        "fix": e.fix,
        "rfc": e.rfc,
        "title": e.title,
        "associated_basic_codes": list(e.associated_basic_codes),
        "known": e.known,
    }


def _basic_dict(b: BasicCode) -> dict[str, Any]:
    return {
        "code": b.code,
        "class": b.klass,
        "class_name": b.class_name,
        "category": b.category,
        "weight": b.weight,
        "meaning": b.meaning,
        "when": b.when,
        "fix": b.fix,
        "rfc": b.rfc,
        "rfc_text": b.rfc_text,
        "known": b.known,
    }


def as_dict(query: Query) -> dict[str, Any]:
    """One JSON object per code; a pair is the basic code with its enhanced part nested."""
    if query.basic is None:
        assert query.enhanced is not None
        return _enhanced_dict(query.enhanced)
    data = _basic_dict(query.basic)
    if query.enhanced is not None:
        data["code"] = query.code
        data["enhanced"] = _enhanced_dict(query.enhanced)
    return data


def _wrap(label: str, text: str | None, width: int = 78) -> str:
    return textwrap.fill(text or "-", width, initial_indent=f"  {label:<10}", subsequent_indent=" " * 12)


def explain_text(query: Query) -> str:
    parts = []
    for part in (query.basic, query.enhanced):
        if part is None:
            continue
        d = _basic_dict(part) if isinstance(part, BasicCode) else _enhanced_dict(part)
        head = f"{d['code']}  {d['class']} {d['class_name']} · {d['category']}"
        lines = [head, _wrap("weight", d["weight"] or "depends on the class it is used with")]
        lines += [_wrap(key, d[key]) for key in ("meaning", "when", "fix", "rfc")]
        if isinstance(part, BasicCode) and part.rfc_text:
            lines.append(_wrap("rfc text", f'"{part.rfc_text}"'))
        if isinstance(part, EnhancedCode) and part.associated_basic_codes:
            lines.append(_wrap("used with", ", ".join(part.associated_basic_codes)))
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _flat(query: Query) -> dict[str, Any]:
    """The fields compared side by side: the basic part when there is one, else the enhanced."""
    d = as_dict(query)
    d.pop("enhanced", None)
    return d


def differences(a: Query, b: Query) -> list[str]:
    """The differences an operator acts on, derived from class, weight and category."""
    da, db = _flat(a), _flat(b)
    weights = knowledge_base().weights
    out = []
    if da["class"] != db["class"]:
        out.append(f"Class: {da['code']} is {da['class_name']}, {db['code']} is {db['class_name']}.")
    else:
        out.append(f"Class: both are {da['class_name']} ({da['class']}).")
    for key, title in (("summary", "Weight"), ("retry", "Retry"), ("alerting", "Alerting")):
        wa, wb = weights.get(da["weight"] or ""), weights.get(db["weight"] or "")
        if wa and wb and wa != wb:
            out.append(f"{title}: {da['code']}: {wa[key]} {db['code']}: {wb[key]}")
        elif wa and wb:
            out.append(f"{title}: same for both ({da['weight']}): {wa[key]}")
    if da["category"] != db["category"]:
        out.append(f"Category: {da['code']} is about {da['category']}, {db['code']} about {db['category']}.")
    out.append(f"When {da['code']} is expected: {da['when']}")
    out.append(f"When {db['code']} is expected: {db['when']}")
    return out


def compare_dict(a: Query, b: Query) -> dict[str, Any]:
    return {"codes": [as_dict(a), as_dict(b)], "differences": differences(a, b)}


def compare_text(a: Query, b: Query, width: int = 100) -> str:
    da, db = _flat(a), _flat(b)
    col = (width - 14) // 2
    rows = [("", da["code"], db["code"])]
    for key, label in (
        ("class", "class"),
        ("class_name", "class name"),
        ("category", "category"),
        ("weight", "weight"),
        ("meaning", "meaning"),
        ("when", "when seen"),
        ("fix", "how to fix"),
        ("rfc", "rfc"),
    ):
        rows.append((label, str(da[key] or "-"), str(db[key] or "-")))
    lines = []
    for label, left, right in rows:
        lw, rw = textwrap.wrap(left, col) or [""], textwrap.wrap(right, col) or [""]
        for i in range(max(len(lw), len(rw))):
            lines.append(
                f"{label if i == 0 else '':<12}  {lw[i] if i < len(lw) else '':<{col}}  "
                f"{rw[i] if i < len(rw) else ''}".rstrip()
            )
        lines.append("")
    lines.append("Key differences")
    for diff in differences(a, b):
        lines.append(textwrap.fill(diff, width, initial_indent="  - ", subsequent_indent="    "))
    return "\n".join(lines)
