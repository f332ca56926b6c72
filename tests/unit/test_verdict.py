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
