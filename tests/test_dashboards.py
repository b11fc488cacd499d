"""The Grafana dashboards: generated, current, and written the way Grafana expects."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

DASHBOARDS = Path(__file__).parent.parent / "dashboards"
MAIN, FLEET = DASHBOARDS / "smtp-reply-exporter.json", DASHBOARDS / "smtp-reply-exporter-fleet.json"


def build():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(DASHBOARDS))
    try:
        import build as module
    finally:
        sys.path.pop(0)
    return module


def panels(path: Path) -> list[dict]:
    """The panels that query (rows only group them)."""
    return [p for p in json.loads(path.read_text())["panels"] if p["type"] != "row"]


def test_committed_dashboards_are_what_the_generator_writes():
    module = build()
    assert MAIN.read_text() == module.render(), "run: python3 dashboards/build.py"
    assert FLEET.read_text() == module.render_fleet(), "run: python3 dashboards/build.py"
    assert {p.name for p in DASHBOARDS.glob("*.json")} == {MAIN.name, FLEET.name}


def test_dashboard_has_variables_rate_interval_and_the_required_panels():
    board = json.loads(MAIN.read_text())
    assert board["schemaVersion"] >= 39 and board["uid"]
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "instance", "mta", "role"]
    titles = " | ".join(p["title"] for p in board["panels"])
    for needed in ("by class", "meaning", "ratio", "221", "455", "how to fix", "Deliveries", "Exporter",
                   "Queue", "Delivery delay", "stage", "Sessions", "provider"):
        assert needed in titles
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Queue", "Delivery delays", "Sessions", "Providers"]
    heatmap = next(p for p in board["panels"] if p["type"] == "heatmap")
    assert heatmap["targets"][0]["format"] == "heatmap" and "smtp_delivery_delay_seconds_bucket" in \
        heatmap["targets"][0]["expr"]


@pytest.mark.parametrize("path", [MAIN, FLEET], ids=lambda p: p.name)
def test_every_panel_says_what_normal_looks_like_and_uses_grafana_windows(path):
    for p in panels(path):
        assert "Normal" in p["description"], p["title"]
        assert p["datasource"]["uid"] == "${datasource}"
        for target in p["targets"]:
            for window in re.findall(r"\)?\}\[([^\]]+)\]", target["expr"]):  # range selectors follow a "}"
                assert window in ("$__rate_interval", "$__range"), target["expr"]
    all_panels = json.loads(path.read_text())["panels"]
    assert len({p["id"] for p in all_panels}) == len(all_panels)


def test_the_fleet_dashboard_ranks_every_instance_and_links_to_the_instance_dashboard():
    board, main = json.loads(FLEET.read_text()), json.loads(MAIN.read_text())
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "mta"]
    assert board["links"][0]["url"] == f"/d/{main['uid']}" and main["links"][0]["url"] == f"/d/{board['uid']}"
    tables = [p for p in board["panels"] if p["type"] == "table"]
    titles = " | ".join(p["title"] for p in tables)
    for needed in ("pressure", "Transient", "Permanent", "Oldest queued", "throttling", "p95"):
        assert needed in titles
    for table in tables:
        assert table["targets"][0]["expr"].startswith("topk(10, ")
        (link,) = table["fieldConfig"]["defaults"]["links"]
        assert link["url"].startswith(f"/d/{main['uid']}?var-instance=${{__data.fields.instance}}")


def test_generator_runs_as_a_script(tmp_path):
    out = subprocess.run([sys.executable, str(DASHBOARDS / "build.py")], capture_output=True, text=True)
    assert out.returncode == 0 and "wrote" in out.stdout
