#!/usr/bin/env python3
"""Generate a realistic, noisy error log of a busy WordPress site behind nginx, for benchmarks.

    genlog.py OUT --size 1G [--end-epoch E] [--span-days 7] [--seed 1] [--container]

Most lines are the noise such a log is made of: PHP warnings, notices and deprecations relayed through
"FastCGI sent in stderr" (long lines that name upstream twice and PHP several times), responses and request
bodies buffered to temporary files, upstream servers marked down and clients that went away while talking to
the upstream, 404s, rate limiting, SSL handshakes and keepalive closes, and access-log lines (a container's
one output stream holds both logs). A few thousand 502 signatures sit among them (one line in 2000), of six
kinds, a PHP fatal error relayed through FastCGI stderr among them. None of the noise lines is a signature.

Timestamps increase through the file and end at --end-epoch (default: now), so windowed scans
(since 15m) have a real window to find. Deterministic for a given seed and size. --container prefixes
every line with the time a container runtime adds (the same log read with `docker logs --timestamps`).
"""

from __future__ import annotations

import argparse
import random
import sys
import time

UPSTREAM = 'upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com"'
PHP_MESSAGES = [
    'PHP Warning:  Undefined array key "{key}" in /var/www/wordpress/wp-content/plugins/{plugin}/includes/'
    'class-{plugin}.php on line {line}',
    "PHP Deprecated:  Creation of dynamic property {cls}::${key} is deprecated in /var/www/wordpress/wp-content/"
    "plugins/{plugin}/{plugin}.php on line {line}",
    "PHP Notice:  Function _load_textdomain_just_in_time was called <strong>incorrectly</strong>. Translation "
    "loading for the <code>{plugin}</code> domain was triggered too early. This is usually an indicator for some "
    "code in the plugin or theme running too early. Translations should be loaded at the <code>init</code> action "
    "or later. Please see <a href=\"https://developer.wordpress.org/advanced-administration/debug/debug-wordpress/\">"
    "Debugging in WordPress</a> for more information. (This message was added in version 6.7.0.) in "
    "/var/www/wordpress/wp-includes/functions.php on line 6121",
    "PHP Warning:  foreach() argument must be of type array|object, null given in /var/www/wordpress/wp-content/"
    "themes/{theme}/inc/template-tags.php on line {line}",
    "PHP Notice:  Undefined index: {key} in /var/www/wordpress/wp-content/themes/{theme}/functions.php on line {line}",
    "PHP Deprecated:  strpos(): Passing null to parameter #1 ($haystack) of type string is deprecated in "
    "/var/www/wordpress/wp-includes/formatting.php on line 4498",
]
NOISE = [
    # PHP's warnings relayed by nginx: the bulk of a busy WordPress site's error log
    (24, '[error] {pid}#{pid}: *{cid} FastCGI sent in stderr: "PHP message: {php}{php2}" while reading response header '
         'from upstream, client: {ip}, server: example.com, request: "{method} /{page} HTTP/2.0", ' + UPSTREAM
         + ', referrer: "https://example.com/{ref}"'),
    (5, '[error] {pid}#{pid}: *{cid} FastCGI sent in stderr: "PHP message: {php}" while reading upstream, client: {ip}, '
        'server: example.com, request: "GET /{page} HTTP/2.0", ' + UPSTREAM),
    (2, '[error] {pid}#{pid}: *{cid} FastCGI sent in stderr: "Primary script unknown" while reading response header '
        'from upstream, client: {ip}, server: example.com, request: "GET /{junk} HTTP/1.1", ' + UPSTREAM),
    (13, '[warn] {pid}#{pid}: *{cid} an upstream response is buffered to a temporary file '
         '/var/lib/nginx/fastcgi/{d}/00/00000{cid} while reading upstream, client: {ip}, server: example.com, '
         'request: "GET /wp-admin/admin-ajax.php?action={key} HTTP/2.0", ' + UPSTREAM),
    (3, '[warn] {pid}#{pid}: *{cid} a client request body is buffered to a temporary file /var/lib/nginx/body/00000{cid}, '
        'client: {ip}, server: example.com, request: "POST /wp-admin/async-upload.php HTTP/2.0", host: "example.com", '
        'referrer: "https://example.com/wp-admin/upload.php"'),
    # upstream noise that is no 502
    (2, '[warn] {pid}#{pid}: *{cid} upstream server temporarily disabled while reading response header from upstream, '
        'client: {ip}, server: example.com, request: "GET /{page} HTTP/1.1", upstream: "http://10.0.0.{d}:8080/{page}", '
        'host: "example.com"'),
    (2, '[info] {pid}#{pid}: *{cid} epoll_wait() reported that client prematurely closed connection, so upstream '
        'connection is closed too while sending request to upstream, client: {ip}, server: example.com, request: '
        '"POST /wp-admin/admin-ajax.php HTTP/1.1", ' + UPSTREAM),
    (2, '[info] {pid}#{pid}: *{cid} client timed out (110: Connection timed out) while waiting for request, client: '
        '{ip}, server: 0.0.0.0:443'),
    # the rest of an error log
    (14, '[error] {pid}#{pid}: *{cid} open() "/var/www/wordpress/{junk}" failed (2: No such file or directory), '
         'client: {ip}, server: example.com, request: "GET /{junk} HTTP/1.1", host: "example.com"'),
    (5, '[error] {pid}#{pid}: *{cid} limiting requests, excess: {excess} by zone "perip", client: {ip}, '
        'server: example.com, request: "POST /wp-login.php HTTP/1.1", host: "example.com"'),
    (5, '[info] {pid}#{pid}: *{cid} SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) '
        'while SSL handshaking, client: {ip}, server: 0.0.0.0:443'),
    (4, '[info] {pid}#{pid}: *{cid} client {ip} closed keepalive connection'),
    (1, '[error] {pid}#{pid}: *{cid} access forbidden by rule, client: {ip}, server: example.com, request: '
        '"GET /.git/config HTTP/1.1", host: "example.com"'),
    # access-log lines in the same stream (docker logs, journald): no nginx error prefix
    (18, ACCESS := '{ip} - - [{clf}] "{method} /{page} HTTP/2.0" {status} {bytes} "https://example.com/{ref}" '
                   '"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"'),
]
SIGNAL = [
    '[crit] {pid}#{pid}: *{cid} connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) '
    'while connecting to upstream, client: {ip}, server: example.com, request: "GET / HTTP/1.1", ' + UPSTREAM,
    '[error] {pid}#{pid}: *{cid} connect() to unix:/run/php/php8.2-fpm.sock failed (11: Resource temporarily '
    'unavailable) while connecting to upstream, client: {ip}, server: example.com, request: "GET /shop/ HTTP/1.1", '
    + UPSTREAM,
    '[error] {pid}#{pid}: *{cid} upstream timed out (110: Connection timed out) while reading response header from '
    'upstream, client: {ip}, server: example.com, request: "GET /wp-cron.php HTTP/1.1", upstream: '
    '"fastcgi://unix:/run/php/php8.2-fpm.sock", host: "example.com"',
    '[error] {pid}#{pid}: *{cid} recv() failed (104: Connection reset by peer) while reading response header from '
    'upstream, client: {ip}, server: example.com, request: "GET / HTTP/1.1", ' + UPSTREAM,
    '[error] {pid}#{pid}: *{cid} upstream sent too big header while reading response header from upstream, client: '
    '{ip}, server: example.com, request: "GET /cart/ HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", host: '
    '"example.com"',
    '[error] {pid}#{pid}: *{cid} FastCGI sent in stderr: "PHP message: PHP Fatal error:  Uncaught Error: Call to '
    'undefined function wc_get_product() in /var/www/wordpress/wp-content/plugins/shop-sync/sync.php:42" while '
    'reading response header from upstream, client: {ip}, server: example.com, request: "GET /shop/ HTTP/2.0", '
    + UPSTREAM,
]
JUNK = ["favicon.ico", "wp-content/uploads/2019/01/a.jpg", ".env", "xmlrpc.php.bak", "apple-touch-icon.png",
        "wp-includes/js/old.js", "robots.txt.orig", "sitemap.xml.gz"]
PAGES = ["", "shop/", "cart/", "checkout/", "my-account/", "blog/2026/11/a-post/", "wp-json/wp/v2/posts?per_page=10",
         "wp-admin/admin-ajax.php", "product/blue-mug/", "?s=mug", "category/news/page/3/", "wp-cron.php?doing_wp_cron"]
PLUGINS = ["woocommerce", "elementor", "wordfence", "contact-form-7", "yoast-seo", "shop-sync", "litespeed-cache"]
THEMES = ["astra", "twentytwentyfour", "shopper"]
IPS = ["203.0.113.7", "198.51.100.23", "2001:db8::1f", "192.0.2.44", "2001:db8:85a3::8a2e:370:7334"]


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("IB")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def _bodies(seed: int, count: int = 100000, signal_every: int = 2000) -> list[tuple[bool, bool, str]]:
    """A deterministic cycle of (is an access line, is a signature, the rest of the line after its timestamp)."""
    rng = random.Random(seed)
    weights = [w for w, _ in NOISE]
    templates = [t for _, t in NOISE]
    out = []
    for cid in range(1, count + 1):
        signal = cid % signal_every == 0
        tpl = SIGNAL[(cid // signal_every) % len(SIGNAL)] if signal else rng.choices(templates, weights)[0]
        # Real clients and paths vary, which is what makes real logs compress about 10x, not 100x.
        ip = IPS[cid % len(IPS)] if cid % 3 else f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        junk = f"{JUNK[cid % len(JUNK)]}?v={rng.getrandbits(40):x}" if cid % 2 else JUNK[cid % len(JUNK)]
        plugin, theme = rng.choice(PLUGINS), rng.choice(THEMES)
        key = f"{rng.choice(('_wp_', 'wc_', 'el_', 'opt_'))}{rng.getrandbits(24):x}"
        fields = dict(plugin=plugin, theme=theme, key=key, line=rng.randint(10, 3000), cls=f"{plugin.title()}_Widget")
        php = rng.choice(PHP_MESSAGES).format(**fields)
        php2 = "; PHP message: " + rng.choice(PHP_MESSAGES).format(**fields) if rng.random() < 0.35 else ""
        body = tpl.format(pid=1234 + cid % 4, cid=rng.randint(10**5, 10**8), ip=ip, junk=junk, d=cid % 10,
                          excess=f"{cid % 50}.{cid % 1000:03d}", php=php, php2=php2, key=key, page=rng.choice(PAGES),
                          ref=rng.choice(PAGES), method="POST" if cid % 7 == 0 else "GET", clf="{clf}",
                          status=rng.choice((200, 200, 200, 301, 304, 404)), bytes=rng.randint(200, 90000))
        out.append((tpl is ACCESS, signal, body + "\n"))
    return out


def generate(out: str, size: int, end_epoch: float, span: float, seed: int, container: bool = False) -> dict:
    """Write about `size` bytes of lines whose timestamps rise evenly over `span` seconds to `end_epoch`.
    container: each line starts with the time the container runtime adds (`docker logs --timestamps`), which
    no sniffer recognises: the log is scanned as kind auto, every kind's prefilters at once."""
    bodies = _bodies(seed)
    avg = sum(len(b) for _, _, b in bodies) / len(bodies) + (51 if container else 20)
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
                when = time.localtime(second)
                prefix = time.strftime("%Y/%m/%d %H:%M:%S ", when)
                clf = time.strftime("%d/%b/%Y:%H:%M:%S %z", when)
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
                chunk = []
                for k in range(n):
                    access, signal, body = bodies[i % len(bodies)]
                    i += 1
                    line = body.replace("{clf}", clf) if access else prefix + body
                    chunk.append(f"{stamp}{(k * 7919) % 10**9:09d}Z {line}" if container else line)
                    signals += signal
                text = "".join(chunk)
                fh.write(text)
                written += len(text)
            second += 1
    return {"path": out, "bytes": written, "signals": signals, "lines": i}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--size", default="1G")
    parser.add_argument("--end-epoch", type=float, default=None)
    parser.add_argument("--span-days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--container", action="store_true", help="prefix each line with a container runtime's time")
    args = parser.parse_args(argv)
    end = time.time() if args.end_epoch is None else args.end_epoch
    info = generate(args.out, parse_size(args.size), end, args.span_days * 86400, args.seed, args.container)
    print(info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
