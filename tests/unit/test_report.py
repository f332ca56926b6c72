"""The fleet report filters: summary, Markdown and the self-contained HTML page."""

from __future__ import annotations

import html.parser
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "filter"))
import wp502_report as rep


def evidence(cause, slug=None, pools=True, wordpress=True, by_hour=None):
    top = {"cause": cause, "confidence": 0.9, "evidence": ["why " + cause], "rungs": ["plugins"]}
    if slug:
        top["slug"] = slug
    return {
        "verdict": [top], "top_cause": cause,
        "fpm": {"pools": [{"name": "www", "workers": 5, "pm.max_children": 5, "rss_p95": 80 << 20,
                           "recommendation": {"pm.max_children": 30, "basis": {"available_bytes": 3 << 30}}}] if pools else []},
        "wordpress": [{"path": "/var/www/wordpress"}] if wordpress else [],
        "http": {"origin": {"/": {"status": 502}, "/wp-login.php": {"status": 502}}},
        "logs": {"signatures": {"connect_unavailable": {"count": 12}, "max_children": {"count": 0}},
                 "suspects": [{"type": "plugin", "slug": slug or "x", "count": 3}]},
        "peak_hours": {"by_hour": by_hour or {"2026-11-23T20": 7, "2026-11-23T21": 3}},
        "frontend": {"kind": "nginx"},
    }


HOSTVARS = {
    "web1": {"wp502_evidence_result": evidence("slow_plugin", "heavy-analytics")},
    "web2": {"wp502_evidence_result": evidence("slow_plugin", "heavy-analytics")},
    "web3": {"wp502_evidence_result": evidence("healthy", pools=False)},
    "web4": {"wp502_evidence_result": evidence("healthy", wordpress=False)},
    "web5": {},
    "web6": {"wp502_evidence_failed": "boom"},
}


def summary():
    return rep.wp502_fleet_summary(HOSTVARS, list(HOSTVARS), unreachable=["web5"], failed=["web6"])


def test_summary_lists_every_host_and_groups_what_they_share():
    s = summary()
    assert s["hosts"] == 6
    assert s["statuses"] == {"ok": 2, "no_fpm": 1, "no_wordpress": 1, "unreachable": 1, "failed": 1}
    assert s["causes"] == {"slow_plugin": 2, "healthy": 2}
    assert s["shared"]["cause"] == {"slow_plugin:heavy-analytics": ["web1", "web2"], "healthy": ["web3", "web4"]}
    assert s["shared"]["suspect"]["plugin:heavy-analytics"] == ["web1", "web2"]
    assert s["unhealthy"] == ["web1", "web2"]
    assert [r["status"] for r in s["rows"]][4:] == ["unreachable", "failed"]


def test_markdown_has_a_row_per_host():
    md = rep.wp502_report_markdown(summary(), when="2026-11-23T23:00:00Z")
    assert "| web1 | audited | slow_plugin (heavy-analytics) | 0.9 |" in md
    assert "| web5 | unreachable | - |" in md
    assert "## Hosts sharing a suspect" in md


class _Collect(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.ids, self.srcs = [], set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("src", "href"):
            if key in attrs:
                self.srcs.append(attrs[key])


def test_html_is_self_contained_with_charts_and_data():
    page = rep.wp502_report_html(summary(), when="2026-11-23T23:00:00Z")
    parser = _Collect()
    parser.feed(page)
    assert parser.srcs == []  # no external assets at all
    assert {"verdicts", "causes", "per-hour", "memory", "summary"} <= parser.ids
    assert parser.tags.count("svg") >= 5 and parser.tags.count("tr") == 7
    data = json.loads(page.split('<script type="application/json" id="summary">')[1].split("</script>")[0])
    assert data["hosts"] == 6


def test_html_escapes_what_hosts_report():
    hv = {"evil": {"wp502_evidence_result": evidence("bom", slug="<script>alert(1)</script>")}}
    page = rep.wp502_report_html(rep.wp502_fleet_summary(hv, ["evil"]))
    body = page.split('<script type="application/json"')[0]
    assert "<script>alert" not in body and "&lt;script&gt;alert" in body
    assert "</script>alert" not in page.split('id="summary">')[1].rsplit("</script>", 1)[0]


def test_an_empty_audit_says_so():
    md = rep.wp502_report_markdown(rep.wp502_fleet_summary({}, []), when="2026-11-23T23:00:00Z")
    assert "No host matched the audit's host pattern." in md


def test_prometheus_textfile_is_valid_exposition_format():
    import re

    text = rep.wp502_report_prometheus(summary(), timestamp=1795480000.7)
    sample = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*\})? '
                        r'(?P<value>-?[0-9.e+]+)$')
    families, samples = set(), {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind == "gauge"
            families.add(name)
        elif not line.startswith("# HELP "):
            m = sample.match(line)
            assert m, f"not a Prometheus sample line: {line!r}"
            assert m.group("name") in families  # every sample's family is declared before it
            samples[line.rsplit(" ", 1)[0]] = float(m.group("value"))
    assert samples['wp502_audited{host="web1",status="ok"}'] == 1
    assert samples['wp502_audited{host="web5",status="unreachable"}'] == 0
    assert samples['wp502_verdict{host="web1",cause="slow_plugin"}'] == 1
    assert samples['wp502_verdict_confidence{host="web1",cause="slow_plugin"}'] == 0.9
    assert samples['wp502_origin_status{host="web1",path="/wp-login.php"}'] == 502
    assert samples['wp502_signature_count{host="web2",signature="connect_unavailable"}'] == 12
    assert 'wp502_signature_count{host="web1",signature="max_children"}' not in samples  # zero counts are not listed
    assert samples["wp502_audit_timestamp_seconds"] == 1795480000
    assert text.endswith("\n")


def test_prometheus_labels_are_escaped():
    odd = rep.wp502_fleet_summary({'we"b\\1\n': {"wp502_evidence_result": evidence("healthy")}}, ['we"b\\1\n'])
    assert 'host="we\\"b\\\\1\\n"' in rep.wp502_report_prometheus(odd)


def test_one_line_per_emergency_outcome():
    line = rep.wp502_emergency_line
    assert line({"top_cause": "crashing_worker", "healed_by": "plugins", "culprits": ["bad"]}) == \
        "crashing_worker, healed by plugins (culprit: bad)"
    assert line({"top_cause": "fpm_down", "healed_by": "restart_fpm", "culprits": []}) == "fpm_down, healed by restart_fpm"
    assert line({"unreachable": "ssh: connect refused"}) == "unreachable: ssh: connect refused"
    assert line({"top_cause": "healthy", "stopped": "healthy"}) == "healthy, stopped: healthy (the origin answers; nothing changed)"
    assert line({"top_cause": "oom", "next_step": "add memory"}) == "oom, NOT healed; next: add memory"


@pytest.mark.parametrize(("result", "state", "ok"), [
    ({"top_cause": "fpm_down", "healed_by": "restart_fpm", "healed": True}, "healed", True),
    ({"top_cause": "healthy", "stopped": "healthy", "healed": True}, "healthy", True),
    # The origin answers but visitors still get the CDN's error: something is left broken.
    ({"top_cause": "cdn_only", "stopped": "cdn_only", "next_step": "Cloudflare Ray ID 8f1"}, "cdn_only", False),
    ({"top_cause": "socket_mismatch", "next_step": "point nginx at the pool's socket"}, "not_healed", False),
    ({"top_cause": "crashing_worker", "stopped": "plugins rung failed: start-limit-hit", "rungs": [{"rung": "plugins"}]},
     "stopped", False),
    ({"refused": "run X holds this host since 21:30Z from ops@ctl"}, "refused", False),
    ({"unreachable": "ssh: connect refused"}, "unreachable", False),
    # Check mode: the plan is the outcome, and the site still fails.
    ({"top_cause": "fpm_down", "check_mode": True, "rungs": [{"rung": "restart_fpm", "planned": True}]}, "planned", False),
    # A rung named without its probe's healthy answer is not a heal.
    ({"top_cause": "fpm_down", "healed_by": "restart_fpm", "healed": False}, "not_healed", False),
])
def test_one_decision_says_whether_a_host_is_left_broken(result, state, ok):
    outcome = rep.wp502_emergency_outcome(result)
    assert (outcome["state"], outcome["ok"]) == (state, ok)
    assert outcome["line"] == rep.wp502_emergency_line(result)
