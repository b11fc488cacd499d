"""The Helm chart, rendered and linted by Helm's own engine (Go SDK through helm-python-sdk, no binary),
every manifest validated against the Kubernetes and Prometheus Operator schemas."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from smtp_reply_exporter import providers

helm = pytest.importorskip("helm_python")

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "smtp-reply-exporter"
CRDS = Path(__file__).parent / "fixtures" / "crds"  # Prometheus Operator v0.93.0, from the shared reference
KUBE_VERSION = "1.33.0"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


def render(values: dict[str, Any] | None = None, chart: Path = CHART) -> dict[str, list[dict[str, Any]]]:
    """Manifests by template file, as parsed YAML documents."""
    out = helm.Chart.load(str(chart)).render(values or {}, name="mail", namespace="mail", is_install=True)
    return {path: [d for d in yaml.safe_load_all(text) if d] for path, text in out.items()
            if not path.endswith("NOTES.txt")}


def manifests(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [doc for docs in render(values).values() for doc in docs]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def crd_schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / f"monitoring.coreos.com_{plural}.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


CRD_SCHEMAS = {"ServiceMonitor": "servicemonitors", "PrometheusRule": "prometheusrules", "PodMonitor": "podmonitors"}


def validate(doc: dict[str, Any]) -> None:
    if doc["kind"] in CRD_SCHEMAS:
        # no check_schema(): the CRDs carry Go regexes ("^(?i)...") that Python's re rejects
        jsonschema.Draft7Validator(crd_schema(CRD_SCHEMAS[doc["kind"]])).validate(doc)
    else:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def values_of(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


@pytest.mark.parametrize("values_file", [None, *CI_VALUES], ids=lambda p: p.name if p else "defaults")
def test_chart_lints_clean_and_every_manifest_is_valid(values_file):
    values = values_of(values_file) if values_file else {}
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report.get("errors", [])
    assert not problems, problems
    docs = manifests(values)
    assert docs
    for doc in docs:
        validate(doc)


def test_copies_of_rules_and_dashboards_in_the_chart_do_not_drift():
    sys.path.insert(0, str(ROOT / "helm"))
    try:
        import sync
    finally:
        sys.path.pop(0)
    assert sync.COPIES
    for source, copy in sync.COPIES.items():
        assert copy.read_bytes() == source.read_bytes(), f"run: python3 helm/sync.py ({copy.name} differs)"
    copies = {p.name for p in (CHART / "files" / "dashboards").glob("*.json")}
    assert copies == {p.name for p in (ROOT / "dashboards").glob("*.json")}


def test_prometheus_rule_holds_exactly_the_projects_rules():
    rule = of_kind(manifests(values_of(CHART / "ci" / "deployment-values.yaml")), "PrometheusRule")[0]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    ours = yaml.safe_load((ROOT / "rules" / "smtp-reply-exporter.rules.yml").read_text())
    assert rule["spec"]["groups"] == ours["groups"]


def test_alerts_can_be_disabled_and_overridden_per_alert():
    rule = of_kind(manifests(values_of(CHART / "ci" / "tls-overrides-values.yaml")), "PrometheusRule")[0]
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert "SmtpLogStalled" not in alerts
    overridden = alerts["SmtpPermanentReplyRatioHigh"]
    assert overridden["for"] == "30m"
    assert overridden["labels"] == {"severity": "critical", "team": "mail"}
    assert alerts["SmtpTransientPressure"]["labels"] == {"severity": "warning"}
    assert "{{ $labels.code }}" in alerts["SmtpTransientPressure"]["annotations"]["description"]


def test_dashboard_config_map_holds_exactly_the_projects_dashboards():
    cm = of_kind(manifests(values_of(CHART / "ci" / "deployment-values.yaml")), "ConfigMap")[0]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    ours = {p.name: p.read_text() for p in (ROOT / "dashboards").glob("*.json")}
    assert {k: json.loads(v) for k, v in cm["data"].items()} == {k: json.loads(v) for k, v in ours.items()}
    assert {k: v.rstrip("\n") for k, v in cm["data"].items()} == {k: v.rstrip("\n") for k, v in ours.items()}


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_workloads_are_hardened_by_default(values_file):
    docs = manifests(values_of(values_file))
    for doc in of_kind(docs, "Deployment") + of_kind(docs, "DaemonSet"):
        pod = doc["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        if "web" not in values_of(values_file):
            assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
            assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
        else:
            assert container["livenessProbe"]["tcpSocket"] == container["readinessProbe"]["tcpSocket"]


def test_daemonset_reads_pod_logs_read_only_and_keeps_state_on_the_node():
    docs = manifests(values_of(CHART / "ci" / "daemonset-values.yaml"))
    (ds,) = of_kind(docs, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "--log.path=/var/log/pods/mail_postfix-*/postfix/*.log" in container["args"]
    assert "--tail.state-file=/var/lib/smtp-reply-exporter/state.json" in container["args"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["pod-logs"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["state"]["hostPath"]["path"] == "/var/lib/smtp-reply-exporter"
    assert not of_kind(docs, "Deployment")


def test_deployment_mode_exposes_the_syslog_receiver():
    docs = manifests()
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    syslog = services["mail-smtp-reply-exporter-syslog"]
    assert {(p["port"], p["protocol"]) for p in syslog["spec"]["ports"]} == {(5514, "UDP"), (5514, "TCP")}
    (deploy,) = of_kind(docs, "Deployment")
    assert "--syslog.listen-address=0.0.0.0:5514" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]


def test_web_config_secret_is_mounted_passed_and_probes_use_tcp():
    (deploy,) = of_kind(manifests(values_of(CHART / "ci" / "tls-overrides-values.yaml")), "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "--web.config.file=/etc/smtp-reply-exporter/web/web.yml" in container["args"]
    assert {"name": "web-config", "secret": {"secretName": "smtp-reply-exporter-web"}} in pod["volumes"]
    assert container["livenessProbe"] == {"tcpSocket": {"port": "metrics"}, "periodSeconds": 20}


def test_service_monitor_carries_tls_basic_auth_and_relabelings():
    (sm,) = of_kind(manifests(values_of(CHART / "ci" / "tls-overrides-values.yaml")), "ServiceMonitor")
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["scheme"] == "https" and endpoint["tlsConfig"]["serverName"] == "smtp-reply-exporter"
    assert endpoint["basicAuth"]["password"]["name"] == "smtp-reply-exporter-auth"
    assert endpoint["relabelings"][0]["targetLabel"] == "node"


def test_sidecar_template_puts_the_exporter_in_the_users_mta_pod(tmp_path):
    parent = tmp_path / "mta"
    (parent / "charts").mkdir(parents=True)
    shutil.copytree(CHART, parent / "charts" / "smtp-reply-exporter")
    (parent / "Chart.yaml").write_text("apiVersion: v2\nname: mta\nversion: 1.0.0\n")
    (parent / "values.yaml").write_text(yaml.safe_dump({"smtp-reply-exporter": {
        "mode": "sidecar", "image": {"tag": "0.1.0"}, "sidecar": {"podSelector": {"app": "postfix"}},
        "queue": {"mta": "postfix", "volume": "postfix-spool", "path": "/var/spool/postfix"}}}))
    (parent / "templates").mkdir()
    (parent / "templates" / "pod.yaml").write_text("""\
apiVersion: v1
kind: Pod
metadata:
  name: postfix
  labels:
    app: postfix
spec:
  containers:
    - name: postfix
      image: registry.example/postfix:3.7
      volumeMounts:
        - name: mail-logs
          mountPath: /var/log/mail
    {{- include "smtp-reply-exporter.sidecar" (dict "Values" (index .Values "smtp-reply-exporter") "Chart" .Chart "Release" .Release) | nindent 4 }}
  volumes:
    - name: mail-logs
      emptyDir: {}
    - name: postfix-spool
      emptyDir: {}
    {{- include "smtp-reply-exporter.volumes" (dict "Values" (index .Values "smtp-reply-exporter")) | nindent 4 }}
""")
    rendered = render(chart=parent)
    (pod,) = rendered["mta/templates/pod.yaml"]
    validate(pod)
    exporter = pod["spec"]["containers"][1]
    assert "--log.path=/var/log/mail/mail.log" in exporter["args"]
    assert {"name": "mail-logs", "mountPath": "/var/log/mail", "readOnly": True} in exporter["volumeMounts"]
    # the queue, read through Postfix's showq socket on the MTA's own spool volume, mounted read-only
    assert "--postfix.queue=/var/spool/postfix" in exporter["args"]
    assert {"name": "postfix-spool", "mountPath": "/var/spool/postfix", "readOnly": True} in exporter["volumeMounts"]
    docs = [d for docs in rendered.values() for d in docs]
    assert not of_kind(docs, "Deployment") and not of_kind(docs, "DaemonSet")
    (service,) = [s for s in of_kind(docs, "Service") if "syslog" not in s["metadata"]["name"]]
    assert service["spec"]["selector"] == {"app": "postfix"}


@pytest.mark.parametrize(("values", "message"), [
    ({"mode": "cluster"}, "mode"),
    ({"web": {"port": -1}}, "port"),
    ({"service": {"port": 70000}}, "port"),
    ({"mode": "daemonset"}, "logGlob"),
    ({"mode": "sidecar"}, "podSelector"),
    ({"queue": {"mta": "sendmail"}}, "queue"),
    ({"prometheusRule": {"enabled": True, "alerts": {"SmtpLogStalled": {"severity": "page"}}}}, "severity"),
])
def test_bad_values_fail_at_render_time_with_a_clear_message(values, message):
    with pytest.raises(helm.HelmError) as err:
        render(values)
    assert message in str(err.value)


def test_notes_tell_where_the_metrics_are():
    out = helm.Chart.load(str(CHART)).render({}, name="mail", namespace="mail")
    notes = next(v for k, v in out.items() if k.endswith("NOTES.txt"))
    assert "http://mail-smtp-reply-exporter.mail.svc:10125/metrics" in notes


def test_every_value_is_documented():
    """Each key has a comment above it, or sits inside a documented value (e.g. resources)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        commented = i > 0 and lines[i - 1].strip().startswith("#")
        inherited = any(documented for _, documented in stack)
        value = stripped.partition(":")[2].strip()
        is_section = value == "" and i + 1 < len(lines) and lines[i + 1].startswith(" " * (indent + 2))
        assert commented or inherited or is_section, f"values.yaml line {i + 1} has no comment: {stripped}"
        stack.append((indent, commented))


def test_remote_providers_are_written_to_a_config_map_the_exporter_accepts_and_passed_as_a_flag():
    docs = manifests(values_of(CHART / "ci" / "providers-values.yaml"))
    (cm,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "mail-smtp-reply-exporter-providers"]
    mapping = providers.parse(json.loads(cm["data"]["providers.json"]))
    assert mapping.of_host("in1.mx.corp.example") == "corporate" and mapping.of_host("gmail-smtp-in.l.google.com") == "google"
    (deploy,) = of_kind(docs, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "--remote.providers=/etc/smtp-reply-exporter/providers/providers.json" in container["args"]
    assert {"name": "remote-providers", "mountPath": "/etc/smtp-reply-exporter/providers", "readOnly": True} \
        in container["volumeMounts"]
    assert {"name": "remote-providers", "configMap": {"name": "mail-smtp-reply-exporter-providers"}} in pod["volumes"]
    # by default: the packaged list, no flag, no ConfigMap
    assert not any("--remote.providers" in a for d in of_kind(manifests(), "Deployment")
                   for a in d["spec"]["template"]["spec"]["containers"][0]["args"])


def test_an_own_providers_config_map_is_mounted_by_name():
    (deploy,) = of_kind(manifests({"remote": {"configMapName": "my-providers"}}), "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    assert {"name": "remote-providers", "configMap": {"name": "my-providers"}} in pod["volumes"]
    assert "--remote.providers=/etc/smtp-reply-exporter/providers/providers.json" in pod["containers"][0]["args"]


def test_a_provider_name_that_is_no_label_value_is_refused():
    with pytest.raises(helm.HelmError) as err:
        render({"remote": {"providers": [{"name": "Big Corp", "suffixes": ["x.example"]}]}})
    assert "name" in str(err.value)
