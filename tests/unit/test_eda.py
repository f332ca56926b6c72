"""The Event-Driven Ansible sources without ansible-rulebook: the uptime check against a real HTTP
server on 127.0.0.1, the failure kinds its two endpoints tell apart, and webhook payloads."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import sys
import threading
import urllib.request
from pathlib import Path
from typing import ClassVar

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "extensions" / "eda" / "plugins" / "event_source"))
import wp502_uptime
import wp502_webhook


@pytest.mark.parametrize(("codes", "kind"), [
    ({"/": 502, "/wp-login.php": 502}, "origin_down"),
    ({"/": None, "/wp-login.php": None}, "origin_down"),
    ({"/": 200, "/wp-login.php": 504}, "php_down_cached_home"),
    ({"/": 500, "/wp-login.php": 200}, "home_down"),
    ({"/": 301, "/wp-login.php": 200}, None),
    ({"/": 200, "/wp-login.php": 403}, None),
])
def test_two_endpoints_tell_failures_apart(codes, kind):
    assert wp502_uptime.classify(codes) == kind


class Site(http.server.BaseHTTPRequestHandler):
    """A cached home page in front of a dead PHP: / 200, /wp-login.php 502 (while broken)."""

    broken: ClassVar[dict] = {"on": True}

    def do_GET(self):
        self.send_response(502 if self.path == "/wp-login.php" and Site.broken["on"] else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Queue(list):
    async def put(self, item):
        self.append(item)


def test_uptime_reports_down_then_recovered():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        q = Queue()
        args = {"sites": [{"host": "web1", "url": url}], "once": True, "timeout": 5}
        asyncio.run(wp502_uptime.main(q, args))
        assert q == [{"wp502": {"host": "web1", "state": "down", "kind": "php_down_cached_home",
                                "codes": {"/": 200, "/wp-login.php": 502}, "url": url, "source": "uptime"}}]
        # a running check says so when the site answers again, once
        Site.broken["on"] = False
        q2 = Queue()

        async def two_rounds():
            Site.broken["on"] = True
            task = asyncio.create_task(wp502_uptime.main(q2, {"sites": args["sites"], "interval": 0.2, "timeout": 5}))
            while not q2:
                await asyncio.sleep(0.05)
            Site.broken["on"] = False
            while len(q2) < 2:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            task.cancel()

        asyncio.run(two_rounds())
        assert [e["wp502"]["state"] for e in q2] == ["down", "up"]
    finally:
        srv.shutdown()
    with pytest.raises(ValueError, match="needs sites"):
        asyncio.run(wp502_uptime.main(Queue(), {}))


def test_alertmanager_and_generic_payloads():
    am = {"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "WordPress502", "instance": "web1:9100"}, "annotations": {"summary": "502s"}},
        {"status": "resolved", "labels": {"wp502_host": "web2"}},
        {"status": "firing", "labels": {"alertname": "NoHost"}},
    ]}
    events = wp502_webhook.normalise(am)
    assert [(e["wp502"]["host"], e["wp502"]["state"], e["wp502"]["source"]) for e in events] == [
        ("web1", "down", "alertmanager"), ("web2", "up", "alertmanager")]
    assert events[0]["wp502"]["summary"] == "502s"
    assert wp502_webhook.normalise({"host": "web3", "status": 504})[0]["wp502"]["state"] == "down"
    assert wp502_webhook.normalise({"host": "web3", "status": 200})[0]["wp502"]["state"] == "up"
    with pytest.raises(ValueError, match="names its"):
        wp502_webhook.normalise({"status": 502})
    with pytest.raises(ValueError, match="JSON object"):
        wp502_webhook.normalise([1])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webhook_listens_on_loopback_and_checks_the_token():
    port = _free_port()
    q = Queue()

    def post(body, token=None):
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/alerts", data=json.dumps(body).encode(), method="POST",
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - a loopback http:// URL built here
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    async def scenario():
        task = asyncio.create_task(wp502_webhook.main(q, {"port": port, "token": "s3cret"}))
        await asyncio.sleep(0.5)
        codes = [await asyncio.to_thread(post, {"host": "web1", "status": 502}, "s3cret"),
                 await asyncio.to_thread(post, {"host": "web1", "status": 502}, "wrong"),
                 await asyncio.to_thread(post, {"nohost": 1}, "s3cret")]
        task.cancel()
        return codes

    assert asyncio.run(scenario()) == [202, 401, 400]
    assert [e["wp502"]["host"] for e in q] == ["web1"]
