"""Rules and dashboards against a real Prometheus scraping the exporter that follows a real Postfix
(and reads its queue).

221-only traffic leaves every alert silent; 455s make SmtpTransientPressure pending; every query of
every dashboard (the per-instance one and the fleet one) runs and returns data; every recording rule
produces series.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import have_postfix, wait_for
from e2e.prometheus import Prometheus
from e2e.test_postfix_e2e import Client

ROOT = Path(__file__).parents[2]
RULES = ROOT / "rules" / "smtp-reply-exporter.rules.yml"
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("SMTP_E2E_REQUIRED") != "1"
        and (not have_postfix() or shutil.which("prometheus") is None or os.geteuid() != 0),
        reason="needs Debian's postfix and prometheus, and root",
    ),
]


def grafana_to_promql(expr: str) -> str:
    """The substitutions Grafana makes before sending a query: all variables to "All"."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__range", "5m")
    return re.sub(r"\$(instance|mta|role)\b", ".*", expr)


def recorded_names() -> list[str]:
    return re.findall(r"^\s*- record: (\S+)$", RULES.read_text(), re.M)


def test_alerts_dashboards_and_recording_rules_on_a_real_prometheus(mta, exporter, tmp_path):
    postfix, _sink, _sink421 = mta
    exp = exporter("--log.path", str(postfix.log), "--tail.from-start", "--postfix.queue", str(postfix.root / "spool"))
    prom = Prometheus(tmp_path, exp.port, [RULES])
    try:
        client = Client()
        # Phase 1: normal mail only. 221 ends every session; nothing may fire or even be pending.
        for i in range(5):
            client.session(postfix.port, "client.test.example", [([f"ok{i}@dest.example"], True)])
        wait_for(lambda: prom.query('sum(smtp_replies_total{code="221"}) >= 5'), what="221s scraped")
        wait_for(lambda: prom.query('sum(smtp_deliveries_total{status="sent"}) >= 5'), timeout=60,
                 what="deliveries scraped")
        wait_for(lambda: prom.query("instance_mta_role_class:smtp_replies:rate5m"), what="recording rules")
        assert prom.alerts() == []

        # Phase 2: our smtpd answers 455 to many recipients: transient pressure; one remote server answers
        # 455 too (a throttling reply, by provider).
        client.session(postfix.port, "client.test.example", [(["busy455@test.example", "rcpt455@dest.example"],
                                                              True)])
        wait_for(lambda: prom.query('smtp_replies_total{code="455"}'), what="455 series scraped")
        for _ in range(10):
            client.session(postfix.port, "client.test.example", [(["busy455@test.example"] * 10, True)])
        alert = wait_for(lambda: next((a for a in prom.alerts() if a["labels"]["alertname"] ==
                                        "SmtpTransientPressure"), None), timeout=60, what="SmtpTransientPressure")
        assert alert["state"] in ("pending", "firing")
        assert alert["labels"]["code"] == "455" and alert["labels"]["role"] == "server"
        assert "cannot accommodate the parameters" in alert["annotations"]["description"]
        assert {a["labels"]["alertname"] for a in prom.alerts()} <= {
            "SmtpTransientPressure", "SmtpTransientReplyRatioHigh"}

        wait_for(lambda: prom.query("instance_mta_provider:smtp_remote_replies_throttling:rate5m"), timeout=60,
                 what="the remote 455 recorded")
        # Every recording rule produces series.
        for name in recorded_names():
            assert prom.query(name), f"recording rule {name} produced nothing"

        # Every panel query of every dashboard runs and returns data.
        assert DASHBOARDS
        for path in DASHBOARDS:
            board = json.loads(path.read_text())
            for panel in board["panels"]:
                for target in panel.get("targets", []):  # a row has none
                    result = prom.query(grafana_to_promql(target["expr"]))
                    assert result, f"{path.name}: panel {panel['title']!r} query returned no data"
            for var in board["templating"]["list"]:
                m = re.fullmatch(r"label_values\((.*), (\w+)\)", var.get("definition", ""))
                if m:
                    values = prom.api(f"label/{m.group(2)}/values", **{"match[]": grafana_to_promql(m.group(1))})
                    assert values, f"variable {var['name']} has no values"
    finally:
        prom.stop()
