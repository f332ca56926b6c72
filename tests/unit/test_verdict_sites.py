"""wp502_verdict.diagnose_sites: one verdict per site from real log lines, the host's is its worst site's."""

from __future__ import annotations

import copy

import pytest
import wp502_ladder as lad
import wp502_logscan as ls
import wp502_verdict as v

UP = {"origin": {"/": {"status": 200, "elapsed": 0.1}, "/wp-login.php": {"status": 200, "elapsed": 0.1}},
      "origin_healthy": True}
BAD_GATEWAY = {"origin": {"/": {"status": 502, "elapsed": 0.01}, "/wp-login.php": {"status": 502, "elapsed": 0.01}},
               "origin_healthy": False}
TIMEOUT = {"origin": {"/": {"status": 504, "elapsed": 3.0}, "/wp-login.php": {"status": 200, "elapsed": 0.2}},
           "origin_healthy": False}
ERROR_500 = {"origin": {"/": {"status": 500, "elapsed": 0.05}, "/wp-login.php": {"status": 500, "elapsed": 0.05}},
             "origin_healthy": False}

SHARED_LOG = "/var/log/nginx/error.log"
FPM_LOG = "/var/log/php8.2-fpm.log"


def wp(path):
    return {"path": path, "config_values": {"db_host": "localhost"}, "bom_files": [], "whitespace_files": [],
            "db": {"reachable": True, "active_plugins": []}}


def host(**http):
    """Three sites on one nginx and one PHP 8.2: a.test (pool www, shared with c.test) and siteb.test (own pool)."""
    pools = [
        {"name": "www", "listen": "/run/php/php8.2-fpm.sock", "socket_exists": True, "service": "php8.2-fpm",
         "pm": "dynamic", "workers": 2, "pm.max_children": 10, "slowlog": "/var/log/php8.2-fpm.slow.log"},
        {"name": "siteb", "listen": "/run/php/siteb.sock", "socket_exists": True, "service": "php8.2-fpm",
         "pm": "static", "workers": 5, "pm.max_children": 5, "slowlog": "/var/log/php/siteb-slow.log",
         "status": {"listen_queue": 0, "max_children_reached": 0, "active_processes": 1, "idle_processes": 4}},
    ]
    sites = []
    for sid, root, pool, sock in (("a.test", "/var/www/a", "www", "php8.2-fpm"), ("siteb.test", "/var/www/siteb", "siteb", "siteb"),
                                  ("c.test", "/var/www/c", "www", "php8.2-fpm")):
        sites.append({"id": sid, "names": [sid, "www." + sid], "docroot": root, "server": "nginx",
                      "error_log": SHARED_LOG, "upstreams": [f"unix:/run/php/{sock}.sock"], "pools": [pool],
                      "fpm_services": ["php8.2-fpm"], "url": None, "wordpress": wp(root),
                      "http": copy.deepcopy(http.get(sid.split(".", 1)[0], UP))})
    return {"sites": sites,
            "fpm": {"services": [{"name": "php8.2-fpm", "active": "active"}], "pools": pools},
            "frontend": {"kind": "nginx", "active": "active"},
            "host": {"database": {"service": "mariadb", "active": "active", "socket": "/run/mysqld/mysqld.sock",
                                  "socket_exists": True}, "disks": [], "oom": {"counts": {}}},
            "logs": {"attributed": []}}


def scan(tmp_path, **files):
    """Scan real log lines written to files named as on the host (the file key is the path scanned)."""
    scanner = ls.Scanner(since_epoch=None, max_samples=3)
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text)
    for name in files:
        scanner.scan_file(str(tmp_path / name))
    res = scanner.result()
    # the scanner saw tmp paths: give the groups the paths the sites name
    real = {str(tmp_path / "nginx-error.log"): SHARED_LOG, str(tmp_path / "php8.2-fpm.log"): FPM_LOG,
            str(tmp_path / "php8.2-fpm.slow.log"): "/var/log/php8.2-fpm.slow.log",
            str(tmp_path / "siteb-slow.log"): "/var/log/php/siteb-slow.log"}
    for g in res["attributed"]:
        g["file"] = real.get(g["file"], g["file"])
    return res


def nginx(sid, sock, what, n=1, req="GET / HTTP/1.1"):
    lines = {
        "refused": f"connect() to unix:/run/php/{sock}.sock failed (2: No such file or directory) while connecting to upstream",
        "invalid": "upstream sent invalid header: \"\\xEF\\xBB\\xBFHTTP/1.1\" while reading response header from upstream",
        "timeout": "upstream timed out (110: Connection timed out) while reading response header from upstream",
    }
    level = "crit" if what == "refused" else "error"
    return "".join(
        f'2026/11/23 22:{10 + i // 60:02d}:{i % 60:02d} [{level}] 812#812: *{1000 + i} {lines[what]}, client: '
        f'203.0.113.{i % 250}, server: {sid}, request: "{req}", upstream: "fastcgi://unix:/run/php/{sock}.sock:", '
        f'host: "www.{sid}"\n'
        for i in range(n))


def slowlog(pool, root, plugin, n=3):
    return "".join(
        f"\n[23-Nov-2026 22:13:{i:02d}]  [pool {pool}] pid {300 + i}\n"
        f"script_filename = {root}/index.php\n"
        f"[0x00007ff86d014940] curl_exec() {root}/wp-content/plugins/{plugin}/api.php:41\n"
        f"[0x00007ff86d0148c0] fetch() {root}/wp-content/plugins/{plugin}/{plugin}.php:12\n" for i in range(n))


def verdict_of(ev, sid):
    return next(s for s in ev["sites"] if s["id"] == sid)


@pytest.mark.parametrize("broken", ["a", "siteb"])
def test_one_site_broken_the_other_fine_whichever_it_is(tmp_path, broken):
    sid, sock = ("a.test", "php8.2-fpm") if broken == "a" else ("siteb.test", "siteb")
    ev = host(**{broken: BAD_GATEWAY})
    ev["logs"] = scan(tmp_path, **{"nginx-error.log": nginx(sid, sock, "invalid", n=6)})
    host_verdict = v.diagnose_sites(ev)
    other = "siteb.test" if broken == "a" else "a.test"
    site = verdict_of(ev, sid)
    assert (site["failing"], site["top_cause"]) == (True, "invalid_header")
    assert site["verdict"][0]["evidence"][0] == "6 x invalid_header"
    assert (verdict_of(ev, other)["failing"], verdict_of(ev, other)["top_cause"]) == (False, "healthy")
    assert (host_verdict[0]["cause"], host_verdict[0]["site"]) == ("invalid_header", sid)
    assert all(c["site"] == sid for c in host_verdict)
    # nothing else of the evidence is touched
    assert "verdict" not in ev and "top_cause" not in ev


def test_two_sites_broken_two_ways(tmp_path):
    ev = host(a=TIMEOUT, siteb=BAD_GATEWAY)
    ev["logs"] = scan(tmp_path, **{
        "nginx-error.log": nginx("a.test", "php8.2-fpm", "timeout", n=3) + nginx("siteb.test", "siteb", "refused", n=5),
        "php8.2-fpm.slow.log": slowlog("www", "/var/www/a", "quote-api", n=3)})
    ev["fpm"]["pools"][1]["socket_exists"] = False  # siteb's pool socket is gone
    v.diagnose_sites(ev)
    a, b, c = ev["sites"]
    assert (a["top_cause"], a["verdict"][0].get("slug")) == ("upstream_timeout", "quote-api")
    assert b["top_cause"] == "fpm_down" and b["verdict"][0]["rungs"] == ["restart_fpm"]
    assert any("siteb.sock does not exist" in e for e in b["verdict"][0]["evidence"])
    assert c["top_cause"] == "healthy"  # shares a's pool, but the slow stacks are in a's docroot
    plan = lad.plan_ladder(ev["sites"])
    assert [(p["rung"], p["sites"]) for p in plan] == [("restart_fpm", ["siteb.test"]), ("plugins", ["a.test"]),
                                                       ("frontend", ["a.test"])]


def test_a_pool_shared_by_two_sites_saturates_both_and_not_the_third(tmp_path):
    ev = host(a=BAD_GATEWAY, c=BAD_GATEWAY)
    ev["logs"] = scan(tmp_path, **{"php8.2-fpm.log": (
        "[23-Nov-2026 22:13:26] WARNING: [pool www] server reached pm.max_children setting (10), consider raising it\n"
        "[23-Nov-2026 22:13:29] WARNING: [pool www] seems busy (you may need to increase pm.start_servers, or "
        "pm.min/max_spare_servers), spawning 32 children, there are 0 idle, and 10 total children\n")})
    v.diagnose_sites(ev)
    a, b, c = ev["sites"]
    assert "pool_saturated" in [x["cause"] for x in a["verdict"]]
    assert "pool_saturated" in [x["cause"] for x in c["verdict"]]
    assert b["top_cause"] == "healthy" and not b["failing"]


def test_a_healthy_static_pool_site_is_healthy():
    ev = host()
    assert v.diagnose_sites(ev)[0]["cause"] == "healthy"
    assert verdict_of(ev, "siteb.test")["verdict"] == [
        {"cause": "healthy", "confidence": 0.9, "evidence": ["origin answers 200"], "rungs": [],
         "next_step": v.NEXT_STEP["healthy"]}]


def test_a_static_pool_with_a_listen_queue_is_saturated():
    ev = host(siteb=TIMEOUT)
    ev["fpm"]["pools"][1]["status"].update(listen_queue=14, active_processes=5, idle_processes=0)
    v.diagnose_sites(ev)
    site = verdict_of(ev, "siteb.test")
    assert site["top_cause"] in ("pool_saturated", "capacity")
    sat = next(c for c in site["verdict"] if c["cause"] == "pool_saturated")
    assert any("listen queue of: siteb" in e for e in sat["evidence"])
    assert verdict_of(ev, "a.test")["top_cause"] == "healthy"


def test_mariadb_down_is_mysql_down_for_every_local_site_and_no_bom(tmp_path):
    ev = host(a=ERROR_500, siteb=ERROR_500, c=ERROR_500)
    ev["host"]["database"].update(active="failed", socket_exists=False)
    error = "ERROR 2002 (HY000): Can't connect to local server through socket '/run/mysqld/mysqld.sock' (2)"
    for site in ev["sites"]:
        site["wordpress"]["db"] = {"reachable": False, "error": error}
        # plugins cannot be read: the collector keeps their BOM files as unproven, never as bom_files
        site["wordpress"]["bom_files_unproven"] = ["wp-content/plugins/old-slider/slider.php"]
    ev["logs"] = scan(tmp_path, **{"nginx-error.log": ""})
    host_verdict = v.diagnose_sites(ev)
    assert (host_verdict[0]["cause"], host_verdict[0]["site"], host_verdict[0]["rungs"]) == ("mysql_down", "a.test", ["restart_db"])
    for site in ev["sites"]:
        assert site["failing"] and site["top_cause"] == "mysql_down"
        assert "bom" not in [c["cause"] for c in site["verdict"]]
        assert site["verdict"][0]["bom_files_unproven"] == ["wp-content/plugins/old-slider/slider.php"]
    plan = lad.plan_ladder(ev["sites"])
    assert plan == [{"rung": "restart_db", "sites": ["a.test", "siteb.test", "c.test"], "cause": "mysql_down",
                     "scope": "host"}]


def test_socket_mismatch_only_for_the_site_whose_upstream_nobody_listens_on(tmp_path):
    ev = host(siteb=BAD_GATEWAY)
    site = verdict_of(ev, "siteb.test")
    site.update(upstreams=["unix:/run/php/php7.4-fpm.sock"], pools=[], fpm_services=[])
    ev["logs"] = scan(tmp_path, **{"nginx-error.log": nginx("siteb.test", "php7.4-fpm", "refused", n=4)})
    v.diagnose_sites(ev)
    assert site["top_cause"] == "socket_mismatch"
    assert site["verdict"][0]["upstreams"] == ["unix:/run/php/php7.4-fpm.sock"]
    assert "unix:/run/php/siteb.sock" in site["verdict"][0]["listens"]
    assert verdict_of(ev, "a.test")["top_cause"] == "healthy"


def test_fpm_service_down_fails_every_site_behind_it_and_restarts_once(tmp_path):
    ev = host(a=BAD_GATEWAY, siteb=BAD_GATEWAY, c=BAD_GATEWAY)
    ev["fpm"]["services"][0]["active"] = "failed"
    v.diagnose_sites(ev)
    assert {s["top_cause"] for s in ev["sites"]} == {"fpm_down"}
    assert lad.plan_ladder(ev["sites"]) == [{"rung": "restart_fpm", "sites": ["a.test", "siteb.test", "c.test"],
                                             "cause": "fpm_down", "scope": "host", "services": ["php8.2-fpm"]}]


def test_apache_socket_lines_go_to_the_site_on_that_socket(tmp_path):
    ev = host(siteb=BAD_GATEWAY)
    for site in ev["sites"]:
        site["server"] = "apache"
        site["error_log"] = f"/var/log/apache2/{site['id']}_error.log"
    ev["logs"] = scan(tmp_path, **{"apache-error.log": (
        "[Mon Nov 23 22:17:12.125191 2026] [proxy:error] [pid 80:tid 96] (111)Connection refused: AH02454: FCGI: attempt "
        "to connect to Unix domain socket /run/php/siteb.sock (localhost:8000) failed\n"
        "[Mon Nov 23 22:17:12.125244 2026] [proxy_fcgi:error] [pid 80:tid 96] [client 172.17.0.1:36992] AH01079: failed "
        "to make connection to backend: localhost\n"
        "[Mon Nov 23 22:17:40.000001 2026] [proxy_fcgi:error] [pid 81:tid 98] [client 172.17.0.1:36999] AH01102: error "
        "reading status line from remote server httpd-UDS:0\n")})
    v.diagnose_sites(ev)
    site = verdict_of(ev, "siteb.test")
    assert site["failing"]
    # AH01102 names no socket and the log is shared: it stays host-level, a.test does not get it
    assert v.site_logs(ev["logs"], verdict_of(ev, "a.test"), ev["sites"])["total"] == 0
    assert v.site_logs(ev["logs"], site, ev["sites"])["signatures"]["connect_refused"]["count"] == 1


def test_a_site_dedicated_error_log_is_its_own(tmp_path):
    ev = host(c=BAD_GATEWAY)
    verdict_of(ev, "c.test")["error_log"] = "/var/log/nginx/c.error.log warn"
    scanner = ls.Scanner(since_epoch=None)
    (tmp_path / "c.error.log").write_text(
        '2026/11/23 22:10:05 [error] 812#812: *9 upstream prematurely closed connection while reading response header '
        'from upstream, client: 198.51.100.4, request: "GET / HTTP/1.1", host: "c.test"\n')
    scanner.scan_file(str(tmp_path / "c.error.log"))
    ev["logs"] = scanner.result()
    ev["logs"]["attributed"][0]["file"] = "/var/log/nginx/c.error.log"
    v.diagnose_sites(ev)
    assert verdict_of(ev, "c.test")["top_cause"] == "crashing_worker"
    assert verdict_of(ev, "a.test")["top_cause"] == "healthy"


def test_the_only_site_of_a_host_gets_the_host_level_lines(tmp_path):
    ev = host(a=BAD_GATEWAY)
    ev["sites"] = ev["sites"][:1]
    ev["logs"] = scan(tmp_path, **{"nginx-error.log": (
        '2026/11/23 22:10:05 [error] 812#812: *9 upstream sent too big header while reading response header from '
        'upstream, client: 198.51.100.4, request: "GET / HTTP/1.1", host: "10.0.0.4"\n')})
    assert v.diagnose_sites(ev)[0]["cause"] == "too_big_header"


def test_a_failing_site_outranks_an_answering_one_with_a_stronger_cause(tmp_path):
    ev = host(siteb=TIMEOUT)
    # a.test answers, but its window holds invalid headers (weighted down); siteb.test fails with no named cause
    ev["logs"] = scan(tmp_path, **{"nginx-error.log": nginx("a.test", "php8.2-fpm", "invalid", n=9)})
    host_verdict = v.diagnose_sites(ev)
    assert host_verdict[0]["site"] == "siteb.test"
    assert verdict_of(ev, "a.test")["top_cause"] == "invalid_header" and not verdict_of(ev, "a.test")["failing"]


def test_a_cdn_only_site_fails_through_its_public_url():
    ev = host()
    site = verdict_of(ev, "c.test")
    site["url"] = "https://c.example"
    site["http"].update(public={"/": {"status": 522}}, cdn="cloudflare", ray_id="8f1c2a3b4c5d6e7f-AMS")
    v.diagnose_sites(ev)
    assert (site["failing"], site["top_cause"]) == (True, "cdn_only")
    assert any("8f1c2a3b4c5d6e7f-AMS" in e for e in site["verdict"][0]["evidence"])
    assert lad.plan_ladder(ev["sites"]) == []


def test_no_sites_is_the_single_site_diagnosis():
    ev = {"http": BAD_GATEWAY, "fpm": {"services": [{"name": "php8.2-fpm", "active": "inactive"}]}}
    assert v.diagnose_sites(ev) == v.diagnose(ev)


@pytest.mark.parametrize(("group", "owners"), [
    ({"server": "WWW.SITEB.TEST"}, ["siteb.test"]),
    ({"server": "unknown.test", "upstream": "unix:/run/php/siteb.sock"}, ["siteb.test"]),
    ({"script": "/var/www/c", "pool": "www"}, ["c.test"]),
    ({"script": "/srv/elsewhere", "pool": "www"}, ["a.test", "c.test"]),
    ({"pool": "siteb"}, ["siteb.test"]),
    ({"upstream": "/run/php/php8.2-fpm.sock"}, ["a.test", "c.test"]),
    ({"file": SHARED_LOG}, []),
    ({"file": "/var/log/php/siteb-slow.log"}, ["siteb.test"]),
    ({}, []),
])
def test_group_owners_most_specific_key_first(group, owners):
    ev = host()
    pools = {p["name"]: [p] for p in ev["fpm"]["pools"]}
    assert v.group_owners(group, ev["sites"], pools) == owners


def test_a_site_that_was_not_probed_is_not_failing_and_is_judged_on_its_logs(tmp_path):
    ev = host()
    for site in ev["sites"]:
        site.pop("http")  # probe: false, or skipped by the deadline
    ev["logs"] = scan(tmp_path, **{"nginx-error.log": nginx("c.test", "php8.2-fpm", "invalid", n=2)})
    host_verdict = v.diagnose_sites(ev)
    c = verdict_of(ev, "c.test")
    assert (c["failing"], c["top_cause"]) == (False, "invalid_header")
    assert host_verdict[0]["site"] == "c.test"  # a site with a cause before the healthy ones
    assert lad.plan_ladder(ev["sites"]) == []
