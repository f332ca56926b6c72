#!/usr/bin/env python3
"""A bounded burst of HTTP GETs to a lab target on the loopback address, run from the controller
(to the port the lab publishes) or on the target itself (to its own port 80).

Bounded in every direction whatever is asked: at most 1000 requests, 64 in flight, 60 seconds of
wall clock, and only to 127.0.0.0/8 or ::1. Prints one JSON object: requests sent, status codes
seen (``"error"`` for requests that got no HTTP answer), and elapsed seconds.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

MAX_REQUESTS = 1000
MAX_CONCURRENCY = 64
MAX_SECONDS = 60.0


def loopback_only(host: str) -> str:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{host!r} is not an IP address; the burst only targets loopback") from None
    if not addr.is_loopback:
        raise argparse.ArgumentTypeError(f"{host} is not a loopback address; the burst only targets 127.0.0.0/8 or ::1")
    return host


def clamp(requests: int, concurrency: int, seconds: float, spread: float) -> tuple[int, int, float, float]:
    """The limits actually applied: the hard caps win over whatever was asked."""
    seconds = max(1.0, min(float(seconds), MAX_SECONDS))
    return (max(1, min(requests, MAX_REQUESTS)), max(1, min(concurrency, MAX_CONCURRENCY)),
            seconds, max(0.0, min(float(spread), seconds / 2)))


def one_request(host: str, port: int, path: str, timeout: float, vhost: str | None = None) -> str:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": vhost or f"{host}:{port}", "User-Agent": "wp502-lab-burst"})
        resp = conn.getresponse()
        resp.read()
        return str(resp.status)
    except (OSError, http.client.HTTPException):
        return "error"
    finally:
        conn.close()


def burst(host: str, port: int, paths: list[str], *, requests: int, concurrency: int, seconds: float,
          spread: float = 0.0, vhost: str | None = None) -> dict:
    """Send the requests; with ``spread``, their starts are paced evenly over that many seconds."""
    requests, concurrency, seconds, spread = clamp(requests, concurrency, seconds, spread)
    start = time.monotonic()
    deadline = start + seconds
    codes: Counter[str] = Counter()
    lock = threading.Lock()
    sent = 0

    def worker(i: int) -> None:
        nonlocal sent
        pause = start + spread * i / requests - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        left = deadline - time.monotonic()
        if left <= 0.5:
            return
        with lock:
            sent += 1
        code = one_request(host, port, paths[i % len(paths)], timeout=left, vhost=vhost)
        with lock:
            codes[code] += 1

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(worker, range(requests)))
    return {"requests": sent, "codes": dict(sorted(codes.items())), "elapsed": round(time.monotonic() - start, 3),
            "limits": {"requests": requests, "concurrency": concurrency, "seconds": seconds, "spread": spread}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", type=loopback_only, default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", action="append", help="path to request (repeatable; default / and /wp-login.php)")
    parser.add_argument("--vhost", help="the Host header (default HOST:PORT, the default vhost): the site to load")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=30.0, help="wall-clock limit (capped at 60)")
    parser.add_argument("--spread", type=float, default=0.0,
                        help="pace the request starts evenly over this many seconds (0: all at once)")
    args = parser.parse_args(argv)
    result = burst(args.host, args.port, args.path or ["/", "/wp-login.php"], requests=args.requests,
                   concurrency=args.concurrency, seconds=args.seconds, spread=args.spread, vhost=args.vhost)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
