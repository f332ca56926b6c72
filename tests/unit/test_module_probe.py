"""The wp502_probe module against a real HTTP server on 127.0.0.1: healthy, broken, slow, retried."""

from __future__ import annotations

import http.server
import threading
import time
from typing import ClassVar

import pytest
import wp502_probe as mod


class Origin(http.server.BaseHTTPRequestHandler):
    """/ok 200, /bad 502, /slow 200 after 1.5 s, /flaky 502 then 200; records the Host header."""

    calls: ClassVar[dict] = {"flaky": 0}
    hosts: ClassVar[list] = []

    def do_GET(self):
        Origin.hosts.append(self.headers.get("Host"))
        if self.path == "/slow":
            time.sleep(1.5)
        code = {"/bad": 502, "/wp-login.php": 200, "/": 200, "/ok": 200, "/slow": 200, "/bom-login": 200}.get(self.path, 404)
        if self.path == "/flaky":
            Origin.calls["flaky"] += 1
            code = 502 if Origin.calls["flaky"] < 3 else 200
        self.send_response(code)
        if code == 502:
            self.send_header("cf-ray", "8f1c2a3b4c5d6e7f-AMS")
        if self.path == "/wp-login.php":  # as WordPress does; /bom-login is a login page that lost its headers
            self.send_header("Set-Cookie", "wordpress_test_cookie=WP%20Cookie%20check; path=/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def port():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()


def test_healthy_origin_with_the_site_host_header(port, run_module):
    out = run_module(mod, port=port, host="shop.example.com", paths=["/", "/wp-login.php"])
    assert out["healthy"] is True and out["tries"] == 1 and out["changed"] is False
    assert {p: r["status"] for p, r in out["origin"].items()} == {"/": 200, "/wp-login.php": 200}
    assert "shop.example.com" in Origin.hosts


def test_a_502_and_a_page_slower_than_the_deadline_are_not_healthy(port, run_module):
    assert run_module(mod, port=port, paths=["/ok", "/bad"])["healthy"] is False
    slow = run_module(mod, port=port, paths=["/slow"], deadline=0.5)
    assert slow["healthy"] is False and slow["origin"]["/slow"]["status"] is None


def test_retries_wait_for_a_restarted_pool(port, run_module):
    out = run_module(mod, port=port, paths=["/flaky"], retries=3, delay=0.1)
    assert out["healthy"] is True and out["tries"] == 3


def test_public_url_names_the_cdn(port, run_module):
    out = run_module(mod, port=port, paths=["/bad"], url=f"http://127.0.0.1:{port}")
    assert out["cdn"] == {"name": "cloudflare", "request_id": "8f1c2a3b4c5d6e7f-AMS"}


def test_nobody_listening(run_module):
    out = run_module(mod, port=1, deadline=1)
    assert out["healthy"] is False and out["origin"]["/"]["status"] is None


@pytest.mark.parametrize(("args", "message"), [
    ({"deadline": 0}, "deadline must be between"),
    ({"paths": ["wp-login.php"]}, "paths must start with /"),
    ({"url": "file:///etc/passwd"}, "url must be an http"),
    ({"port": 70000}, "port must be between"),
])
def test_bad_input(run_module, args, message):
    out = run_module(mod, **args)
    assert out["_rc"] == 1 and message in out["msg"]


def test_a_login_page_that_cannot_set_its_cookie_is_not_healthy(port, run_module):
    lost = run_module(mod, port=port, paths=["/", "/bom-login"], cookie_paths=["/bom-login"])
    assert lost["healthy"] is False and lost["origin"]["/bom-login"] == {**lost["origin"]["/bom-login"], "status": 200, "cookie": False}
    assert run_module(mod, port=port, paths=["/", "/bom-login"], cookie_paths=[])["healthy"] is True
    login = run_module(mod, port=port)
    assert login["healthy"] is True and login["origin"]["/wp-login.php"]["cookie"] is True
