"""The emergency and the audit on a target with three WordPress sites (site 1 = /var/www/wordpress on
the default vhost, siteb.test on its own socket pool, sitec.test on a 127.0.0.1:9001 pool), driven
through ansible-runner as AWX drives them. Whichever site breaks, the run names that site and its
cause, heals exactly the broken sites, leaves every other site byte for byte as it was (plugin
trees, active_plugins bytes, pool and vhost files), and its exit status and last line are true."""

from __future__ import annotations

import json

from .test_emergency_lab import emergency, failed_hosts

SITE_IDS = {"wordpress": "/var/www/wordpress", "siteb": "siteb.test", "sitec": "sitec.test"}


def site_state(t, name, db=True):
    """What must not change on a site nobody should touch: its plugin tree (names, types, bytes), the exact
    active_plugins bytes in its database (``db``: while the database answers), its pool file and its vhost."""
    site = t.registry[name]
    content = f"{site['path']}/wp-content"
    state = {
        "tree": t.host.check_output(f"cd {content} && {{ find plugins plugins-off mu-plugins -printf '%y %p %l\\n' 2>/dev/null | sort; "
                                    "find plugins mu-plugins -type f -exec sha256sum {} + 2>/dev/null | sort; } || true"),
        "files": t.host.check_output(f"sha256sum {site['pool_file']} {site['vhost_file']}"),
    }
    if db:
        state["active"] = t.host.check_output(f"mysql -N {site['db']} -e \"SELECT HEX(option_value) FROM wp_options "  # noqa: S608
                                              "WHERE option_name = 'active_plugins'\"")
    return state


def states(t, db=True):
    return {name: site_state(t, name, db) for name in t.registry}


def audit(t, tmp_path):
    """audit-502.yml on the target: {site: (top cause, failing)} from the fleet's summary.json."""
    reports = tmp_path / f"reports-{len(list(tmp_path.iterdir()))}"
    proc = t.playbook("playbooks/audit-502.yml", "-e", "wp502_audit_hosts=wp502_lab", "-e", f"wp502_report_dir={reports}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    summary = json.loads(next(reports.glob("**/summary.json")).read_text())
    (row,) = [r for r in summary["rows"] if r["host"] == t.name]
    return {s["site"]: (s["top_cause"], s["failing"]) for s in row["sites"]}


def by_site(result):
    return {s["site"]: s for s in result["sites"]}


def test_second_site_broken_is_healed_alone(sites_target, tmp_path):
    t = sites_target
    t.break_site("segfault", "siteb")
    verdicts = audit(t, tmp_path)
    assert verdicts["siteb.test"] == ("crashing_worker", True)
    assert verdicts[SITE_IDS["wordpress"]][1] is False and verdicts["sitec.test"][1] is False
    before = states(t)
    r, result = emergency(t, tmp_path)
    assert r.status == "successful", r.stdout.read()[-4000:]
    sites = by_site(result)
    assert sites["siteb.test"]["state"] == "healed" and sites["siteb.test"]["healed_by"] == "plugins"
    assert sites["siteb.test"]["culprits"] == ["wp502-fault-segfault"]
    assert sites["siteb.test"]["top_cause"] == "crashing_worker"
    assert sites[SITE_IDS["wordpress"]]["state"] == "healthy" and sites["sitec.test"]["state"] == "healthy"
    # Only site b's rungs were climbed, and the plugins rung worked on site b only.
    assert all(rung["sites"] == ["siteb.test"] for rung in result["rungs"])
    assert t.statuses() == {"wordpress": 200, "siteb": 200, "sitec": 200}
    after = states(t)
    assert after["wordpress"] == before["wordpress"] and after["sitec"] == before["sitec"]
    assert "wp502-fault-segfault" not in after["siteb"]["active"] or after["siteb"]["active"] != before["siteb"]["active"]
    assert result["line"].startswith("healed 1 of 1 failing site: siteb.test by plugins")


def test_first_site_broken_is_healed_and_never_judged_by_another_site(nginx_sites_target, tmp_path):
    """The old ladder probed site b, said healthy and left site 1 at 502: every site is its own probe now."""
    t = nginx_sites_target
    t.break_site("invalid_header")  # site 1 (the default vhost)
    assert t.statuses() == {"wordpress": 502, "siteb": 200, "sitec": 200}
    assert audit(t, tmp_path)[SITE_IDS["wordpress"]] == ("invalid_header", True)
    before = states(t)
    r, result = emergency(t, tmp_path)
    assert r.status == "successful", r.stdout.read()[-4000:]
    sites = by_site(result)
    first = sites[SITE_IDS["wordpress"]]
    assert first["state"] == "healed" and first["healed_by"] == "plugins" and first["culprits"] == ["wp502-fault-header"]
    assert first["before"] == "502" and first["after"] == "200"
    assert t.statuses() == {"wordpress": 200, "siteb": 200, "sitec": 200}
    after = states(t)
    assert after["siteb"] == before["siteb"] and after["sitec"] == before["sitec"]
    # Rollback puts site 1 back exactly as the run found it, and asks every site the run knew.
    undo = t.playbook("playbooks/rollback-502.yml", "-e", "wp502_rollback_hosts=wp502_lab")
    assert undo.returncode == 0, undo.stdout[-3000:]
    assert "/var/www/wordpress 502/502, siteb.test 200/200, sitec.test 200/200" in undo.stdout
    assert states(t) == before


def test_two_sites_broken_two_ways_are_both_healed(nginx_sites_target, tmp_path):
    t = nginx_sites_target
    t.break_site("segfault", "siteb")
    # The second fault on top of the first (lab-break.yml restores the baseline first by default).
    proc = t.playbook("playbooks/lab-break.yml", "-e", "wp502_lab_fault=bom", "-e", "wp502_lab_site=sitec",
                      "-e", "wp502_lab_reset_first=false", "-e", "wp502_lab_probe=false")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert t.statuses()["siteb"] in (502, 503)
    first_before = site_state(t, "wordpress")
    r, result = emergency(t, tmp_path)
    assert r.status == "successful", r.stdout.read()[-4000:]
    sites = by_site(result)
    assert sites["siteb.test"]["state"] == "healed" and sites["siteb.test"]["culprits"] == ["wp502-fault-segfault"]
    assert sites["sitec.test"]["state"] == "healed"
    assert sites[SITE_IDS["wordpress"]]["state"] == "healthy"
    assert t.statuses() == {"wordpress": 200, "siteb": 200, "sitec": 200}
    assert site_state(t, "wordpress") == first_before
    assert result["line"].startswith("healed 2 of 2 failing sites")


def test_a_site_left_broken_fails_the_run_even_when_the_others_answer(nginx_sites_target, tmp_path):
    t = nginx_sites_target
    t.break_site("segfault", "siteb")
    r, result = emergency(t, tmp_path, wp502_emergency_rung_plugins=False)
    assert r.status == "failed" and failed_hosts(r) == {t.name}
    sites = by_site(result)
    assert sites["siteb.test"]["state"] == "not_healed"
    assert not result["ok"] and "siteb.test" in result["line"]
    assert t.get_site("siteb") in (502, 503)


def test_mysql_down_is_healed_by_the_database_rung_and_the_data_is_untouched(nginx_sites_target, tmp_path):
    t = nginx_sites_target
    checksums = {name: t.host.check_output(f"mysql -N {site['db']} -e 'CHECKSUM TABLE wp_options, wp_posts, wp_postmeta'")
                 for name, site in t.registry.items()}
    t.break_site("mysql_down")
    before = states(t, db=False)
    r, result = emergency(t, tmp_path)
    assert r.status == "successful", r.stdout.read()[-4000:]
    assert [rung["rung"] for rung in result["rungs"]] == ["restart_db"]
    assert set(result["rungs"][0]["sites"]) == set(SITE_IDS.values())
    assert all(s["state"] == "healed" and s["healed_by"] == "restart_db" and s["top_cause"] == "mysql_down"
               for s in result["sites"])
    assert t.host.service("mariadb").is_running
    assert t.statuses() == {"wordpress": 200, "siteb": 200, "sitec": 200}
    after = states(t, db=False)
    assert after == before  # no plugin moved, no BOM stripped, no pool touched
    for name, site in t.registry.items():
        assert t.host.check_output(f"mysql -N {site['db']} -e 'CHECKSUM TABLE wp_options, wp_posts, wp_postmeta'") == checksums[name]


def test_a_healthy_static_pool_is_healthy_to_the_audit_and_the_emergency_changes_nothing(nginx_sites_target, tmp_path):
    t = nginx_sites_target
    t.break_site("static_pool", "sitec")
    before = states(t)
    r, result = emergency(t, tmp_path)
    assert r.status == "successful", r.stdout.read()[-4000:]
    assert result["stopped"] == "healthy" and result["rungs"] == [] and not result["locked"]
    assert all(s["state"] == "healthy" for s in result["sites"])
    assert states(t) == before
    assert t.host.run("ls -A /var/lib/wp502/runs 2>/dev/null").stdout.strip() == ""
    assert audit(t, tmp_path) == {SITE_IDS["wordpress"]: ("healthy", False), "siteb.test": ("healthy", False),
                                  "sitec.test": ("healthy", False)}


FAKE_CDN = """
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(502)
        self.send_header("Server", "cloudflare")
        self.send_header("CF-RAY", "8f1c2a3b4c5d6e7f-AMS")
        self.end_headers()
        self.wfile.write(b"Bad gateway")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", 8099), H).serve_forever()
"""


def test_a_site_failing_only_through_its_cdn_stops_as_cdn_only_with_the_ray_id(nginx_sites_target, tmp_path):
    """wp502_evidence_sites (the inventory's sites, with their public URLs) is read by the emergency as by the
    audit. The "CDN" is a listener on the target's loopback answering 502 as Cloudflare does."""
    t = nginx_sites_target
    t.host.run(f"cat > /tmp/cdn.py <<'PY'\n{FAKE_CDN}\nPY\nsetsid -f python3 /tmp/cdn.py >/dev/null 2>&1")
    assert t.host.run("for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8099/ && exit 0; sleep 0.1; done; exit 1").rc == 0
    before = states(t)
    r, result = emergency(t, tmp_path, wp502_evidence_sites=[{"host": "siteb.test", "url": "http://127.0.0.1:8099"}])
    assert r.status == "failed" and failed_hosts(r) == {t.name}  # nothing healed at the origin: not a success
    assert result["stopped"] == "cdn_only" and result["rungs"] == [] and not result["locked"]
    siteb = by_site(result)["siteb.test"]
    assert siteb["state"] == "cdn_only" and siteb["cdn"] == "cloudflare" and siteb["ray_id"] == "8f1c2a3b4c5d6e7f-AMS"
    assert "8f1c2a3b4c5d6e7f-AMS" in result["line"] and "siteb.test" in result["line"]
    assert states(t) == before


DEPENDS_ON_SITEB = r"""<?php
// Site 1 reads a file of site b (a shared library, say): changed, site 1 fails.
$f = '/var/www/siteb/wp-content/plugins/wp502-fault-bom/wp502-fault-bom.php';
if ((string) @file_get_contents($f, false, null, 0, 3) !== "\xEF\xBB\xBF") {
    http_response_code(500);
    exit('a file this site depends on changed');
}
"""


def opcache_never_rechecks(t):
    """OPcache as many production servers run it: a file is compiled once and never re-checked
    (validate_timestamps=0), so a rung that rewrites PHP files, and its undo, is judged only if PHP-FPM
    then runs the files as they are on disk."""
    t.host.run("printf 'opcache.validate_timestamps=0\\n' > /etc/php/8.2/fpm/conf.d/99-wp502-test.ini && "
               "systemctl restart php8.2-fpm")  # Type=notify: returns once FPM is ready
    assert "validate_timestamps => Off" in t.host.check_output("php-fpm8.2 -i | grep opcache.validate_timestamps")


def test_a_bom_is_healed_when_opcache_never_rechecks_files(nginx_sites_target, tmp_path):
    """Stripped on disk is not enough when OPcache keeps the compiled copy: the rung reloads the site's
    PHP-FPM, and the probe judges the stripped file."""
    t = nginx_sites_target
    t.break_site("bom", "siteb")
    opcache_never_rechecks(t)
    bom_file = "/var/www/siteb/wp-content/plugins/wp502-fault-bom/wp502-fault-bom.php"
    assert t.host.check_output(f"head -c 3 {bom_file} | od -An -tx1").split() == ["ef", "bb", "bf"]
    before = states(t)
    r, result = emergency(t, tmp_path)
    assert r.status == "successful", r.stdout.read()[-4000:]
    sites = by_site(result)
    assert sites["siteb.test"]["state"] == "healed" and sites["siteb.test"]["healed_by"] == "bom"
    assert [rung["rung"] for rung in result["rungs"]] == ["bom"]
    assert t.host.check_output(f"head -c 3 {bom_file} | od -An -tx1").split()[:1] != ["ef"]
    after = states(t)
    assert after["wordpress"] == before["wordpress"] and after["sitec"] == before["sitec"]
    assert t.statuses() == {"wordpress": 200, "siteb": 200, "sitec": 200}


def test_a_step_that_breaks_an_answering_site_is_undone_at_once(nginx_sites_target, tmp_path):
    """Site b's BOM rung would heal site b, but site 1 depends on the file it rewrites: the step is rolled
    back at once (site b's file gets its bytes back), site 1 answers again, and the run says site b is
    not healed, never "healed" (not even when OPcache still holds the stripped copy: PHP-FPM is reloaded
    after the undo)."""
    t = nginx_sites_target
    t.break_site("bom", "siteb")
    bom_file = "/var/www/siteb/wp-content/plugins/wp502-fault-bom/wp502-fault-bom.php"
    t.host.run("install -d -o www-data -g www-data /var/www/wordpress/wp-content/mu-plugins && "
               f"cat > /var/www/wordpress/wp-content/mu-plugins/wp502-depends.php <<'PHP'\n{DEPENDS_ON_SITEB}PHP")
    opcache_never_rechecks(t)
    assert t.statuses() == {"wordpress": 200, "siteb": 200, "sitec": 200}  # b's BOM breaks its login cookie only
    before = states(t)
    bytes_before = t.host.check_output(f"sha256sum {bom_file}")
    r, result = emergency(t, tmp_path)
    assert r.status == "failed" and failed_hosts(r) == {t.name}, r.stdout.read()[-3000:]
    (step,) = result["rungs"]
    assert step["rung"] == "bom" and step["sites"] == ["siteb.test"]
    assert step["broke"] == [SITE_IDS["wordpress"]] and step["rolled_back"] is True and not step["healed"]
    sites = by_site(result)
    assert sites["siteb.test"]["state"] == "not_healed" and sites[SITE_IDS["wordpress"]]["state"] == "healthy"
    assert not result["ok"]
    assert t.host.check_output(f"sha256sum {bom_file}") == bytes_before
    assert states(t) == before
    assert t.get_site("wordpress") == 200


def test_check_mode_with_ignore_verdict_plans_every_rung_for_the_failing_site_only(nginx_sites_target, tmp_path):
    t = nginx_sites_target
    t.break_site("segfault", "siteb")
    before = states(t)
    r, result = emergency(t, tmp_path, cmdline="--check", wp502_emergency_ignore_verdict=True)
    assert r.status == "failed" and result["state"] == "planned"  # check mode heals nothing: the run says so
    rungs = [step["rung"] for step in result["rungs"]]
    assert rungs[:2] == ["restart_fpm", "plugins"]  # the verdict's rungs (crashing_worker) first
    assert sorted(rungs) == sorted(["reload_fpm", "restart_fpm", "restart_db", "plugins", "pool_limits", "frontend", "bom"])
    assert all(step["sites"] == ["siteb.test"] and step["planned"] and not step["changed"] for step in result["rungs"])
    assert states(t) == before
    assert not t.host.file("/var/lib/wp502/lock").exists and not t.host.file("/var/lib/wp502/runs").exists
