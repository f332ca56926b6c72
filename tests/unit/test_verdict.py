"""wp502_verdict: evidence records -> the ranked cause a runbook would reach."""

from __future__ import annotations

import pytest
import wp502_verdict as v


def sigs(**counts):
    return {"signatures": {k: {"count": n, "samples": [f"sample {k}"]} for k, n in counts.items()}}


DOWN = {"status": 502}
UP = {"status": 200}
ORIGIN_DOWN = {"origin": {"/": DOWN, "/wp-login.php": DOWN}}
ORIGIN_UP = {"origin": {"/": UP, "/wp-login.php": UP}}
POOL = {"name": "www", "listen": "/run/php/php8.2-fpm.sock", "socket_exists": True, "workers": 2, "pm.max_children": 5}
FPM_UP = {"services": [{"name": "php8.2-fpm", "active": "active"}], "pools": [POOL]}
NGINX = {"kind": "nginx", "active": True, "upstreams": ["unix:/run/php/php8.2-fpm.sock"]}

CASES = [
    ("healthy", {"http": ORIGIN_UP, "fpm": FPM_UP, "frontend": NGINX, "logs": sigs()}),
    ("cdn_only", {"http": {**ORIGIN_UP, "public": {"/": DOWN}, "cdn": "cloudflare", "ray_id": "8f1c2a3b4c5d6e7f-AMS"},
                  "fpm": FPM_UP, "frontend": NGINX}),
    ("fpm_down", {"http": ORIGIN_DOWN, "frontend": NGINX, "logs": sigs(connect_refused=12),
                  "fpm": {"services": [{"name": "php8.2-fpm", "active": "inactive"}],
                          "pools": [{**POOL, "socket_exists": False}]}}),
    ("socket_mismatch", {"http": ORIGIN_DOWN, "logs": sigs(connect_refused=30),
                         "frontend": {**NGINX, "upstreams": ["unix:/run/php/php7.4-fpm.sock"]}, "fpm": FPM_UP}),
    ("slow_plugin", {"http": ORIGIN_DOWN, "frontend": NGINX, "fpm": {**FPM_UP, "pools": [{**POOL, "workers": 5}]},
                     "logs": {**sigs(max_children=3, connect_unavailable=40, slow_request=9),
                              "suspects": [{"type": "plugin", "slug": "heavy-analytics", "count": 9,
                                            "sources": {"slowlog": 9}}]}}),
    ("capacity", {"http": ORIGIN_DOWN, "frontend": NGINX, "fpm": FPM_UP, "peak_hours": {"recurring": True},
                  "logs": sigs(max_children=4, connect_unavailable=120)}),
    ("crashing_worker", {"http": ORIGIN_DOWN, "frontend": NGINX, "fpm": FPM_UP,
                         "logs": {**sigs(premature_close=5, child_signal=5), "child_signals": {"SIGSEGV": 5}}}),
    ("invalid_header", {"http": ORIGIN_DOWN, "frontend": NGINX, "fpm": FPM_UP, "logs": sigs(invalid_header=7)}),
    ("too_big_header", {"http": ORIGIN_DOWN, "frontend": NGINX, "fpm": FPM_UP, "logs": sigs(too_big_header=7)}),
    ("upstream_timeout", {"http": {"origin": {"/": {"status": 504}}}, "frontend": NGINX, "fpm": FPM_UP,
                          "logs": sigs(upstream_timeout=3)}),
    ("slow_database", {"http": {"origin": {"/": {"status": 504}}}, "frontend": NGINX, "fpm": FPM_UP,
                       "logs": sigs(upstream_timeout=3), "db": {"slow_queries": 18, "long_running": [{"time": 40}]}}),
    ("bom", {"http": ORIGIN_UP, "fpm": FPM_UP, "frontend": NGINX,
             "wordpress": [{"path": "/var/www/wordpress", "bom_files": ["wp-content/plugins/x/x.php"]}]}),
    ("oom", {"http": ORIGIN_DOWN, "fpm": FPM_UP, "frontend": NGINX, "logs": sigs(premature_close=1),
             "host": {"oom": {"counts": {"php-fpm": 3}}}}),
    ("disk_full", {"http": ORIGIN_DOWN, "fpm": FPM_UP, "frontend": NGINX,
                   "host": {"disks": [{"path": "/var/log", "free": 1024, "used_pct": 100.0}]}}),
    ("autoload_bloat", {"http": ORIGIN_UP, "fpm": FPM_UP, "frontend": NGINX, "db": {"autoload_bytes": 1500000}}),
    ("unknown", {"http": ORIGIN_DOWN, "fpm": FPM_UP, "frontend": NGINX, "logs": sigs()}),
]


@pytest.mark.parametrize(("expected", "evidence"), CASES, ids=[c[0] for c in CASES])
def test_top_cause(expected, evidence):
    causes = v.diagnose(evidence)
    assert causes[0]["cause"] == expected, causes
    assert all(c["cause"] in v.CAUSES for c in causes)
    assert all(0 <= c["confidence"] <= 1 for c in causes)
    assert [c["confidence"] for c in causes] == sorted((c["confidence"] for c in causes), reverse=True)
    assert causes[0]["evidence"]


def test_slow_plugin_names_the_slug_and_the_plugins_rung():
    top = v.diagnose(CASES[4][1])[0]
    assert (top["slug"], top["rungs"]) == ("heavy-analytics", ["plugins"])


def test_causes_the_ladder_cannot_fix_carry_a_next_step():
    for cause in ("socket_mismatch", "slow_database", "oom", "disk_full", "cdn_only"):
        entry = next(c for e, ev in CASES for c in v.diagnose(ev) if c["cause"] == cause)
        assert entry["next_step"]
        # a slow database may come from a plugin's queries: taking plugins out is worth one rung
        assert entry["rungs"] == (["plugins"] if cause == "slow_database" else [])


def test_past_trouble_on_a_site_that_answers_now_weighs_less():
    now_down = v.diagnose({"http": ORIGIN_DOWN, "logs": sigs(invalid_header=3)})[0]
    now_up = v.diagnose({"http": ORIGIN_UP, "logs": sigs(invalid_header=3)})[0]
    assert now_up["cause"] == "invalid_header"
    assert now_up["confidence"] < now_down["confidence"]


def test_empty_evidence_is_not_an_error():
    assert v.diagnose({})[0]["cause"] == "healthy"
    assert v.diagnose(None)[0]["cause"] == "healthy"


@pytest.mark.parametrize(("addr", "norm"), [("/run/php/a.sock", "unix:/run/php/a.sock"), ("unix:/run/php/a.sock:", "unix:/run/php/a.sock"),
                                            ("9000", "127.0.0.1:9000"), ("localhost:9000", "127.0.0.1:9000"), (None, None)])
def test_addresses_compare_in_one_form(addr, norm):
    assert v.norm_addr(addr) == norm


def test_timeouts_with_a_plugin_in_the_slow_stacks_name_it():
    top = v.diagnose({"http": {"origin": {"/": {"status": 504}}}, "fpm": FPM_UP, "frontend": NGINX,
                      "logs": {**sigs(upstream_timeout=2, slow_request=2),
                               "suspects": [{"type": "plugin", "slug": "quote-api", "count": 2, "sources": {"slowlog": 2}}],
                               "slow_functions": {"stream_socket_client": 2}}})[0]
    assert (top["cause"], top["slug"]) == ("upstream_timeout", "quote-api")


def test_slow_stacks_waiting_in_mysql_point_at_the_database_not_the_plugin():
    top = v.diagnose({"http": {"origin": {"/": {"status": 504}}}, "fpm": FPM_UP, "frontend": NGINX,
                      "db": {"slow_queries": 6},
                      "logs": {**sigs(upstream_timeout=1, slow_request=3),
                               "suspects": [{"type": "plugin", "slug": "report-cache", "count": 3, "sources": {"slowlog": 3}}],
                               "slow_functions": {"mysqli_query": 3}}})[0]
    assert top["cause"] == "slow_database"


def test_an_origin_that_does_not_answer_in_time_is_a_timeout():
    hung = {"status": None, "error": "timed out", "elapsed": 6.0}
    top = v.diagnose({"http": {"origin": {"/": hung, "/wp-login.php": hung}}, "fpm": FPM_UP, "frontend": NGINX})[0]
    assert top["cause"] == "upstream_timeout"
    slow_200 = {"status": 200, "elapsed": 8.2}
    assert v.origin_ok({"origin": {"/": slow_200}}) is False


def test_status_page_and_timeout_chain_feed_the_saturation_evidence():
    pool = {**POOL, "status": {"max_children_reached": 3},
            "timeout_chain": {"flags": ["the front-end gives up after 15s (504) while PHP may run 30s"]}}
    causes = v.diagnose({"http": ORIGIN_DOWN, "fpm": {**FPM_UP, "pools": [pool]}, "frontend": NGINX, "logs": sigs()})
    sat = next(c for c in causes if c["cause"] == "pool_saturated")
    assert any("max children reached in: www" in e for e in sat["evidence"])
    assert any("gives up after 15s" in e for e in sat["evidence"])


def test_a_redirect_at_the_origin_is_an_answer():
    # http -> https, or to the canonical host: the origin is up
    assert v.origin_ok({"origin": {"/": {"status": 301, "elapsed": 0.05}, "/wp-login.php": {"status": 200, "elapsed": 0.1}}})
    assert v.diagnose({"http": {"origin": {"/": {"status": 301}}}, "fpm": FPM_UP, "frontend": NGINX})[0]["cause"] == "healthy"


# ---- static pools: saturated only on evidence ----------------------------------------------------------

STATIC_POOL = {**POOL, "pm": "static", "workers": 5, "pm.max_children": 5,
               "status": {"listen_queue": 0, "max_children_reached": 0, "active_processes": 1, "idle_processes": 4}}


def test_a_healthy_static_pool_with_all_its_workers_is_healthy():
    # pm = static always has pm.max_children workers: that is how it is configured, not a full pool
    causes = v.diagnose({"http": ORIGIN_UP, "fpm": {**FPM_UP, "pools": [STATIC_POOL]}, "frontend": NGINX, "logs": sigs()})
    assert [c["cause"] for c in causes] == ["healthy"]


def test_a_dynamic_pool_at_its_limit_is_still_saturated():
    causes = v.diagnose({"http": ORIGIN_DOWN, "fpm": {**FPM_UP, "pools": [{**POOL, "workers": 5}]}, "frontend": NGINX,
                         "logs": sigs()})
    assert "pool_saturated" in [c["cause"] for c in causes]


@pytest.mark.parametrize("evidence", [
    {"status": {**STATIC_POOL["status"], "listen_queue": 7}},
    {"status": {**STATIC_POOL["status"], "max_children_reached": 2}},
    {"logs": sigs(max_children=3)},
    {"logs": sigs(seems_busy=2)},
    {"logs": sigs(connect_unavailable=4)},
    {"status": {**STATIC_POOL["status"], "active_processes": 5, "idle_processes": 0}, "logs": sigs(slow_request=6)},
], ids=["listen-queue", "max-children-reached", "max-children-log", "seems-busy", "eagain", "all-busy-and-slow"])
def test_a_static_pool_with_evidence_of_saturation_is_saturated(evidence):
    pool = {**STATIC_POOL, **({"status": evidence["status"]} if "status" in evidence else {})}
    causes = v.diagnose({"http": ORIGIN_DOWN, "fpm": {**FPM_UP, "pools": [pool]}, "frontend": NGINX,
                         "logs": evidence.get("logs", sigs())})
    assert causes[0]["cause"] in ("pool_saturated", "capacity"), causes
    assert "pool_saturated" in [c["cause"] for c in causes]


def test_slow_requests_alone_on_an_idle_static_pool_are_no_saturation():
    causes = v.diagnose({"http": ORIGIN_UP, "fpm": {**FPM_UP, "pools": [STATIC_POOL]}, "frontend": NGINX,
                         "logs": sigs(slow_request=2)})
    assert "pool_saturated" not in [c["cause"] for c in causes]


# ---- the database ----------------------------------------------------------------------------------------

DB_FAILED = {"service": "mariadb", "active": "failed", "socket": "/run/mysqld/mysqld.sock", "socket_exists": False}
ORIGIN_500 = {"origin": {"/": {"status": 500}, "/wp-login.php": {"status": 500}}}
WP_DB_DOWN = {"path": "/var/www/wordpress", "config_values": {"db_host": "localhost"},
              "bom_files": [], "bom_files_unproven": ["wp-content/plugins/old-gallery/gallery.php"],
              "db": {"reachable": False, "error": "ERROR 2002 (HY000): Can't connect to local server through socket "
                                                  "'/run/mysqld/mysqld.sock' (2)"}}


def test_mariadb_down_is_mysql_down_with_its_rung_and_no_bom():
    causes = v.diagnose({"http": ORIGIN_500, "fpm": FPM_UP, "frontend": NGINX, "logs": sigs(),
                         "host": {"database": DB_FAILED}, "wordpress": [WP_DB_DOWN], "db": WP_DB_DOWN["db"]})
    top = causes[0]
    assert (top["cause"], top["rungs"]) == ("mysql_down", ["restart_db"])
    assert top["confidence"] == v.MYSQL_DOWN_SERVICE and top["next_step"]
    assert any("mariadb is failed" in e for e in top["evidence"])
    assert any("ERROR 2002" in e for e in top["evidence"])
    # plugins cannot be read from a database that is down: a BOM in a plugin file proves nothing
    assert "bom" not in [c["cause"] for c in causes]
    assert top["bom_files_unproven"] == ["wp-content/plugins/old-gallery/gallery.php"]
    assert any("cannot be proven loaded" in e for e in top["evidence"])


@pytest.mark.parametrize("error", [
    "ERROR 2002 (HY000): Can't connect to local MySQL server through socket '/var/run/mysqld/mysqld.sock' (2)",
    "ERROR 2003 (HY000): Can't connect to MySQL server on '127.0.0.1:3306' (111 \"Connection refused\")",
    "ERROR 2013 (HY000): Lost connection to server at 'handshake: reading initial communication packet', system error: 0",
    "ERROR 1040 (08004): Too many connections",
])
def test_a_local_database_that_refuses_connections_is_mysql_down(error):
    db = {"reachable": False, "error": error}
    causes = v.diagnose({"http": ORIGIN_500, "fpm": FPM_UP, "frontend": NGINX, "db": db,
                         "host": {"database": {"service": "mariadb", "active": "active"}},
                         "wordpress": [{"path": "/var/www/wordpress", "config_values": {"db_host": "127.0.0.1:3306"}}]})
    assert (causes[0]["cause"], causes[0]["rungs"]) == ("mysql_down", ["restart_db"])


def test_access_denied_is_credentials_not_a_restart():
    db = {"reachable": False, "error": "ERROR 1045 (28000): Access denied for user 'wp'@'localhost' (using password: YES)"}
    causes = v.diagnose({"http": ORIGIN_500, "fpm": FPM_UP, "frontend": NGINX, "db": db,
                         "host": {"database": {"service": "mariadb", "active": "active"}}})
    assert (causes[0]["cause"], causes[0]["rungs"]) == ("db_access_denied", [])
    assert "mysql_down" not in [c["cause"] for c in causes]


def test_a_remote_database_down_gets_no_local_restart():
    db = {"reachable": False, "error": "ERROR 2003 (HY000): Can't connect to MySQL server on 'db1.internal' (110)"}
    causes = v.diagnose({"http": ORIGIN_500, "fpm": FPM_UP, "frontend": NGINX, "db": db,
                         "host": {"database": DB_FAILED},  # this host's own MariaDB is not the site's
                         "wordpress": [{"path": "/var/www/wordpress", "config_values": {"db_host": "db1.internal"}}]})
    assert (causes[0]["cause"], causes[0]["rungs"]) == ("mysql_down", [])
    assert "db1.internal" in causes[0]["next_step"]


@pytest.mark.parametrize(("db_host", "local"), [(None, True), ("localhost", True), ("127.0.0.1:3307", True),
                                                ("localhost:/run/mysqld/mysqld.sock", True), ("[::1]:3306", True),
                                                ("db1.internal", False), ("10.0.0.5:3306", False)])
def test_db_is_local(db_host, local):
    assert v.db_is_local(db_host) is local


def test_proven_bom_files_still_make_a_bom_cause():
    wp = {"path": "/var/www/wordpress", "bom_files": ["wp-config.php"], "bom_files_inactive": ["wp-content/plugins/x/x.php"]}
    causes = v.diagnose({"http": ORIGIN_DOWN, "fpm": FPM_UP, "frontend": NGINX, "logs": sigs(invalid_header=2),
                         "wordpress": [wp]})
    bom = next(c for c in causes if c["cause"] == "bom")
    assert bom["files"] == ["wp-config.php"]


def test_a_bom_outside_the_docroot_is_named_by_its_path_and_given_to_the_rung_as_found():
    """A WP_CONTENT_DIR elsewhere (a docroot reached through a symlink, content beside it: seen on an agency host):
    the evidence names /srv/..., not ../../../srv/...; the rung still gets the files relative to the docroot."""
    rel = "../../../srv/www/shop.example/content/plugins/wp502-fault-bom/wp502-fault-bom.php"
    wp = {"path": "/var/www/shop", "bom_files": [rel, "wp-config.php"],
          "bom_files_unproven": ["../../../srv/www/shop.example/content/themes/old/functions.php"]}
    causes = v.diagnose({"http": ORIGIN_DOWN, "fpm": FPM_UP, "frontend": NGINX, "logs": sigs(invalid_header=2),
                         "wordpress": [wp]})
    bom = next(c for c in causes if c["cause"] == "bom")
    assert bom["files"] == [rel, "wp-config.php"]
    assert bom["evidence"][0] == ("PHP files with a BOM or whitespace before <?php: "
                                  "/srv/www/shop.example/content/plugins/wp502-fault-bom/wp502-fault-bom.php, wp-config.php")
    assert causes[0]["bom_files_unproven"] == ["/srv/www/shop.example/content/themes/old/functions.php"]
