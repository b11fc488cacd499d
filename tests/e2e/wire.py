"""What the end-to-end tests compare: replies by role, command, code and enhanced code."""

from __future__ import annotations

from collections import Counter

Key = tuple[str, str, str, str]  # role, command, code, enhanced code


def scraped(exporter, mta: str) -> Counter[Key]:  # type: ignore[no-untyped-def]
    """smtp_replies_total on the exporter's /metrics, by role, command, code and enhanced code."""
    out: Counter[Key] = Counter()
    for labels, value in exporter.samples("smtp_replies_total").items():
        d = dict(labels)
        assert d["mta"] == mta and d["class"] == d["code"][0] + "xx"
        out[(d["role"], d["command"], d["code"], d["enhanced_code"])] += int(value)
    return out
