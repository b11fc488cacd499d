"""The package runs compiled (mypyc, from setup.py) or as pure Python, and says which on /metrics.

tests/run.sh runs the suite against the pure editable install and the parser and end-to-end tests
again against the compiled wheel, telling each run which variant it must find (SMTP_EXPECT_VARIANT).
"""

from __future__ import annotations

import os
from importlib.machinery import EXTENSION_SUFFIXES

from prometheus_client import CollectorRegistry

from smtp_reply_exporter import parse
from smtp_reply_exporter.metrics import Counts, SmtpCollector
from smtp_reply_exporter.parse import exim, opensmtpd, postfix, sendmail


def build_info_variant() -> str:
    registry = CollectorRegistry()
    registry.register(SmtpCollector(Counts()))
    (sample,) = (s for fam in registry.collect() for s in fam.samples if s.name == "smtp_exporter_build_info")
    return sample.labels["variant"]


def test_build_info_names_the_variant_that_runs():
    compiled = [m.__file__.endswith(tuple(EXTENSION_SUFFIXES)) for m in (parse, postfix, exim, sendmail, opensmtpd)]
    assert all(compiled) or not any(compiled), "the parsers are compiled together or not at all"
    assert build_info_variant() == ("compiled" if all(compiled) else "pure")
    expected = os.environ.get("SMTP_EXPECT_VARIANT")
    if expected:  # tests/run.sh says which variant each of its runs must test
        assert build_info_variant() == expected
