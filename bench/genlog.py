#!/usr/bin/env python3
"""Generate a realistic, noisy nginx error log for benchmarks: mostly 404s, rate limiting, SSL
handshake noise, buffered-upstream warnings and PHP notices, with a few thousand 502 lines among them.

    genlog.py OUT --size 1G [--end-epoch E] [--span-days 7] [--seed 1]

Timestamps increase through the file and end at --end-epoch (default: now), so windowed scans
(since 15m) have a real window to find. Deterministic for a given seed and size.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

NOISE = [
    (55, '[error] {pid}#{pid}: *{cid} open() "/var/www/wordpress/{junk}" failed (2: No such file or directory), '
         'client: {ip}, server: example.com, request: "GET /{junk} HTTP/1.1", host: "example.com"'),
    (18, '[error] {pid}#{pid}: *{cid} limiting requests, excess: {excess} by zone "perip", client: {ip}, '
         'server: example.com, request: "POST /wp-login.php HTTP/1.1", host: "example.com"'),
    (12, '[info] {pid}#{pid}: *{cid} SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) '
         'while SSL handshaking, client: {ip}, server: 0.0.0.0:443'),
    (8, '[warn] {pid}#{pid}: *{cid} an upstream response is buffered to a temporary file '
        '/var/lib/nginx/fastcgi/{d}/00/00000{cid} while reading upstream, client: {ip}, server: example.com, '
        'request: "GET /wp-admin/admin-ajax.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", '
        'host: "example.com"'),
    (7, '[error] {pid}#{pid}: *{cid} FastCGI sent in stderr: "PHP message: PHP Notice:  Undefined index: foo in '
        '/var/www/wordpress/wp-content/themes/twentytwentythree/functions.php on line 12" while reading response '
        'header from upstream, client: {ip}, server: example.com, request: "GET / HTTP/1.1", upstream: '
        '"fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com"'),
]
SIGNAL = [
    '[crit] {pid}#{pid}: *{cid} connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) '
    'while connecting to upstream, client: {ip}, server: example.com, request: "GET / HTTP/1.1", upstream: '
    '"fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com"',
    '[error] {pid}#{pid}: *{cid} connect() to unix:/run/php/php8.2-fpm.sock failed (11: Resource temporarily '
    'unavailable) while connecting to upstream, client: {ip}, server: example.com, request: "GET /shop/ HTTP/1.1", '
    'upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com"',
    '[error] {pid}#{pid}: *{cid} upstream timed out (110: Connection timed out) while reading response header from '
    'upstream, client: {ip}, server: example.com, request: "GET /wp-cron.php HTTP/1.1", upstream: '
    '"fastcgi://unix:/run/php/php8.2-fpm.sock", host: "example.com"',
    '[error] {pid}#{pid}: *{cid} recv() failed (104: Connection reset by peer) while reading response header from '
    'upstream, client: {ip}, server: example.com, request: "GET / HTTP/1.1", upstream: '
    '"fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com"',
    '[error] {pid}#{pid}: *{cid} upstream sent too big header while reading response header from upstream, client: '
    '{ip}, server: example.com, request: "GET /cart/ HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", host: '
    '"example.com"',
]
JUNK = ["favicon.ico", "wp-content/uploads/2019/01/a.jpg", ".env", "xmlrpc.php.bak", "apple-touch-icon.png",
        "wp-includes/js/old.js", "robots.txt.orig", "sitemap.xml.gz"]
IPS = ["203.0.113.7", "198.51.100.23", "2001:db8::1f", "192.0.2.44", "2001:db8:85a3::8a2e:370:7334"]


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("IB")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def _bodies(seed: int, count: int = 100000, signal_every: int = 2000) -> list[str]:
    """A deterministic cycle of rendered line bodies (everything after the timestamp)."""
    rng = random.Random(seed)
    weights = [w for w, _ in NOISE]
    templates = [t for _, t in NOISE]
    out = []
    for cid in range(1, count + 1):
        tpl = SIGNAL[(cid // signal_every) % len(SIGNAL)] if cid % signal_every == 0 else rng.choices(templates, weights)[0]
        # Real clients and paths vary, which is what makes real logs compress about 10x, not 100x.
        ip = IPS[cid % len(IPS)] if cid % 3 else f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        junk = f"{JUNK[cid % len(JUNK)]}?v={rng.getrandbits(40):x}" if cid % 2 else JUNK[cid % len(JUNK)]
        out.append(tpl.format(pid=1234 + cid % 4, cid=rng.randint(10**5, 10**8), ip=ip, junk=junk,
                              excess=f"{cid % 50}.{cid % 1000:03d}", d=cid % 10) + "\n")
    return out


def generate(out: str, size: int, end_epoch: float, span: float, seed: int) -> dict:
    """Write about `size` bytes of lines whose timestamps rise evenly over `span` seconds to `end_epoch`."""
    bodies = _bodies(seed)
    avg = sum(len(b) for b in bodies) / len(bodies) + 20
    lines_total = max(1, int(size / avg))
    start_epoch = end_epoch - span
    per_second = lines_total / span
    written = signals = 0
    i = 0
    with open(out, "w", encoding="utf-8", newline="\n") as fh:
        second = int(start_epoch)
        carry = 0.0
        while written < size:
            carry += per_second
            n = int(carry)
            carry -= n
            if n:
                prefix = time.strftime("%Y/%m/%d %H:%M:%S ", time.localtime(second))
                chunk = []
                for _ in range(n):
                    body = bodies[i % len(bodies)]
                    i += 1
                    chunk.append(prefix + body)
                text = "".join(chunk)
                fh.write(text)
                written += len(text)
                signals += sum(1 for b in chunk if "[crit]" in b or "timed out" in b or "(104:" in b or "too big" in b
                               or "(11:" in b)
            second += 1
    return {"path": out, "bytes": written, "signals": signals, "lines": i}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--size", default="1G")
    parser.add_argument("--end-epoch", type=float, default=None)
    parser.add_argument("--span-days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    end = time.time() if args.end_epoch is None else args.end_epoch
    info = generate(args.out, parse_size(args.size), end, args.span_days * 86400, args.seed)
    print(info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
