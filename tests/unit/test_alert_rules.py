"""The monitoring files: Prometheus alerting rules (promtool check rules and promtool test rules)
and the Grafana dashboard, both over the metric families that wp502_report_prometheus emits."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "filter"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "extensions" / "eda" / "plugins" / "event_source"))
import wp502_report as rep

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "prometheus" / "wp502-rules.yml"
RULE_TESTS = ROOT / "monitoring" / "prometheus" / "wp502-rules.test.yml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "wp502-dashboard.json"

METRIC = re.compile(r"\bwp502_[a-z0-9_]+")
# Label names that start like a metric name (the alerts' routing labels), not metric references.
ROUTING_LABELS = {"wp502_host", "wp502_heal"}


def promtool():
    """promtool's path; under CI (CI=true) its absence fails the test, elsewhere it skips it."""
    path = shutil.which("promtool")
    if path:
        return path
    message = "promtool not found: install Debian's prometheus package (apt-get install prometheus), as .ci/run does"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def run(*args, cwd=None):
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def emitted_families():
    """The families the filter really writes samples for, from a fleet with a failing multi-site host,
    a healthy host, an unreachable one, signatures and the audit's timestamp."""
    def site(sid, cause, failing, status):
        return {"id": sid, "names": [sid], "docroot": "/var/www/" + sid, "server": "nginx", "pools": ["www"],
                "wordpress": {"path": "/var/www/" + sid}, "top_cause": cause, "failing": failing,
                "verdict": [{"cause": cause, "confidence": 0.8, "evidence": ["why"], "rungs": [], "site": sid}],
                "http": {"origin": {"/": {"status": status}, "/wp-login.php": {"status": status}},
                         "public": {"/": {"status": status}}, "origin_healthy": not failing}}

    def evidence(sites):
        return {"sites": sites, "verdict": sites[-1]["verdict"], "top_cause": sites[-1]["top_cause"],
                "fpm": {"pools": []}, "wordpress": [{"path": s["docroot"]} for s in sites],
                "http": {"origin": {"/": {"status": 200}}},
                "logs": {"signatures": {"connect_unavailable": {"count": 12}}, "suspects": []},
                "peak_hours": {"by_hour": {}}, "frontend": {"kind": "nginx"}}

    hostvars = {"web1": {"wp502_evidence_result": evidence([site("a.test", "healthy", False, 200),
                                                            site("b.test", "slow_plugin", True, 502)])},
                "web2": {"wp502_evidence_result": evidence([site("c.test", "healthy", False, 200)])},
                "web3": {}}
    text = rep.wp502_report_prometheus(rep.wp502_fleet_summary(hostvars, list(hostvars), unreachable=["web3"]),
                                       timestamp=1795480000)
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def rules():
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def dashboard_queries():
    dash = json.loads(DASHBOARD.read_text())
    panels = [p for top in dash["panels"] for p in [top, *top.get("panels", [])]]
    queries = [(p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]
    queries += [(v["name"], v["definition"]) for v in dash["templating"]["list"] if v["type"] == "query"]
    return dash, panels, queries


# ---- the alerting rules ---------------------------------------------------------------------------

def test_promtool_checks_the_rules():
    r = run("check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(rules())} rules found" in r.stdout


def test_promtool_unit_tests_of_the_rules_pass():
    r = run("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_every_alert_is_unit_tested_firing():
    tested = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing = {t["alertname"] for group in tested for t in group["alert_rule_test"] if t["exp_alerts"]}
    assert {r["alert"] for r in rules()} == firing


def test_the_rules_read_only_families_the_report_filter_emits():
    families = emitted_families()
    for rule in rules():
        used = set(METRIC.findall(rule["expr"])) - ROUTING_LABELS
        assert used, rule["alert"]
        assert used <= families, (rule["alert"], used - families)


def test_only_the_unhealthy_host_alert_heals_and_the_webhook_source_finds_its_host():
    from wp502_webhook import normalise

    heal = [r for r in rules() if r.get("labels", {}).get("wp502_heal") == "true"]
    assert [r["alert"] for r in heal] == ["Wp502HostUnhealthy"]
    assert heal[0]["labels"]["wp502_host"] == "{{ $labels.host }}"
    # What Alertmanager posts for it (the labels as promtool's unit test expects them), as the rulebook sees it.
    payload = {"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "Wp502HostUnhealthy", "host": "web1", "wp502_host": "web1",
                                        "wp502_heal": "true", "severity": "critical"},
         "annotations": {"summary": "web1: 2 WordPress site(s) failing"}}]}
    (event,) = normalise(payload)
    assert (event["wp502"]["host"], event["wp502"]["state"]) == ("web1", "down")
    # Fleet-wide alerts name no host: the webhook source drops them rather than healing a wrong one.
    for name in ("Wp502CauseShared", "Wp502SignatureShared"):
        rule = next(r for r in rules() if r["alert"] == name)
        assert "wp502_host" not in rule["labels"]  # nor a host label: their unit tests' exp_labels say so
        assert normalise({"alerts": [{"status": "firing", "labels": {"alertname": name, "cause": "slow_plugin"}}]}) == []


# ---- the Grafana dashboard ------------------------------------------------------------------------

def test_dashboard_is_valid_json_with_the_panels_an_operator_needs():
    dash, panels, queries = dashboard_queries()
    assert dash["uid"] == "wp502-fleet" and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in panels}
    assert {"Unhealthy hosts", "Failing sites per cause", "502-class signatures over time", "Audit age"} <= titles
    for p in panels:
        assert {"x", "y", "w", "h"} <= set(p["gridPos"]) and p["datasource"]["uid"] == "${datasource}", p["title"]
    assert all(expr.strip() for _, expr in queries)


def test_dashboard_queries_read_only_families_the_report_filter_emits():
    families = emitted_families()
    _, _, queries = dashboard_queries()
    for title, expr in queries:
        used = set(METRIC.findall(expr))
        assert used, title
        assert used <= families, (title, used - families)


def test_dashboard_queries_are_valid_promql(tmp_path):
    # promtool parses PromQL in rule files: each panel's query, Grafana's $host made a regex, as a recording rule.
    _, _, queries = dashboard_queries()
    exprs = [expr.replace("$host", ".*") for _, expr in queries if not expr.startswith("label_values(")]
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"wp502_dashboard:query{i}", "expr": expr} for i, expr in enumerate(exprs)]}]}))
    r = run("check", "rules", str(rule_file))
    assert r.returncode == 0, r.stdout + r.stderr
