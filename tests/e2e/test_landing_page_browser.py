"""The landing page rendered by a real headless browser (Debian's chromium): the table of codes seen."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from conftest import wait_for

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CHROMIUM is None and os.environ.get("SMTP_E2E_REQUIRED") != "1",
                       reason="needs Debian's chromium"),
]


class Rows(HTMLParser):
    """Cells of the rows of <table id="codes"> in the DOM the browser built."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_table = self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("id", "codes") in attrs:
            self._in_table = True
        elif self._in_table and tag == "tr":
            self.rows.append([])
        elif self._in_table and tag == "td":
            self._in_cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        elif tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[-1][-1] += data


def test_landing_page_lists_codes_seen_with_their_meaning_in_a_browser(exporter, tmp_path):
    exp = exporter()  # the bundled sample: real Postfix lines with 221s and 455s
    wait_for(lambda: exp.value("smtp_replies_total", code="455") > 0, what="sample counted")
    dom = subprocess.run(
        [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path}",
         "--dump-dom", f"http://127.0.0.1:{exp.port}/"],
        capture_output=True, text=True, timeout=120,
    ).stdout
    parser = Rows()
    parser.feed(dom)
    by_code = {row[0]: row for row in parser.rows if row}
    assert by_code["221"][1:3] == ["2xx", "normal"]
    assert "closing the connection in good order" in by_code["221"][4]
    assert by_code["455"][1:3] == ["4xx", "transient_pressure"]
    assert "cannot accommodate the parameters" in by_code["455"][4]
    assert int(by_code["455"][3]) == exp.value("smtp_replies_total", code="455")
