"""Real MTAs' logs hold no line that looks like a reply yet gave none: lines_unparsed_total stays 0.

Each MTA's own end-to-end scenario runs again here, unchanged (its assertions included), and every
exporter it started is asked afterwards; for the MTAs that write a file, `parse --unparsed` on it must
print nothing either.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from e2e import test_exim_e2e, test_opensmtpd_e2e, test_postfix_e2e, test_sendmail_e2e


@pytest.fixture
def recorded(exporter: Any) -> Iterator[tuple[Any, list[Any]]]:
    """The `exporter` fixture, keeping every exporter the scenario starts."""
    started: list[Any] = []

    class Recorded(exporter):  # type: ignore[misc, valid-type]
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    yield Recorded, started


def scenario_of(module: ModuleType) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Runs a test only where the MTA's own end-to-end test runs (its marks: e2e and its skip reasons)."""
    def mark(test: Callable[..., None]) -> Callable[..., None]:
        for m in module.pytestmark:
            test = m(test)
        return test

    return mark


def assert_none_unparsed(started: list[Any], log: Path | None = None) -> None:
    assert started
    for exp in started:
        read = exp.value("smtp_exporter_lines_read_total")
        unparsed = exp.value("smtp_exporter_lines_unparsed_total")
        print(f"lines read {read:.0f}, unparsed {unparsed:.0f}")
        assert read > 0 and unparsed == 0, exp.samples("smtp_exporter_lines_unparsed_total")
    if log is not None:
        out = subprocess.run([sys.executable, "-m", "smtp_reply_exporter", "parse", "--unparsed", str(log)],
                             capture_output=True, text=True, check=True).stdout
        assert out == ""


@scenario_of(test_postfix_e2e)
def test_postfix_log_has_no_unparsed_line(mta, recorded, tmp_path):
    exporter, started = recorded
    test_postfix_e2e.test_counters_equal_the_replies_on_the_wire(mta, exporter, tmp_path)
    assert_none_unparsed(started, mta[0].log)


@scenario_of(test_exim_e2e)
def test_exim_log_has_no_unparsed_line(exim_mta, recorded):
    exporter, started = recorded
    test_exim_e2e.test_exim_counters_equal_the_replies_on_the_wire(exim_mta, exporter)
    assert_none_unparsed(started, exim_mta[0].log)


@scenario_of(test_opensmtpd_e2e)
def test_opensmtpd_log_has_no_unparsed_line(recorded):
    exporter, started = recorded
    test_opensmtpd_e2e.test_opensmtpd_counters_equal_the_replies_on_the_wire(exporter)
    assert_none_unparsed(started)


@scenario_of(test_sendmail_e2e)
def test_sendmail_log_has_no_unparsed_line(recorded):
    exporter, started = recorded
    test_sendmail_e2e.test_sendmail_counters_equal_the_replies_on_the_wire(exporter)
    assert_none_unparsed(started)
