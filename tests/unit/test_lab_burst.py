"""The lab's burst tool: bounded, loopback only, and it counts what the server answers."""

from __future__ import annotations

import argparse
import http.server
import importlib.util
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("wp502_lab_burst", ROOT / "roles/wp502_lab/files/wp502_lab_burst.py")
burst_mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(burst_mod)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 502 if self.path == "/broken" else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_counts_statuses(server):
    result = burst_mod.burst("127.0.0.1", server, ["/", "/broken"], requests=20, concurrency=5, seconds=10)
    assert result["requests"] == 20
    assert result["codes"] == {"200": 10, "502": 10}


def test_caps_apply_whatever_is_asked():
    assert burst_mod.clamp(10**6, 10**4, 10**4, 10**4) == (
        burst_mod.MAX_REQUESTS, burst_mod.MAX_CONCURRENCY, burst_mod.MAX_SECONDS, burst_mod.MAX_SECONDS / 2)
    assert burst_mod.clamp(0, 0, 0, -5) == (1, 1, 1.0, 0.0)


def test_burst_reports_the_limits_it_applied(server):
    result = burst_mod.burst("127.0.0.1", server, ["/"], requests=5, concurrency=10**4, seconds=2, spread=10)
    assert result["limits"] == {"requests": 5, "concurrency": burst_mod.MAX_CONCURRENCY, "seconds": 2.0, "spread": 1.0}
    assert result["codes"] == {"200": 5}


def test_spread_paces_the_starts(server):
    result = burst_mod.burst("127.0.0.1", server, ["/"], requests=10, concurrency=10, seconds=10, spread=1.0)
    assert result["codes"] == {"200": 10}
    assert result["elapsed"] >= 0.9


def test_no_answer_counts_as_error():
    # A closed loopback port: connection refused, counted, not raised.
    result = burst_mod.burst("127.0.0.1", 1, ["/"], requests=3, concurrency=3, seconds=5)
    assert result["codes"] == {"error": 3}


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "::1"])
def test_loopback_accepted(host):
    assert burst_mod.loopback_only(host) == host


@pytest.mark.parametrize("host", ["10.0.0.5", "172.17.0.2", "192.168.1.10", "8.8.8.8", "localhost.example", "wp1"])
def test_anything_else_refused(host):
    with pytest.raises(argparse.ArgumentTypeError):
        burst_mod.loopback_only(host)


def test_cli_refuses_a_remote_target(capsys):
    with pytest.raises(SystemExit):
        burst_mod.main(["--host", "172.17.0.2", "--port", "80"])
    assert "not a loopback address" in capsys.readouterr().err


class HostHandler(Handler):
    def do_GET(self):
        code = 200 if self.headers.get("Host") == "siteb.test" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_vhost_names_the_site_in_the_host_header():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HostHandler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        port = srv.server_address[1]
        assert burst_mod.burst("127.0.0.1", port, ["/"], requests=4, concurrency=2, seconds=10,
                               vhost="siteb.test")["codes"] == {"200": 4}
        assert burst_mod.burst("127.0.0.1", port, ["/"], requests=4, concurrency=2, seconds=10)["codes"] == {"404": 4}
    finally:
        srv.shutdown()
        srv.server_close()
