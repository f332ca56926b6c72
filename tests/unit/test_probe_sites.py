"""wp502_probe with ``sites`` against a real HTTP server on 127.0.0.1 that serves three sites by Host
header, and the controller filters that pick the ladder's steps and give each site its outcome."""

from __future__ import annotations

import http.server
import importlib.util
import threading
from pathlib import Path
from typing import ClassVar

import pytest
import wp502_outcome
import wp502_probe as mod

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("wp502_steps_filter", ROOT / "plugins" / "filter" / "wp502_steps.py")
ladder_filter = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ladder_filter)


class Sites(http.server.BaseHTTPRequestHandler):
    """a.test answers, b.test answers 502 until ``heal_b``, c.test answers 200 with a login page that lost its
    cookie until ``heal_c``."""

    state: ClassVar[dict] = {"heal_b": False, "heal_c": False, "break_a": False}

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        code, cookie = 200, self.path == "/wp-login.php"
        if host == "a.test" and self.state["break_a"]:
            code = 502
        if host == "b.test" and not self.state["heal_b"]:
            code = 502
        if host == "c.test" and not self.state["heal_c"]:
            cookie = False
        self.send_response(code)
        if cookie:
            self.send_header("Set-Cookie", "wordpress_test_cookie=WP%20Cookie%20check; path=/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def origin():
    Sites.state.update(heal_b=False, heal_c=False, break_a=False)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sites)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    yield [{"id": "a.test", "host": "a.test", "port": port}, {"id": "b.test", "probe_host": "b.test", "port": port},
           {"id": "c.test", "host": "c.test", "port": port, "scheme": "http"}]
    srv.shutdown()


def test_every_site_is_asked_with_its_own_host_header(origin, run_module):
    out = run_module(mod, sites=origin, deadline=5)
    assert out["_rc"] == 0 and out["changed"] is False
    assert {sid: s["healthy"] for sid, s in out["sites"].items()} == {"a.test": True, "b.test": False, "c.test": False}
    assert out["failing"] == ["b.test", "c.test"] and out["healthy"] is False
    assert out["sites"]["b.test"]["origin"]["/"]["status"] == 502
    assert out["sites"]["c.test"]["origin"]["/wp-login.php"]["cookie"] is False  # 200 without its cookie: failing
    assert "judgement" not in out and out["not_asked"] == [] and "skipped" not in out


def test_the_judgement_says_healed_only_when_every_site_answers(origin, run_module):
    Sites.state["heal_b"] = True
    out = run_module(mod, sites=origin, answering=["a.test"], deadline=5)
    assert out["judgement"] == {"healed": False, "answering": ["a.test", "b.test"], "failing": ["c.test"],
                                "fixed": ["b.test"], "broke": []}
    Sites.state["heal_c"] = True
    assert run_module(mod, sites=origin, answering=["a.test"], deadline=5)["judgement"]["healed"] is True


def test_a_site_that_answered_and_fails_now_is_broke_and_never_healed(origin, run_module):
    Sites.state.update(heal_b=True, heal_c=True, break_a=True)
    out = run_module(mod, sites=origin, answering=["a.test"], expect=["b.test", "c.test"], deadline=5, retries=1, delay=0)
    assert out["judgement"]["broke"] == ["a.test"] and out["judgement"]["healed"] is False
    assert out["tries"] == 2  # a broken site is not what the step expected: asked again before judging


def test_expect_stops_retrying_once_the_steps_sites_answer(origin, run_module):
    Sites.state["heal_b"] = True  # c.test still fails: not this step's site
    out = run_module(mod, sites=origin, answering=["a.test"], expect=["b.test"], deadline=5, retries=3, delay=0)
    assert out["tries"] == 1 and out["judgement"]["fixed"] == ["b.test"] and out["judgement"]["healed"] is False


@pytest.mark.parametrize("args, message", [
    ({"sites": [{"host": "x"}]}, "unique id"),
    ({"sites": [{"id": "a"}, {"id": "a"}]}, "unique id"),
    ({"sites": [{"id": "a", "port": 70000}]}, "port must be"),
    ({"sites": [{"id": "a", "url": "ftp://x"}]}, "url must be"),
    ({"sites": [{"id": "a"}], "answering": ["b"]}, "not in sites"),
    ({"sites": [{"id": "a"}], "expect": ["a"]}, "expect needs answering"),
    ({"answering": ["a"]}, "only used with sites"),
])
def test_bad_input_gets_a_clear_error(run_module, args, message):
    out = run_module(mod, **args)
    assert out["_rc"] == 1 and message in out["msg"]


PLAN = [{"rung": "restart_fpm", "sites": ["a", "b"], "cause": "fpm_down", "scope": "host"},
        {"rung": "plugins", "sites": ["b"], "cause": "crashing_worker", "scope": "site"},
        {"rung": "plugins", "sites": ["c"], "cause": "slow_plugin", "scope": "site"},
        {"rung": "bom", "sites": ["c"], "cause": "bom", "scope": "site"}]


def test_the_ladder_keeps_the_steps_of_the_sites_failing_now():
    steps = ladder_filter.wp502_ladder_for(PLAN, ["b"])
    assert [(s["rung"], s["sites"], s["step"]) for s in steps] == [("restart_fpm", ["b"], "restart_fpm-1"),
                                                                   ("plugins", ["b"], "plugins-2")]
    assert ladder_filter.wp502_ladder_for(PLAN, ["b", "c"], ["plugins"]) == [
        dict(PLAN[1], step="plugins-1"), dict(PLAN[2], step="plugins-2")]
    assert ladder_filter.wp502_ladder_for(PLAN, []) == [] and ladder_filter.wp502_ladder_for(None, ["a"]) == []
    assert PLAN[0]["sites"] == ["a", "b"]  # the plan itself is left as it was


def test_a_site_that_answered_for_the_evidence_but_fails_now_gets_its_own_steps():
    sites = [{"id": "a", "plan": [{"rung": "restart_fpm", "sites": ["a"], "scope": "host"},
                                  {"rung": "plugins", "sites": ["a"], "scope": "site"}]},
             {"id": "b", "plan": []}, {"id": "c", "plan": [{"rung": "bom", "sites": ["c"], "scope": "site"}]}]
    # a and b failed for the evidence too: the plan serves them, their own plans are not used
    steps = ladder_filter.wp502_ladder_for(PLAN, ["a", "b"], None, sites)
    assert [(s["rung"], s["sites"], s["step"]) for s in steps] == [("restart_fpm", ["a", "b"], "restart_fpm-1"),
                                                                   ("plugins", ["b"], "plugins-2")]
    # a answered for the evidence (not in this plan) and fails now: its own steps after the plan's
    steps = ladder_filter.wp502_ladder_for(PLAN[2:], ["a", "c"], None, sites)
    assert [(s["rung"], s["sites"]) for s in steps] == [("plugins", ["c"]), ("bom", ["c"]), ("restart_fpm", ["a"]),
                                                        ("plugins", ["a"])]
    # a host rung already in the ladder serves it too
    steps = ladder_filter.wp502_ladder_for(PLAN[:1], ["b", "c"], ["restart_fpm", "plugins"], sites[:1] + sites[2:] + [
        {"id": "b", "plan": [{"rung": "restart_fpm", "sites": ["b"], "scope": "host"}]}])
    assert [(s["rung"], s["sites"]) for s in steps] == [("restart_fpm", ["b"])]
    steps = ladder_filter.wp502_ladder_for([], ["a", "c"], ["restart_fpm", "bom"], sites)
    assert [(s["rung"], s["sites"], s["step"]) for s in steps] == [("restart_fpm", ["a"], "restart_fpm-1"),
                                                                   ("bom", ["c"], "bom-2")]


def probe(*statuses):
    return {"origin": dict(zip(["/", "/wp-login.php"], [{"status": s} for s in statuses], strict=True))}


def test_each_site_gets_its_state_and_the_step_that_healed_it():
    sites = [{"id": "a", "top_cause": "healthy"}, {"id": "b", "top_cause": "crashing_worker"},
             {"id": "c", "top_cause": "bom"}, {"id": "d", "top_cause": "cdn_only", "http": {"cdn": "cloudflare", "ray_id": "R"}},
             {"id": "e", "top_cause": "healthy"}]
    start = {"a": probe(200, 200), "b": probe(502, 502), "c": probe(200, 200), "d": probe(200, 200), "e": probe(200, 200)}
    latest = dict(start, b=probe(200, 200), e=probe(502, 502))
    rungs = [{"rung": "restart_fpm", "sites": ["b", "c"], "fixed": [], "rolled_back": False},
             {"rung": "bom", "sites": ["c"], "fixed": ["b"], "rolled_back": True},
             {"rung": "plugins", "sites": ["b"], "fixed": ["b"], "culprits": ["bad"], "rolled_back": False}]
    out = {s["site"]: s for s in wp502_outcome.site_results(
        sites, start, latest, ["a", "d", "e"], ["a", "b", "d"], rungs)}
    assert out["a"]["state"] == "healthy" and out["a"]["before"] == "200" and out["a"]["healed_by"] is None
    # b: fixed by bom first, but bom was undone: healed by plugins, with plugins' culprit
    assert (out["b"]["state"], out["b"]["healed_by"], out["b"]["culprits"]) == ("healed", "plugins", ["bad"])
    assert out["b"]["before"] == "502" and out["b"]["after"] == "200"
    assert out["c"]["state"] == "not_healed"  # answered a 200 without its cookie: never counted as answering
    assert (out["d"]["state"], out["d"]["cdn"], out["d"]["ray_id"]) == ("cdn_only", "cloudflare", "R")
    assert out["e"]["state"] == "broke" and out["e"]["after"] == "502"
    assert wp502_outcome.site_results(sites[:1], {}, {}, [], [], [])[0]["before"] == "not asked"
    # What the run's state keeps of a site (site_brief) gives the same rows as the evidence's whole site.
    briefs = [wp502_outcome.site_brief(dict(s, docroot="/var/www/" + s["id"], plan=[{"rung": "plugins"}])) for s in sites]
    assert wp502_outcome.site_results(briefs, start, latest, ["a", "d", "e"], ["a", "b", "d"], rungs) == list(out.values())


@pytest.fixture
def tls_origin():
    """The same sites over TLS, with a self-signed certificate (tests/fixtures/tls, made for these tests only)."""
    import ssl

    Sites.state.update(heal_b=False, heal_c=False, break_a=False)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sites)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ROOT / "tests" / "fixtures" / "tls" / "origin.crt", ROOT / "tests" / "fixtures" / "tls" / "origin.key")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()


def test_an_https_origin_is_asked_without_checking_its_certificate_but_a_public_url_is_checked(tls_origin):
    from wp502_http import probe_sites

    port = tls_origin
    out = probe_sites([{"id": "a.test", "host": "a.test", "port": port, "scheme": "https"},
                       {"id": "b.test", "host": "b.test", "port": port, "scheme": "https",
                        "url": f"https://127.0.0.1:{port}"}], timeout=5)
    a, b = out["sites"]["a.test"], out["sites"]["b.test"]
    assert a["origin"]["/"]["status"] == 200 and a["origin"]["/wp-login.php"]["cookie"] is True
    assert a["origin_healthy"] is True
    assert b["origin"]["/"]["status"] == 502  # the origin's self-signed certificate is not what a probe checks
    # a visitor's request checks the certificate: a self-signed one fails, and says why
    assert b["public"]["/"]["status"] is None and "CERTIFICATE_VERIFY_FAILED" in b["public"]["/"]["error"]


def test_plain_http_sites_never_load_the_ca_certificates(origin, monkeypatch):
    """Neither wp502's context nor urllib's (which Python 3.12+ makes as its HTTPSHandler is built)."""
    import ssl

    import wp502_http

    loads = []
    real = ssl.SSLContext.load_default_certs
    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", lambda self, *a: loads.append(a) or real(self, *a))
    out = wp502_http.probe_sites(origin, timeout=5)
    assert out["sites"]["a.test"]["origin_healthy"] is True and loads == []
    ssl.create_default_context()  # the recorder itself sees a load
    assert len(loads) == 1
