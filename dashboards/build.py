"""Writes dashboards/smtp-reply-exporter.json, the Grafana dashboard users import.

Plain dictionaries, no dashboard library: the panels are few and their queries are the point.
`python3 dashboards/build.py` regenerates the JSON; a test fails when the committed file differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("smtp-reply-exporter.json")
SEL = 'instance=~"$instance", mta=~"$mta", role=~"$role"'
INST = 'instance=~"$instance"'
DS = {"type": "prometheus", "uid": "${datasource}"}


def target(expr: str, legend: str = "", instant: bool = False, ref: str = "A") -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": DS, "expr": expr, "refId": ref, "legendFormat": legend or "__auto"}
    if instant:
        t.update(instant=True, range=False, format="table")
    return t


def ratio(klass: str) -> str:
    """Share of final replies in `klass`, per role; 0 rather than no data when there are none."""
    final = f'sum by (role) (rate(smtp_replies_total{{{SEL}, class=~"[245]xx"}}[$__rate_interval]))'
    part = f'sum by (role) (rate(smtp_replies_total{{{SEL}, class="{klass}"}}[$__rate_interval]))'
    return f"({part} or 0 * {final}) / {final}"


def panel(kind: str, title: str, description: str, targets: list[dict[str, Any]], grid: tuple[int, int, int, int],
          unit: str = "reqps", **extra: Any) -> dict[str, Any]:
    x, y, w, h = grid
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        **extra,
    }


def variable(name: str, query: str, label: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": name},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


def dashboard() -> dict[str, Any]:
    rate = "[$__rate_interval]"
    panels = [
        panel("timeseries", "Replies per second by class",
              "Every SMTP reply found in the logs, by class. 2xx includes 221, the normal end of a session.",
              [target(f"sum by (class) (rate(smtp_replies_total{{{SEL}}}{rate}))", "{{class}}")], (0, 0, 12, 8)),
        panel("timeseries", "Replies per second by code, with meaning",
              "The meaning comes from smtp_reply_code_info, joined on the code.",
              [target(f"sum by (code, meaning) (sum by (instance, code) (rate(smtp_replies_total{{{SEL}}}{rate})) "
                      f"* on (instance, code) group_left (meaning) smtp_reply_code_info{{{INST}}})",
                      "{{code}} {{meaning}}")], (12, 0, 12, 8)),
        panel("timeseries", "Transient (4xx) and permanent (5xx) ratio",
              "Share of final replies (2xx+4xx+5xx) that failed, per role. 221 counts as success.",
              [target(ratio(cls), f"{cls} {{{{role}}}}", ref=ref) for cls, ref in (("4xx", "A"), ("5xx", "B"))],
              (0, 8, 12, 8), unit="percentunit"),
        panel("timeseries", "221 (normal close) vs 455 (transient pressure)",
              "221 is the reply to QUIT: normal traffic. 455 means a server is short of a resource: retry later.",
              [target(f'sum by (role) (rate(smtp_replies_total{{{SEL}, code="221"}}{rate}))', "221 {{role}}"),
               target(f'sum by (role) (rate(smtp_replies_total{{{SEL}, code="455"}}{rate}))', "455 {{role}}",
                      ref="B")],
              (12, 8, 12, 8)),
        panel("table", "Codes seen, with meaning and how to fix",
              "Replies in the selected time range per code, joined with smtp_reply_code_info.",
              [target(f"sum by (code) (increase(smtp_replies_total{{{SEL}}}[$__range])) "
                      f"* on (code) group_left (class, weight, meaning, fix) "
                      f"max by (code, class, weight, meaning, fix) (smtp_reply_code_info{{{INST}}})", instant=True)],
              (0, 16, 24, 9), unit="short",
              transformations=[{"id": "organize", "options": {
                  "excludeByName": {"Time": True},
                  "indexByName": {"code": 0, "class": 1, "weight": 2, "Value": 3, "meaning": 4, "fix": 5},
                  "renameByName": {"Value": "replies"}}}]),
        panel("timeseries", "Deliveries per second by status",
              "Delivery attempts per recipient: sent, deferred, bounced, expired.",
              [target(f'sum by (status) (rate(smtp_deliveries_total{{{INST}, mta=~"$mta"}}{rate}))', "{{status}}")],
              (0, 25, 12, 8)),
        panel("timeseries", "Exporter: lines read and not recognised per second",
              "Health of the log sources.",
              [target(f"sum by (instance) (rate(smtp_exporter_lines_read_total{{{INST}}}{rate}))", "read {{instance}}"),
               target(f"sum by (instance) (rate(smtp_exporter_lines_unrecognised_total{{{INST}}}{rate}))",
                      "not recognised {{instance}}", ref="B")],
              (12, 25, 12, 8), unit="short"),
        panel("stat", "Exporter: age of the last line read",
              "Seconds since the exporter last read a log line, per source.",
              [target(f"time() - max by (instance, source) (smtp_exporter_last_line_timestamp_seconds{{{INST}}})",
                      "{{instance}} {{source}}")],
              (0, 33, 12, 6), unit="s"),
        panel("stat", "Exporter: rotations and truncations followed",
              "Log rotations and truncations in the selected time range.",
              [target(f"sum by (instance) (increase(smtp_exporter_rotations_total{{{INST}}}[$__range]))",
                      "rotations {{instance}}"),
               target(f"sum by (instance) (increase(smtp_exporter_truncations_total{{{INST}}}[$__range]))",
                      "truncations {{instance}}", ref="B")],
              (12, 33, 12, 6), unit="short"),
        panel("timeseries", "Exporter: lines with a reply no rule took (format drift)",
              "Lines of a known MTA that hold something shaped like a reply from which no reply was taken: a new "
              "wording, after an MTA upgrade for instance. 0 is normal; list them with "
              "smtp-reply-exporter parse --unparsed FILE.",
              [target(f"sum by (mta, program) (rate(smtp_exporter_lines_unparsed_total{{{INST}, mta=~\"$mta\"}}{rate}))"
                      " or on () vector(0)", "{{mta}} {{program}}")],
              (0, 39, 24, 7), unit="short"),
    ]
    for i, p in enumerate(panels, 1):
        p["id"] = i
    return {
        "uid": "smtp-reply-exporter",
        "title": "SMTP replies",
        "description": "SMTP reply codes sent and received by mail servers, with their meaning (smtp-reply-exporter).",
        "tags": ["smtp", "mail", "smtp-reply-exporter"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "timezone": "",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0},
            variable("instance", "label_values(smtp_exporter_build_info, instance)", "Instance"),
            variable("mta", 'label_values(smtp_replies_total{instance=~"$instance"}, mta)', "MTA"),
            variable("role", 'label_values(smtp_replies_total{instance=~"$instance"}, role)', "Role"),
        ]},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
