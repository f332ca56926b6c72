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


def generate(out: str, size: int, end_epoch: float, span: float, seed: int, signal_every: int = 2000) -> dict:
    rng = random.Random(seed)
    weights = [w for w, _ in NOISE]
    templates = [t for _, t in NOISE]
    avg_line = 210
    lines_total = max(1, size // avg_line)
    start_epoch = end_epoch - span
    step = span / lines_total
    written = 0
    signals = 0
    cid = 1000
    t = start_epoch
    last_second = None
    prefix = ""
    with open(out, "w", encoding="utf-8", newline="\n") as fh:
        batch = []
        while written < size:
            t += step
            second = int(t)
            if second != last_second:
                prefix = time.strftime("%Y/%m/%d %H:%M:%S ", time.localtime(second))
                last_second = second
            cid += 1
            if cid % signal_every == 0:
                tpl = SIGNAL[(cid // signal_every) % len(SIGNAL)]
                signals += 1
            else:
                tpl = rng.choices(templates, weights)[0]
            line = prefix + tpl.format(pid=1234 + cid % 4, cid=cid, ip=IPS[cid % len(IPS)], junk=JUNK[cid % len(JUNK)],
                                       excess=f"{cid % 50}.{cid % 1000:03d}", d=cid % 10) + "\n"
            batch.append(line)
            written += len(line)
            if len(batch) >= 4096:
                fh.write("".join(batch))
                batch.clear()
        fh.write("".join(batch))
    return {"path": out, "bytes": written, "signals": signals}


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
