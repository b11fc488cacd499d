"""Writes the Grafana dashboards users import: dashboards/smtp-reply-exporter.json (one instance and its
MTA: replies, deliveries, queue, delays, sessions, providers) and smtp-reply-exporter-fleet.json (every
instance at once, linked to the first).

Plain dictionaries, no dashboard library: the panels are few and their queries are the point.
`python3 dashboards/build.py` regenerates the JSON; a test fails when a committed file differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("smtp-reply-exporter.json")
FLEET_OUT = Path(__file__).with_name("smtp-reply-exporter-fleet.json")
UID, FLEET_UID = "smtp-reply-exporter", "smtp-reply-exporter-fleet"
SEL = 'instance=~"$instance", mta=~"$mta", role=~"$role"'
INST = 'instance=~"$instance"'
DS = {"type": "prometheus", "uid": "${datasource}"}


def target(expr: str, legend: str = "", instant: bool = False, ref: str = "A", fmt: str = "") -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": DS, "expr": expr, "refId": ref, "legendFormat": legend or "__auto"}
    if instant:
        t.update(instant=True, range=False, format="table")
    if fmt:
        t["format"] = fmt
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


def row(title: str, y: int) -> dict[str, Any]:
    """A row header: panels below it, up to the next row, belong to it."""
    return {"type": "row", "title": title, "collapsed": False, "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
            "panels": []}


def throttling(sel: str, by: str, rate: str = "[$__rate_interval]") -> str:
    """Remote replies that throttle, per `by`: a 421, 452 or 455 (transient pressure) or a 4.7.x (policy,
    rate limits), each series once."""
    pressure = f'rate(smtp_remote_replies_total{{{sel}, code=~"421|452|455"}}{rate})'
    policy = f'rate(smtp_remote_replies_total{{{sel}, class="4xx", enhanced_code=~"4\\\\.7\\\\..+"}}{rate})'
    return f"sum by ({by}) ({pressure} or {policy})"


def throttling_ratio(sel: str, by: str, rate: str = "[$__rate_interval]") -> str:
    """Share of the final remote replies that throttle, per `by`; 0 rather than no data when none do."""
    final = f'sum by ({by}) (rate(smtp_remote_replies_total{{{sel}, class=~"[245]xx"}}{rate}))'
    return f"({throttling(sel, by, rate)} or 0 * {final}) / {final}"


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
              "Every SMTP reply found in the logs, by class. Normal: 2xx dominant; 2xx includes 221, the normal end "
              "of a session, which tracks connections.",
              [target(f"sum by (class) (rate(smtp_replies_total{{{SEL}}}{rate}))", "{{class}}")], (0, 0, 12, 8)),
        panel("timeseries", "Replies per second by code, with meaning",
              "The meaning comes from smtp_reply_code_info, joined on the code. Normal: 250 and 221 on top; 455, "
              "452 and 421 are pressure (a server short of a resource or throttling).",
              [target(f"sum by (code, meaning) (sum by (instance, code) (rate(smtp_replies_total{{{SEL}}}{rate})) "
                      f"* on (instance, code) group_left (meaning) smtp_reply_code_info{{{INST}}})",
                      "{{code}} {{meaning}}")], (12, 0, 12, 8)),
        panel("timeseries", "Transient (4xx) and permanent (5xx) ratio",
              "Share of final replies (2xx+4xx+5xx) that failed, per role. 221 counts as success. Normal: 4xx a "
              "few percent (greylisting), 5xx low on a relay and higher on a public MX rejecting spam.",
              [target(ratio(cls), f"{cls} {{{{role}}}}", ref=ref) for cls, ref in (("4xx", "A"), ("5xx", "B"))],
              (0, 8, 12, 8), unit="percentunit"),
        panel("timeseries", "221 (normal close) vs 455 (transient pressure)",
              "221 is the reply to QUIT: normal traffic, it tracks connections. 455 means a server is short of a "
              "resource: retry later. Normal: 455 at 0 however high 221 goes.",
              [target(f'sum by (role) (rate(smtp_replies_total{{{SEL}, code="221"}}{rate}))', "221 {{role}}"),
               target(f'sum by (role) (rate(smtp_replies_total{{{SEL}, code="455"}}{rate}))', "455 {{role}}",
                      ref="B")],
              (12, 8, 12, 8)),
        panel("table", "Codes seen, with meaning and how to fix",
              "Replies in the selected time range per code, joined with smtp_reply_code_info. Normal: mostly 2xx "
              "weights; the weight column names pressure (transient_pressure) apart from other failures.",
              [target(f"sum by (code) (increase(smtp_replies_total{{{SEL}}}[$__range])) "
                      f"* on (code) group_left (class, weight, meaning, fix) "
                      f"max by (code, class, weight, meaning, fix) (smtp_reply_code_info{{{INST}}})", instant=True)],
              (0, 16, 24, 9), unit="short",
              transformations=[{"id": "organize", "options": {
                  "excludeByName": {"Time": True},
                  "indexByName": {"code": 0, "class": 1, "weight": 2, "Value": 3, "meaning": 4, "fix": 5},
                  "renameByName": {"Value": "replies"}}}]),
        panel("timeseries", "Deliveries per second by status",
              "Delivery attempts per recipient: sent, deferred, bounced, expired. Normal: sent dominant, deferred "
              "a few percent (retried), expired rare.",
              [target(f'sum by (status) (rate(smtp_deliveries_total{{{INST}, mta=~"$mta"}}{rate}))', "{{status}}")],
              (0, 25, 12, 8)),
        panel("timeseries", "Exporter: lines read and not recognised per second",
              "Health of the log sources. Normal: lines read follow the MTA's traffic, not recognised near 0 on "
              "a mail-only log.",
              [target(f"sum by (instance) (rate(smtp_exporter_lines_read_total{{{INST}}}{rate}))", "read {{instance}}"),
               target(f"sum by (instance) (rate(smtp_exporter_lines_unrecognised_total{{{INST}}}{rate}))",
                      "not recognised {{instance}}", ref="B")],
              (12, 25, 12, 8), unit="short"),
        panel("stat", "Exporter: age of the last line read",
              "Seconds since the exporter last read a log line, per source. Normal: seconds on a busy MTA; "
              "minutes on a quiet one.",
              [target(f"time() - max by (instance, source) (smtp_exporter_last_line_timestamp_seconds{{{INST}}})",
                      "{{instance}} {{source}}")],
              (0, 33, 12, 6), unit="s"),
        panel("stat", "Exporter: rotations and truncations followed",
              "Log rotations and truncations in the selected time range. Normal: one rotation a day or week, "
              "as logrotate is set; truncations only with copytruncate.",
              [target(f"sum by (instance) (increase(smtp_exporter_rotations_total{{{INST}}}[$__range]))",
                      "rotations {{instance}}"),
               target(f"sum by (instance) (increase(smtp_exporter_truncations_total{{{INST}}}[$__range]))",
                      "truncations {{instance}}", ref="B")],
              (12, 33, 12, 6), unit="short"),
        panel("timeseries", "Exporter: lines with a reply no rule took (format drift)",
              "Lines of a known MTA that hold something shaped like a reply from which no reply was taken: a new "
              "wording, after an MTA upgrade for instance. Normal: 0; list them with "
              "smtp-reply-exporter parse --unparsed FILE.",
              [target(f"sum by (mta, program) (rate(smtp_exporter_lines_unparsed_total{{{INST}, mta=~\"$mta\"}}{rate}))"
                      " or on () vector(0)", "{{mta}} {{program}}")],
              (0, 39, 24, 7), unit="short"),
        *lifecycle_panels(46),
    ]
    return frame(
        UID, "SMTP replies",
        "SMTP reply codes sent and received by mail servers, with their meaning (smtp-reply-exporter).",
        {"title": "SMTP fleet", "type": "link", "url": f"/d/{FLEET_UID}", "keepTime": True,
         "tooltip": "Every instance at once"},
        [DATASOURCE,
         variable("instance", "label_values(smtp_exporter_build_info, instance)", "Instance"),
         variable("mta", 'label_values(smtp_replies_total{instance=~"$instance"}, mta)', "MTA"),
         variable("role", 'label_values(smtp_replies_total{instance=~"$instance"}, role)', "Role")],
        panels)


def frame(uid: str, title: str, description: str, link: dict[str, Any], variables: list[dict[str, Any]],
          panels: list[dict[str, Any]]) -> dict[str, Any]:
    """What both dashboards share around their panels, which are numbered here."""
    for i, p in enumerate(panels, 1):
        p["id"] = i
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["smtp", "mail", "smtp-reply-exporter"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "timezone": "",
        "annotations": {"list": []},
        "links": [link],
        "templating": {"list": variables},
        "panels": panels,
    }


def lifecycle_panels(y: int) -> list[dict[str, Any]]:
    """Rows for the queue, delivery delays, how sessions end and which provider pushes back."""
    rate = "[$__rate_interval]"
    mta = f'{INST}, mta=~"$mta"'
    return [
        row("Queue", y),
        panel("timeseries", "Queue: messages by queue",
              "Messages in the MTA's queue at each scrape (--postfix.queue, --exim.queue). Normal: active and "
              "incoming near zero and draining within seconds, deferred steady (mail for slow or dead "
              "destinations), hold only what an operator held. A deferred queue that only grows is mail not "
              "leaving: see the providers and delays rows.",
              [target(f"sum by (mta, queue) (smtp_queue_messages{{{mta}}})", "{{mta}} {{queue}}")],
              (0, y + 1, 8, 8), unit="short"),
        panel("timeseries", "Queue: age of the oldest message",
              "Normal: seconds in active and incoming; in deferred up to the retry schedule, and up to the queue "
              "lifetime (Postfix maximal_queue_lifetime, 5 days) for a dead destination. Hold and frozen wait "
              "on purpose.",
              [target(f"max by (mta, queue) (smtp_queue_oldest_message_age_seconds{{{mta}}})",
                      "{{mta}} {{queue}}")],
              (8, y + 1, 8, 8), unit="s"),
        panel("timeseries", "Queue: size",
              "Bytes of the queued messages, per queue: a few large messages or many small ones tell apart "
              "what the message count alone does not. Normal: follows the message count.",
              [target(f"sum by (mta, queue) (smtp_queue_size_bytes{{{mta}}})", "{{mta}} {{queue}}")],
              (16, y + 1, 8, 8), unit="bytes"),
        row("Delivery delays", y + 9),
        panel("heatmap", "Delivery delay of delivered mail (arrival to delivery)",
              "Each delivered recipient by the time from the message's arrival to its delivery (Postfix delay=, "
              "Exim QT=, Sendmail and OpenSMTPD delay=). Normal: a band under a second or two; a second band "
              "at minutes to hours is mail delivered after retries.",
              [target(f'sum by (le) (increase(smtp_delivery_delay_seconds_bucket{{{mta}, status="sent"}}{rate}))',
                      "{{le}}", fmt="heatmap")],
              (0, y + 10, 12, 9), unit="s",
              options={"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1,
                       "color": {"mode": "scheme", "scheme": "Oranges"}}),
        panel("timeseries", "Delivery delay p50 and p95 by outcome",
              "Quantiles from the histogram, per outcome. Normal: sent in seconds; deferred and bounced can be "
              "long (they are retries and give-ups).",
              [target(f"histogram_quantile({q}, sum by (status, le) "
                      f"(rate(smtp_delivery_delay_seconds_bucket{{{mta}}}{rate})))",
                      f"p{int(q * 100)} {{{{status}}}}", ref=ref) for q, ref in ((0.5, "A"), (0.95, "B"))],
              (12, y + 10, 12, 9), unit="s"),
        panel("timeseries", "Postfix: where the time goes (p95 by stage)",
              "delays=a/b/c/d: before the queue manager (reception, cleanup), in the queue manager (waiting for "
              "a delivery agent: concurrency limits, a busy queue), connection setup (DNS, greeting, TLS), "
              "transmission. Normal: each well under a second; connection setup of seconds is slow DNS or slow "
              "remote greetings.",
              [target(f"histogram_quantile(0.95, sum by (stage, le) "
                      f"(rate(smtp_delivery_stage_delay_seconds_bucket{{{INST}}}{rate})))", "{{stage}}")],
              (0, y + 19, 24, 7), unit="s"),
        row("Sessions", y + 26),
        panel("timeseries", "Sessions by how they ended",
              "quit is the 221 counted above: it tracks connections. Normal: quit close to all sessions; lost "
              "after CONNECT or EHLO from scanners on a public MX. lost or timeout at DATA rising next to flat "
              "quits is a middlebox or a crash; rejected is a 421 (or a remote's 554 greeting).",
              [target(f"sum by (role, end) (rate(smtp_sessions_total{{{SEL}}}{rate}))", "{{role}} {{end}}")],
              (0, y + 27, 12, 8)),
        panel("timeseries", "Sessions that did not end with QUIT, by last command",
              "The command the log names for sessions lost, timed out, ended by too many errors or rejected. "
              "Normal: CONNECT and EHLO (probes, scanners); DATA is a message cut short.",
              [target(f'sum by (role, end, command) (rate(smtp_sessions_total{{{SEL}, end!="quit"}}{rate}))',
                      "{{role}} {{end}} {{command}}")],
              (12, y + 27, 12, 8)),
        row("Providers", y + 35),
        panel("timeseries", "Remote replies by provider and class",
              "Replies of remote servers (client role) by the mailbox provider their host name belongs to "
              "(--remote.providers; other for the rest). Normal: 2xx dominant for each provider.",
              [target(f"sum by (provider, class) (rate(smtp_remote_replies_total{{{mta}}}{rate}))",
                      "{{provider}} {{class}}")],
              (0, y + 36, 12, 8)),
        panel("timeseries", "Throttling share by provider (421, 452, 455, 4.7.x)",
              "Share of each provider's final replies that are pressure (421, 452, 455) or policy and rate "
              "limits (4.7.x). Normal: near 0; a provider above a few percent is slowing us down "
              "(SmtpProviderThrottling).",
              [target(throttling_ratio(mta, "provider"), "{{provider}}")],
              (12, y + 36, 12, 8), unit="percentunit"),
        panel("table", "Remote codes by provider",
              "Remote replies in the selected time range per provider, code and enhanced code. Normal: 250 on "
              "top for each provider; 421 and 4.7.x rows are the provider pushing back.",
              [target("sum by (provider, code, enhanced_code) "
                      f"(increase(smtp_remote_replies_total{{{mta}}}[$__range]))", instant=True)],
              (0, y + 44, 24, 8), unit="short",
              transformations=[{"id": "organize", "options": {
                  "excludeByName": {"Time": True},
                  "indexByName": {"provider": 0, "code": 1, "enhanced_code": 2, "Value": 3},
                  "renameByName": {"Value": "replies"}}}]),
    ]


def fleet() -> dict[str, Any]:
    """Every instance at once: the worst first, each linked to the per-instance dashboard."""
    rate = "[$__rate_interval]"
    sel = 'mta=~"$mta"'
    link = [{"title": "Open this instance",
             "url": f"/d/{UID}?var-instance=${{__data.fields.instance}}&${{__url_time_range}}"}]

    def top(title: str, description: str, expr: str, grid: tuple[int, int, int, int], unit: str) -> dict[str, Any]:
        p = panel("table", title, description, [target(f"topk(10, {expr})", instant=True)], grid, unit=unit,
                  transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}])
        p["fieldConfig"]["defaults"]["links"] = link
        return p

    final = f'sum by (instance) (rate(smtp_replies_total{{{sel}, class=~"[245]xx"}}{rate}))'
    panels = [
        top("Transient pressure: 421, 452, 455 per second",
            "Replies that mean a server is short of a resource or throttling, per instance (either role). "
            "Normal: near 0; 221s, which track connections, are not pressure.",
            f'sum by (instance) (rate(smtp_replies_total{{{sel}, code=~"421|452|455"}}{rate}))',
            (0, 0, 8, 9), "reqps"),
        top("Transient (4xx) ratio of final replies",
            "Normal: a few percent (greylisting); 221 counts as success.",
            f'(sum by (instance) (rate(smtp_replies_total{{{sel}, class="4xx"}}{rate})) or 0 * {final}) / {final}',
            (8, 0, 8, 9), "percentunit"),
        top("Permanent (5xx) ratio of final replies",
            "Normal: low for a relay; a public MX rejecting spam runs higher.",
            f'(sum by (instance) (rate(smtp_replies_total{{{sel}, class="5xx"}}{rate})) or 0 * {final}) / {final}',
            (16, 0, 8, 9), "percentunit"),
        top("Oldest queued message",
            "Age of the oldest message in any queue but hold and frozen. Normal: seconds to the retry "
            "schedule; days for a dead destination.",
            f'max by (instance) (smtp_queue_oldest_message_age_seconds{{{sel}, queue!~"hold|frozen"}})',
            (0, 9, 8, 9), "s"),
        top("Provider throttling share",
            "Per instance and provider, the share of remote replies that are 421, 452, 455 or 4.7.x. Normal: "
            "near 0.", throttling_ratio(sel, "instance, provider"), (8, 9, 8, 9), "percentunit"),
        top("Delivery delay p95 (delivered mail)",
            "Normal: seconds. Minutes to hours: mail waits in the queue.",
            "histogram_quantile(0.95, sum by (instance, le) "
            f'(rate(smtp_delivery_delay_seconds_bucket{{{sel}, status="sent"}}{rate})))', (16, 9, 8, 9), "s"),
        top("Sessions cut short at DATA per second",
            "Sessions lost or timed out in the middle of a message. Normal: near 0.",
            f'sum by (instance) (rate(smtp_sessions_total{{{sel}, end=~"lost|timeout", command="DATA"}}{rate}))'
            f" or 0 * sum by (instance) (rate(smtp_sessions_total{{{sel}}}{rate}))", (0, 18, 12, 8), "reqps"),
        panel("timeseries", "Replies per second by instance",
              "All replies, per instance: the fleet's traffic. Normal: steady per instance; 221s track "
              "connections.",
              [target(f"sum by (instance) (rate(smtp_replies_total{{{sel}}}{rate}))", "{{instance}}")],
              (12, 18, 12, 8)),
    ]
    return frame(
        FLEET_UID, "SMTP fleet",
        "Every instance of smtp-reply-exporter at once, the worst first; each row opens the per-instance dashboard.",
        {"title": "SMTP replies (one instance)", "type": "link", "url": f"/d/{UID}", "keepTime": True},
        [DATASOURCE, variable("mta", "label_values(smtp_replies_total, mta)", "MTA")], panels)


DATASOURCE = {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
              "current": {}, "hide": 0}


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def render_fleet() -> str:
    return json.dumps(fleet(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    for path, text in ((OUT, render()), (FLEET_OUT, render_fleet())):
        path.write_text(text)
        print(f"wrote {path}")

