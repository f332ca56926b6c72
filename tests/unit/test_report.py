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
    # Older evidence (no "sites"): one row from the host-level fields, its site the WordPress path.
    assert "| web1 | audited | /var/www/wordpress | **yes** | slow_plugin (heavy-analytics) | 0.9 |" in md
    assert "| web5 | unreachable | - | - | - |" in md
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
    assert all(src.startswith("hosts/") and src.endswith(".html") for src in parser.srcs)  # only links to host pages
    assert len(parser.srcs) == 6
    assert {"verdicts", "causes", "summary"} <= parser.ids and not {"per-hour", "memory"} & parser.ids  # on host pages
    assert parser.tags.count("svg") == 1 and parser.tags.count("tr") == 7
    data = json.loads(page.split('<script type="application/json" id="summary">')[1].split("</script>")[0])
    assert data["hosts"] == 6 and data["groups"] == summary()["groups"]
    web1 = next(r for r in data["rows"] if r["host"] == "web1")  # each host in brief, its details on its page
    assert web1["page"] == "hosts/web1.html" and web1["top_cause"] == "slow_plugin" and "sites" not in web1


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
    assert samples['wp502_origin_status{host="web1",site="/var/www/wordpress",path="/wp-login.php"}'] == 502
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


# ---- sites (issue #11) ---------------------------------------------------------------------------

def probe(*statuses, paths=("/", "/wp-login.php")):
    return dict((path, {"url": "http://127.0.0.1" + path, "status": st}) for path, st in zip(paths, statuses, strict=True))


def site(sid, cause="healthy", failing=False, status=200, confidence=0.9, names=None, public=None, **http):
    top = {"cause": cause, "confidence": confidence, "evidence": [f"{sid}: why {cause}", "second line"],
           "rungs": [] if cause == "healthy" else ["plugins"], "site": sid}
    return {"id": sid, "names": names or [sid, "www." + sid], "docroot": "/var/www/" + sid, "server": "nginx",
            "pools": [sid.split(".")[0]], "url": f"https://{sid}.example" if public else None,
            "wordpress": {"path": "/var/www/" + sid}, "verdict": [top], "top_cause": cause, "failing": failing,
            "http": dict({"origin": probe(status, status), "origin_healthy": not failing},
                         **({"public": probe(*public)} if public else {}), **http)}


def multi_evidence(sites):
    ev = evidence("healthy")
    ev["sites"] = sites
    worst = rep._worst([rep._site_row("h", s) for s in sites])
    ev["verdict"] = next(s for s in sites if s["id"] == worst["site"])["verdict"]
    ev["top_cause"] = ev["verdict"][0]["cause"]
    return ev


def test_a_row_per_site_under_its_host_and_the_host_keeps_its_worst_sites_verdict():
    ev = multi_evidence([site("sitea.test"), site("siteb.test", "slow_plugin", failing=True, status=502, confidence=0.8),
                         site("sitec.test", "mysql_down", failing=True, status=500, confidence=0.95,
                              public=(522, 522), cdn="cloudflare", ray_id="8f1c2a3b4d5e6f70-AMS")])
    s = rep.wp502_fleet_summary({"wp1": {"wp502_evidence_result": ev}}, ["wp1"])
    (row,) = s["rows"]
    assert [x["site"] for x in row["sites"]] == ["sitea.test", "siteb.test", "sitec.test"]
    assert (row["top_cause"], row["site"], row["failing_sites"]) == ("mysql_down", "sitec.test", ["siteb.test", "sitec.test"])
    b = row["sites"][1]
    assert (b["host"], b["top_cause"], b["confidence"], b["failing"]) == ("wp1", "slow_plugin", 0.8, True)
    assert b["names"] == ["siteb.test", "www.siteb.test"] and b["evidence"] == ["siteb.test: why slow_plugin", "second line"]
    assert b["origin"] == {"/": 502, "/wp-login.php": 502} and "public" not in b and "cdn" not in b
    c = row["sites"][2]
    assert (c["public"], c["cdn"], c["ray_id"]) == ({"/": 522, "/wp-login.php": 522}, "cloudflare", "8f1c2a3b4d5e6f70-AMS")
    assert s["sites"] == 3 and s["site_causes"] == {"healthy": 1, "slow_plugin": 1, "mysql_down": 1}
    assert s["failing_sites"] == [{"host": "wp1", "site": "siteb.test", "top_cause": "slow_plugin"},
                                  {"host": "wp1", "site": "sitec.test", "top_cause": "mysql_down"}]
    assert s["unhealthy"] == ["wp1"]
    md = rep.wp502_report_markdown(s)
    assert "| wp1 | audited, 2 of 3 sites failing | sitea.test | no | healthy | 0.9 |" in md
    assert "|  |  | siteb.test | **yes** | slow_plugin | 0.8 | siteb.test: why slow_plugin; second line |" in md
    assert "public 522, 522 (cloudflare, Ray ID 8f1c2a3b4d5e6f70-AMS)" in md


def test_a_host_whose_evidence_lost_its_verdict_takes_its_worst_site():
    ev = multi_evidence([site("a.test", "capacity", confidence=0.99), site("b.test", "fpm_down", failing=True, confidence=0.6)])
    ev["verdict"], ev["top_cause"] = [], None
    (row,) = rep.wp502_fleet_summary({"wp1": {"wp502_evidence_result": ev}}, ["wp1"])["rows"]
    # A failing site before an answering one, however confident the answering one's cause.
    assert (row["top_cause"], row["site"]) == ("fpm_down", "b.test")


def test_older_evidence_without_sites_makes_one_row_from_the_host():
    ev = evidence("fpm_down")
    ev["wordpress"] = [{"path": "/var/www/wordpress", "host": "wp.example"}]
    ev["http"]["origin_healthy"] = False
    (row,) = rep.wp502_fleet_summary({"old": {"wp502_evidence_result": ev}}, ["old"])["rows"]
    (only,) = row["sites"]
    assert (only["site"], only["names"], only["failing"], only["top_cause"], only["fallback"]) == (
        "wp.example", ["wp.example"], True, "fpm_down", True)
    assert only["origin"] == {"/": 502, "/wp-login.php": 502} and row["failing_sites"] == ["wp.example"]
    healthy = evidence("healthy")
    healthy["http"] = {"origin": probe(200, 302)}  # no origin_healthy key: the answers decide
    assert rep.wp502_fleet_summary({"h": {"wp502_evidence_result": healthy}}, ["h"])["rows"][0]["sites"][0]["failing"] is False


def fifteen():
    sites = [site(f"site{i:02d}.test") for i in range(15)]
    sites[3] = site("site03.test", "bom", failing=True, status=500)
    sites[11] = site("site11.test", "pool_saturated", failing=True, status=502, confidence=0.7)
    small = evidence("healthy")
    small["http"] = {"origin": probe(200, 200), "origin_healthy": True}
    return {"agency": {"wp502_evidence_result": multi_evidence(sites)}, "small": {"wp502_evidence_result": small}}


def test_fifteen_sites_on_one_host_group_under_one_host_cell():
    s = rep.wp502_fleet_summary(fifteen(), ["agency", "small"])
    page = rep.wp502_report_html(s, when="2026-12-01T00:00:00Z")
    parser = _Collect()
    parser.feed(page)
    assert parser.tags.count("tbody") == 2 and parser.tags.count("tr") == 1 + 15 + 1
    assert page.count('<th scope="rowgroup" rowspan="15"><a href="hosts/agency.html">agency</a></th>') == 1
    assert page.count('data-host="agency" data-site=') == 15 and page.count('class="failing"') == 2
    assert "audited, 2 of 15 sites failing" in page and "site-causes" in parser.ids
    md = rep.wp502_report_markdown(s)
    assert md.count("| agency |") == 1 and md.count("|  |  | site") == 14


def sample_lines(text):
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))


def test_prometheus_per_site_metrics_carry_a_site_label_and_host_metrics_do_not():
    ev = multi_evidence([site("sitea.test"), site('we"ird\\site', "slow_plugin", failing=True, status=502),
                         site("sitec.test", public=(522, 522), cdn="cloudflare")])
    samples = sample_lines(rep.wp502_report_prometheus(rep.wp502_fleet_summary({"wp1": {"wp502_evidence_result": ev}}, ["wp1"])))
    assert samples['wp502_verdict{host="wp1",cause="slow_plugin"}'] == "1"  # the host's verdict, host-level
    assert samples['wp502_sites{host="wp1"}'] == "3"
    assert samples['wp502_site_verdict{host="wp1",site="sitea.test",cause="healthy"}'] == "1"
    # A quote and a backslash in a site id are escaped as the exposition format wants.
    assert samples['wp502_site_failing{host="wp1",site="we\\"ird\\\\site"}'] == "1"
    assert samples['wp502_origin_status{host="wp1",site="we\\"ird\\\\site",path="/"}'] == "502"
    assert samples['wp502_site_failing{host="wp1",site="sitea.test"}'] == "0"
    assert samples['wp502_public_status{host="wp1",site="sitec.test",path="/wp-login.php"}'] == "522"
    assert not [k for k in samples if k.startswith(("wp502_audited", "wp502_signature_count", "wp502_verdict{")) and "site=" in k]


# ---- the emergency, per site -----------------------------------------------------------------------

def em_site(sid, before, after, healed_by=None, culprits=(), state=None, **extra):
    answering_before, answering_after = str(before).startswith(("2", "3")), str(after).startswith(("2", "3"))
    return dict({"site": sid, "before": before, "after": after, "answering_before": answering_before,
                 "answering_after": answering_after, "top_cause": "slow_plugin", "healed_by": healed_by,
                 "culprits": list(culprits), "state": state or "?"}, **extra)


def em(*sites, rungs=("restart_fpm", "plugins"), **extra):
    return dict({"top_cause": "slow_plugin", "healed_by": None, "healed": False, "culprits": [],
                 "rungs": [r if isinstance(r, dict) else {"rung": r, "healed": False} for r in rungs],
                 "sites": list(sites)}, **extra)


@pytest.mark.parametrize(("result", "state", "ok", "line"), [
    (em(em_site("sitea.test", "200", "200"), em_site("siteb.test", "502", "200", "plugins", ["wp502-fault-slow"]),
        em_site("sitec.test", "500", "200", "restart_db")),
     "healed", True, "healed 2 of 2 failing sites: siteb.test by plugins (culprit wp502-fault-slow), sitec.test by restart_db"),
    # The healed site's neighbour still fails: not ok, and named.
    (em(em_site("siteb.test", "502", "502"), em_site("sitec.test", "500", "200", "restart_db")),
     "not_healed", False, "not healed: siteb.test still answers 502 after restart_fpm, plugins; "
                          "healed 1 of 2 failing sites: sitec.test by restart_db"),
    (em(em_site("siteb.test", "502", "502"), next_step="read the evidence"),
     "not_healed", False, "not healed: siteb.test still answers 502 after restart_fpm, plugins; next: read the evidence"),
    # A rung healed B and broke A, which answered before: not ok, whatever A's given state says.
    (em(em_site("sitea.test", "200", "502", state="healthy"), em_site("siteb.test", "502", "200", "restart_fpm")),
     "broke", False, "broke: sitea.test answered 200 before, 502 now after restart_fpm, plugins; "
                     "healed 1 of 1 failing site: siteb.test by restart_fpm"),
    (em(*(em_site(s, "200", "200") for s in ("a.test", "b.test", "c.test")), rungs=(), stopped="healthy"),
     "healthy", True, "stopped: healthy (3 sites answer)"),
    (em(em_site("sitea.test", "200", "200"),
        em_site("sitec.test", "200", "200", state="cdn_only", cdn="cloudflare", ray_id="8f1c2a3b4d5e6f70-AMS"),
        rungs=(), stopped="cdn_only"),
     "cdn_only", False, "cdn_only: sitec.test fails only through cloudflare (Ray ID 8f1c2a3b4d5e6f70-AMS)"),
    (em(em_site("siteb.test", "502", "502"), rungs=("plugins",), stopped="plugins rung failed: start-limit-hit"),
     "stopped", False, "not healed (stopped: plugins rung failed: start-limit-hit): siteb.test still answers 502 after plugins"),
    (em(em_site("siteb.test", "502", "502"), em_site("sitea.test", "200", "200"), check_mode=True),
     "planned", False, "check mode: nothing changed; siteb.test fails (502); would climb restart_fpm, plugins"),
    # Rungs that name their sites: a site is said to have been through only its own.
    (em(em_site("a.test", None, None), em_site("b.test", "200", "200"),
        rungs=[{"rung": "plugins", "sites": ["b.test"]}, {"rung": "restart_db", "sites": ["a.test"]}]),
     "not_healed", False, "not healed: a.test still fails (no answer) after restart_db"),
    # As wp502_site_results words it: the rung that broke A was undone, A answers again; B's rung is named.
    (em(em_site("a.test", "200", "200", state="healthy"), em_site("b.test", "502", "not asked", state="not_healed"),
        rungs=[{"rung": "restart_fpm", "sites": ["b.test"], "broke": ["a.test"], "rolled_back": True},
               {"rung": "plugins", "sites": ["b.test"], "fixed": []}]),
     "not_healed", False, "not healed: b.test still fails (not asked) after restart_fpm (rolled back), plugins"),
    (em(em_site("a.test", "200", "502", state="broke"), em_site("b.test", "502", "200", "plugins", state="healed"),
        rungs=[{"rung": "restart_fpm", "sites": ["b.test"], "broke": ["a.test"]},
               {"rung": "plugins", "sites": ["b.test"], "fixed": ["b.test"]}]),
     "broke", False, "broke: a.test answered 200 before, 502 now after restart_fpm; healed 1 of 1 failing site: b.test by plugins"),
    # Unreachable and refused come first, as before.
    (em(em_site("a.test", "502", "502"), unreachable="ssh: timed out"), "unreachable", False, "unreachable: ssh: timed out"),
])
def test_an_emergency_with_sites_is_ok_only_when_every_site_answers(result, state, ok, line):
    outcome = rep.wp502_emergency_outcome(result)
    assert (outcome["state"], outcome["ok"], outcome["line"]) == (state, ok, line)
    assert rep.wp502_emergency_line(result) == line


def test_each_site_has_its_own_decided_row():
    rows = rep.wp502_emergency_sites(em(em_site("a.test", "200", "502", state="healthy"),
                                        em_site("b.test", "502", "200", "plugins", ["x", "y"])))
    assert [(r["site"], r["state"], r["ok"]) for r in rows] == [("a.test", "broke", False), ("b.test", "healed", True)]
    assert rows[1]["line"] == "b.test by plugins (culprits x, y)"
    assert rep.wp502_emergency_sites({"top_cause": "fpm_down"}) == []


def test_the_emergency_page_has_a_row_per_site():
    results = {"wp1": em(em_site("sitea.test", "200", "200"), em_site("siteb.test", "502", "200", "plugins", ["bad"]),
                         journal="/var/lib/wp502/runs/A"),
               "wp2": {"top_cause": "oom", "next_step": "add memory", "rungs": []}}
    page = rep.wp502_emergency_html(results, when="2026-12-01T00:00:00Z")
    assert page.count("data-site=") == 2 and '<th scope="rowgroup" rowspan="2">wp1<br>' in page
    assert 'data-site="siteb.test" data-state="healed"' in page and "healed: siteb.test by plugins (culprit bad)" in page
    assert "healed 1 of 1 failing site: siteb.test by plugins (culprit bad)" in page
    assert "oom, NOT healed; next: add memory" in page  # a result without sites keeps its one row


def test_the_summary_reads_the_verdicts_diagnose_sites_writes():
    """Not a hand-made shape: sites as wp502_verdict.diagnose_sites leaves them (siteb's pool socket
    gone, a.test answering), through the summary and the Markdown."""
    import copy

    import wp502_verdict

    up = {"origin": {"/": {"status": 200}, "/wp-login.php": {"status": 200}}, "origin_healthy": True}
    down = {"origin": {"/": {"status": 502}, "/wp-login.php": {"status": 502}}, "origin_healthy": False}
    sites = [{"id": sid, "names": [sid], "docroot": "/var/www/" + sid, "server": "nginx", "error_log": None,
              "upstreams": [f"unix:/run/php/{pool}.sock"], "pools": [pool], "fpm_services": ["php8.2-fpm"], "url": None,
              "wordpress": {"path": "/var/www/" + sid, "config_values": {"db_host": "localhost"}, "bom_files": [],
                            "db": {"reachable": True, "active_plugins": []}}, "http": copy.deepcopy(http)}
             for sid, pool, http in (("a.test", "www", up), ("siteb.test", "siteb", down))]
    ev = {"sites": sites, "frontend": {"kind": "nginx", "active": "active"}, "logs": {"attributed": []},
          "fpm": {"services": [{"name": "php8.2-fpm", "active": "active"}], "pools": [
              {"name": "www", "listen": "/run/php/www.sock", "socket_exists": True, "service": "php8.2-fpm", "pm": "dynamic",
               "workers": 2, "pm.max_children": 10},
              {"name": "siteb", "listen": "/run/php/siteb.sock", "socket_exists": False, "service": "php8.2-fpm",
               "pm": "dynamic", "workers": 0, "pm.max_children": 5}]},
          "host": {"database": {"service": "mariadb", "active": "active"}, "disks": [], "oom": {"counts": {}}}}
    ev["verdict"] = wp502_verdict.diagnose_sites(ev)
    ev["top_cause"], ev["wordpress"] = ev["verdict"][0]["cause"], [s["wordpress"] for s in sites]
    s = rep.wp502_fleet_summary({"wp1": {"wp502_evidence_result": ev}}, ["wp1"])
    (row,) = s["rows"]
    assert (row["top_cause"], row["site"], row["failing_sites"]) == ("fpm_down", "siteb.test", ["siteb.test"])
    assert [(x["site"], x["top_cause"], x["failing"]) for x in row["sites"]] == [
        ("a.test", "healthy", False), ("siteb.test", "fpm_down", True)]
    assert any("siteb.sock" in line for line in row["sites"][1]["evidence"])
    assert "|  |  | siteb.test | **yes** | fpm_down |" in rep.wp502_report_markdown(s)


def grouped(**hosts):
    """A summary of hosts given as name=evidence (None: unreachable)."""
    hv = dict((h, {"wp502_evidence_result": ev} if ev else {}) for h, ev in hosts.items())
    return rep.wp502_fleet_summary(hv, list(hv), unreachable=[h for h, ev in hosts.items() if not ev])


def group(s, kind, value):
    return next((g["hosts"] for g in s["groups"] if g["key"] == {"kind": kind, "value": value}), None)


def test_hosts_sharing_a_cause_form_a_group():
    s = grouped(a=evidence("fpm_down"), b=evidence("fpm_down"), c=evidence("oom"))
    assert group(s, "cause", "fpm_down") == ["a", "b"]
    assert group(s, "cause", "oom") is None  # one host is not a group


def test_hosts_sharing_a_suspect_or_a_culprit_plugin_form_groups():
    s = grouped(a=evidence("slow_plugin", "wp502-fault-slow"), b=evidence("bom", "wp502-fault-slow"),
                c=evidence("slow_plugin", "other"))
    assert group(s, "suspect", "plugin:wp502-fault-slow") == ["a", "b"]
    assert group(s, "culprit", "wp502-fault-slow") == ["a", "b"]
    assert group(s, "culprit", "other") is None and group(s, "suspect", "plugin:other") is None
    assert group(s, "cause", "slow_plugin") == ["a", "c"]


def test_culprits_a_run_named_win_over_the_slug():
    ev = evidence("crashing_worker", "x")
    ev["culprits"] = ["wp502-fault-segfault"]
    s = grouped(a=ev, b=dict(ev))
    assert group(s, "culprit", "wp502-fault-segfault") == ["a", "b"] and group(s, "culprit", "x") is None


def test_a_singleton_is_not_a_group_and_healthy_is_not_a_cause_group():
    one = evidence("oom")
    one["logs"] = {"signatures": {"oom": {"count": 3}}, "suspects": [{"type": "plugin", "slug": "lonely"}]}
    s = grouped(a=one, b=evidence("healthy"), c=evidence("healthy"), down=None)
    assert all(len(g["hosts"]) >= 2 for g in s["groups"])
    assert group(s, "cause", "healthy") is None and group(s, "signature", "oom") is None
    assert group(s, "signature", "connect_unavailable") == ["b", "c"]  # shared by healthy hosts still


def test_groups_are_largest_first_then_by_kind_and_value():
    s = grouped(a=evidence("fpm_down", "p1"), b=evidence("fpm_down", "p1"), c=evidence("fpm_down", "p2"),
                d=evidence("oom", "p2"))
    keys = [(len(g["hosts"]), g["key"]["kind"], g["key"]["value"]) for g in s["groups"]]
    assert keys == [(4, "signature", "connect_unavailable"), (3, "cause", "fpm_down"), (2, "culprit", "p1"),
                    (2, "culprit", "p2"), (2, "suspect", "plugin:p1"), (2, "suspect", "plugin:p2")]
    assert s["groups"] == grouped(a=evidence("fpm_down", "p1"), b=evidence("fpm_down", "p1"), c=evidence("fpm_down", "p2"),
                                  d=evidence("oom", "p2"))["groups"]  # the same audit, the same groups
    assert json.loads(json.dumps(s["groups"])) == s["groups"]


def test_host_rows_are_unhealthy_first_and_keep_their_keys():
    s = grouped(ok1=evidence("healthy"), down=None, bad1=evidence("fpm_down"), ok2=evidence("healthy"), bad2=evidence("oom"))
    assert [r["host"] for r in s["rows"]] == ["bad1", "bad2", "ok1", "down", "ok2"]
    assert s["unhealthy"] == ["bad1", "bad2"] and s["hosts"] == 5
    row = next(r for r in s["rows"] if r["host"] == "bad1")
    assert {"host", "status", "top_cause", "confidence", "slug", "evidence", "rungs", "next_step", "causes", "site",
            "origin", "signatures", "suspects", "by_hour", "frontend", "pools", "errors", "sites", "failing_sites",
            "probe", "culprits"} <= set(row)
    assert s["shared"]["cause"]["healthy"] == ["ok1", "ok2"]  # shared keeps its keys as before


def test_the_page_opens_on_the_overview_with_the_groups_and_a_search_box():
    hv = {f"h{i:02d}": {"wp502_evidence_result": evidence("slow_plugin", f"p{i % 30}")} for i in range(60)}
    s = rep.wp502_fleet_summary(hv, list(hv))
    page = rep.wp502_report_html(s, when="2026-12-02T00:00:00Z")
    assert page.index('id="overview"') < page.index('id="groups"') < page.index('id="search"') < page.index('id="verdicts"')
    assert page.count("<li data-kind=") == rep.OVERVIEW_GROUPS and len(s["groups"]) > rep.OVERVIEW_GROUPS
    assert f"and {len(s['groups']) - rep.OVERVIEW_GROUPS} more groups" in page
    assert "<b>60 hosts</b> share the cause <code>slow_plugin</code>" in page and "and 48 more" in page
    head = page.split("</head>", 1)[0]
    assert "http" not in head.replace("http-equiv", "") and "<script src" not in page


@pytest.mark.parametrize("host,name", [
    ("web1.example.com", "web1.example.com"),
    ("Web1", "_57eb1"),  # upper case escaped: never the same file as web1 on a case-insensitive disk
    ("web_1", "web_5f1"),  # the escape itself escaped
    ("a/../b", "a_2f.._2fb"),
    ("..", "_2e."),
    (".hidden", "_2ehidden"),
    ("<evil>&\"'", "_3cevil_3e_26_22_27"),
    ("hôte", "h_c3_b4te"),
    ("", "_"),
])
def test_a_host_name_becomes_a_safe_file_name(host, name):
    assert rep.wp502_host_file(host) == name
    assert rep.wp502_host_page_path(host) == f"hosts/{name}.html"


def test_host_file_names_never_collide_and_stay_short():
    hosts = ["web1", "Web1", "WEB1", "web_1", "web_5f1", "web 1", "web/1", "web%1", "x" * 300, "x" * 299 + "y",
             "x" * 500, "a" * 159 + "~" + "0" * 40, "_", "", ".", ".."]
    names = [rep.wp502_host_file(h) for h in hosts]
    assert len(set(names)) == len(hosts)
    assert len(set(n.lower() for n in names)) == len(hosts)
    assert all(len(n.encode()) <= rep._FILE_NAME_MAX and n not in (".", "..") and "/" not in n for n in names)


def test_each_host_has_its_own_page_and_its_row_links_to_it():
    hv = dict(HOSTVARS, **{'we"b<7>': {"wp502_evidence_result": evidence("bom", "<b>x</b>")}})
    s = rep.wp502_fleet_summary(hv, list(hv), unreachable=["web5"], failed=["web6"])
    pages = rep.wp502_host_pages(s, "audit", "2026-12-02T00:00:00Z")
    assert sorted(pages) == sorted(rep.wp502_host_page_path(h) for h in hv)
    assert "hosts/we_22b_3c7_3e.html" in pages
    main = rep.wp502_report_html(s, "audit")
    parser = _Collect()
    parser.feed(main)
    assert sorted(parser.srcs) == sorted(pages)  # every row links to its page, the href escaped in the source
    assert 'href="hosts/we_22b_3c7_3e.html">we&quot;b&lt;7&gt;</a>' in main
    page = pages["hosts/web1.html"]
    parser = _Collect()
    parser.feed(page)
    assert {"verdict", "sites", "per-hour", "memory", "host"} <= parser.ids and parser.srcs == ["../report.html"]
    assert parser.tags.count("svg") == 2  # 502s per hour, the pool's memory
    assert "why slow_plugin" in page and "heavy-analytics" in page and "connect_unavailable: 12" in page
    evil = pages["hosts/we_22b_3c7_3e.html"]
    assert "<b>x</b>" not in evil.split('<script type="application/json"')[0] and "&lt;b&gt;x&lt;/b&gt;" in evil
    down = pages["hosts/web5.html"]
    assert "no site: the host was unreachable" in down and "no PHP-FPM pool" in down
    assert "http" not in page.split("</head>", 1)[0].replace("http-equiv", "")


def test_the_host_table_sorts_by_a_clicked_header_inline():
    page = rep.wp502_report_html(summary())
    assert "aria-sort" in page and page.index('id="verdicts"') < page.index("aria-sort") and "<script src" not in page


def test_the_markdown_summary_has_the_groups():
    hv = {f"h{i:02d}": {"wp502_evidence_result": evidence("slow_plugin", f"p{i % 30}")} for i in range(60)}
    s = rep.wp502_fleet_summary(hv, list(hv))
    md = rep.wp502_report_markdown(s, when="2026-12-02T00:00:00Z")
    assert "## Groups: hosts that share something" in md
    assert "- 60 hosts share the cause `slow_plugin`: h00, h01" in md and "and 48 more" in md
    assert md.count(" hosts share the ") == rep.OVERVIEW_GROUPS
    assert f"- and {len(s['groups']) - rep.OVERVIEW_GROUPS} more groups" in md
    assert "- none: no two hosts" in rep.wp502_report_markdown(rep.wp502_fleet_summary({}, []))


def test_the_fleet_page_shows_a_sites_first_evidence_line_and_its_host_page_every_line():
    ev = evidence("bom")
    ev["verdict"][0]["evidence"] = ["first " + "x" * 300, "second line", "third line"]
    s = rep.wp502_fleet_summary({"a": {"wp502_evidence_result": ev}}, ["a"])
    main, page = rep.wp502_report_html(s), rep.wp502_host_pages(s)["hosts/a.html"]
    body = main.split('<script type="application/json"')[0]
    assert "first " + "x" * 154 in body and "x" * 155 not in body and "second line" not in body
    assert "<li>first " + "x" * 300 + "</li><li>second line</li><li>third line</li>" in page


def test_the_emergency_console_names_each_site_only_on_hosts_with_several():
    wp1 = em(em_site("a.test", "200", "200"), em_site("b.test", "502", "200", "plugins", ["x"]))
    done = [{"inventory_hostname": "wp1", "wp502_emergency_result": wp1},
            {"inventory_hostname": "wp2", "wp502_emergency_result": {"top_cause": "fpm_down", "healed_by": "restart_fpm"}},
            {"inventory_hostname": "wp3", "wp502_emergency_result": em(em_site("c.test", "502", "200", "restart_fpm"))}]
    assert rep.wp502_emergency_console(done, "/r/emergency-1") == [
        "wp1: healed 1 of 1 failing site: b.test by plugins (culprit x)",
        "wp2: fpm_down, healed by restart_fpm",
        "wp3: healed 1 of 1 failing site: c.test by restart_fpm",
        "Each site of the hosts with more than one:",
        "wp1: healthy: a.test answers 200", "wp1: healed: b.test by plugins (culprit x)",
        "Report: /r/emergency-1/report.html"]
    # No report written (no host done), no site lines: only what there is.
    assert rep.wp502_emergency_console([], None) == []
    assert rep.wp502_emergency_console(done[1:2]) == ["wp2: fpm_down, healed by restart_fpm"]


def test_check_mode_says_what_each_planned_rung_would_do():
    result = {"check_mode": True, "rungs": [
        {"rung": "restart_fpm", "sites": ["a.test"], "planned": True, "note": "restart php8.2-fpm"},
        {"rung": "plugins", "sites": ["a.test", "b.test"], "planned": True, "note": "would take out 3 plugins"},
        {"rung": "frontend", "sites": ["a.test"], "planned": True, "note": ""},
        {"rung": "frontend", "sites": ["b.test"], "planned": True, "note": "nothing the front-end can change for this verdict"},
        {"rung": "bom", "sites": ["b.test"], "planned": True, "note": "no PHP file this site is proven to load starts with a BOM"},
        # A rung that ran (not check mode) is not a plan.
        {"rung": "bom", "sites": ["a.test"], "planned": False, "note": "stripped 1 file"}]}
    assert rep.wp502_emergency_planned(result, "wp1") == [
        "wp1: restart_fpm would restart php8.2-fpm (for a.test)",
        "wp1: plugins would take out 3 plugins (for a.test, b.test)",
        "wp1: frontend would (for a.test)",
        "wp1: frontend: nothing the front-end can change for this verdict (for b.test)",
        "wp1: bom: no PHP file this site is proven to load starts with a BOM (for b.test)"]
    assert rep.wp502_emergency_planned({}, "wp1") == []
