"""wp502_uptime: an ansible-rulebook event source that probes WordPress sites, as the seed's
uptime check did, and says when one fails at the origin.

Each site is probed on ``/`` and ``/wp-login.php`` every ``interval`` seconds. Two endpoints tell
the failures apart: both 5xx is the origin down (PHP-FPM, or everything); ``/`` fine and the login
page 5xx is PHP down behind a cached home page (a page cache or CDN still serves ``/``).

Arguments::

    sites:      [{host: INVENTORY_NAME, url: http://127.0.0.1:8080, host_header: www.example.com}]
    interval:   seconds between two rounds (default 30)
    timeout:    seconds each request has (default 10)
    once:       stop after one round (tests)

Events (one per unhealthy site per round, and one when a site recovers)::

    {"wp502": {"host": "web1", "state": "down" | "up", "kind": "origin_down" | "php_down_cached_home"
               | "home_down" | "recovered", "codes": {"/": 502, "/wp-login.php": 502},
               "url": "...", "source": "uptime"}}
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import HTTPRedirectHandler, Request, build_opener

PATHS = ("/", "/wp-login.php")
FAILING = range(500, 600)


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def probe(url: str, host_header: str | None, timeout: float) -> dict[str, int | None]:
    """Status of each path (None: no answer in time). Redirects count as answers."""
    opener = build_opener(_NoRedirect)
    codes: dict[str, int | None] = {}
    for path in PATHS:
        headers = {"User-Agent": "wp502-uptime"}
        if host_header:
            headers["Host"] = host_header
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"only http(s) URLs are probed, not {url!r}")
        try:
            with opener.open(Request(url.rstrip("/") + path, headers=headers), timeout=timeout) as resp:  # noqa: S310 - http(s) only
                codes[path] = resp.status
        except HTTPError as exc:
            codes[path] = exc.code
        except (URLError, OSError, ValueError):
            codes[path] = None
    return codes


def classify(codes: dict[str, int | None]) -> str | None:
    """The kind of failure the two endpoints show, or None when the site answers."""
    home, login = codes.get("/"), codes.get("/wp-login.php")
    home_bad, login_bad = home is None or home in FAILING, login is None or login in FAILING
    if home_bad and login_bad:
        return "origin_down"
    if login_bad:
        return "php_down_cached_home"
    if home_bad:
        return "home_down"
    return None


async def main(queue: asyncio.Queue, args: dict[str, Any]) -> None:
    sites = args.get("sites") or []
    if not sites:
        raise ValueError("wp502_uptime needs sites: [{host: ..., url: ...}]")
    interval = float(args.get("interval", 30))
    timeout = float(args.get("timeout", 10))
    down: set[str] = set()
    while True:
        started = time.monotonic()
        rounds = await asyncio.gather(*(asyncio.to_thread(probe, s["url"], s.get("host_header"), timeout) for s in sites))
        for site, codes in zip(sites, rounds, strict=True):
            kind = classify(codes)
            host = site.get("host") or site["url"]
            if kind:
                down.add(host)
                await queue.put({"wp502": {"host": host, "state": "down", "kind": kind, "codes": codes, "url": site["url"],
                                           "source": "uptime"}})
            elif host in down:
                down.discard(host)
                await queue.put({"wp502": {"host": host, "state": "up", "kind": "recovered", "codes": codes,
                                           "url": site["url"], "source": "uptime"}})
        if args.get("once"):
            return
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


if __name__ == "__main__":
    # Try it by hand: python wp502_uptime.py http://127.0.0.1:18081

    import sys

    class _Print:
        async def put(self, event):
            print(event)

    asyncio.run(main(_Print(), {"sites": [{"host": u, "url": u} for u in sys.argv[1:]], "once": True}))
