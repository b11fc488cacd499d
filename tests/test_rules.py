"""The alerting and recording rules: valid for promtool, unit-tested, and shaped like a mixin."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULES = Path(__file__).parent.parent / "rules"
RULE_FILE = RULES / "smtp-reply-exporter.rules.yml"
pytestmark = pytest.mark.skipif(shutil.which("promtool") is None and os.environ.get("SMTP_E2E_REQUIRED") != "1",
                                reason="needs promtool (Debian package prometheus)")


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULE_FILE.read_text())["groups"]
    return [r for g in groups for r in g["rules"] if "alert" in r]


def test_promtool_check_rules_is_clean():
    out = subprocess.run(["promtool", "check", "rules", str(RULE_FILE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_unit_tests_pass():
    tests = sorted(str(p) for p in (RULES / "tests").glob("*.yml"))
    out = subprocess.run(["promtool", "test", "rules", *tests], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_follows_the_mixin_conventions():
    runbook = (RULES / "runbook.md").read_text()
    anchors = {h.lower() for h in re.findall(r"^## (\w+)$", runbook, re.M)}
    for alert in alerts():
        name = alert["alert"]
        assert re.fullmatch(r"Smtp[A-Z][A-Za-z]+", name)
        assert alert["labels"]["severity"] in ("critical", "warning", "info")
        assert alert.get("for"), f"{name} has no for:"
        ann = alert["annotations"]
        assert ann["summary"] and "{{" not in ann["summary"] and "{{" in ann["description"]
        assert ann["runbook_url"].endswith(f"runbook.md#{name.lower()}") and name.lower() in anchors


def test_every_alert_has_a_firing_and_a_silent_case():
    cases = [t for p in (RULES / "tests").glob("*.yml") for t in yaml.safe_load(p.read_text())["tests"]]
    fires = {a["alertname"] for t in cases for a in t.get("alert_rule_test", []) if a.get("exp_alerts")}
    silent = {a["alertname"] for t in cases for a in t.get("alert_rule_test", []) if not a.get("exp_alerts")}
    names = {a["alert"] for a in alerts()}
    assert names <= fires and names <= silent


def test_the_221_flood_case_silences_every_alert():
    flood = yaml.safe_load((RULES / "tests" / "alerts.test.yml").read_text())["tests"][0]
    assert any('code="221"' in s["series"] for s in flood["input_series"])
    replies = [s["series"] for s in flood["input_series"] if s["series"].startswith("smtp_replies_total")]
    assert not any(re.search(r'code="[45]', s) for s in replies)
    assert {a["alertname"] for a in flood["alert_rule_test"] if not a["exp_alerts"]} == {a["alert"] for a in alerts()}
