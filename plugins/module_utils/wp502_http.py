# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""HTTP probes of a WordPress origin (standard library only; runs on the target).

The origin is asked on 127.0.0.1 with the site's Host header, so a CDN in front of it is bypassed;
a public URL, when given, is asked as a visitor would. Paths are probed side by side, so a hung
origin costs one deadline, not one per path.
"""

from __future__ import absolute_import, division, print_function

import threading
import time

__metaclass__ = type

CDN_HEADERS = (("cf-ray", "cloudflare"), ("x-fastly-request-id", "fastly"), ("x-served-by", "fastly"),
               ("cdn-pullzone", "bunnycdn"), ("x-amz-cf-id", "cloudfront"), ("x-akamai-request-id", "akamai"),
               ("x-akamai-transformed", "akamai"))

def detect_cdn(headers):
    """The CDN that served a response, from its headers (lower-cased names): (name, request id) or (None, None)."""
    for header, name in CDN_HEADERS:
        if header in headers:
            return name, headers[header] if header in ("cf-ray", "x-amz-cf-id", "x-akamai-request-id") else None
    server = headers.get("server", "").lower()
    for token, name in (("cloudflare", "cloudflare"), ("bunnycdn", "bunnycdn"), ("akamaighost", "akamai")):
        if token in server:
            return name, None
    return None, None



def probe_paths(paths, timeout, host_header=None, port=80, scheme="http", url=None):
    """``{path: {url, status, elapsed, error?, cdn?, request_id?, location, cookie}}``; status None when no
    answer, ``cookie`` whether the answer set a cookie."""
    import ssl
    from urllib.error import HTTPError, URLError
    from urllib.request import HTTPRedirectHandler, HTTPSHandler, Request, build_opener

    class NoRedirect(HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    if url is not None and not (url.startswith("http://") or url.startswith("https://")):
        raise ValueError("only http:// and https:// URLs are probed, not %r" % url)
    ctx = ssl.create_default_context()
    if url is None:  # the origin's own certificate is not what is being checked
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    opener = build_opener(NoRedirect, HTTPSHandler(context=ctx))
    results = {}

    def one(path):
        target = (url.rstrip("/") + path) if url else "%s://127.0.0.1:%d%s" % (scheme, port, path)
        headers = {"User-Agent": "wp502-probe"}
        if not url:
            headers["Host"] = host_header or "localhost"
        start = time.time()
        entry = {"url": target}
        try:
            resp = opener.open(Request(target, headers=headers), timeout=timeout)  # noqa: S310 - http(s) only, checked above
            entry["status"] = resp.status
            got = dict((k.lower(), v) for k, v in resp.headers.items())
            resp.close()
        except HTTPError as exc:
            entry["status"] = exc.code
            got = dict((k.lower(), v) for k, v in exc.headers.items()) if exc.headers else {}
        except (URLError, OSError, ValueError) as exc:
            entry["status"] = None
            entry["error"] = str(getattr(exc, "reason", exc))[:200]
            got = {}
        entry["elapsed"] = round(time.time() - start, 3)
        cdn, ray = detect_cdn(got)
        if cdn:
            entry["cdn"], entry["request_id"] = cdn, ray
        entry["location"] = got.get("location")
        entry["cookie"] = "set-cookie" in got
        results[path] = entry

    threads = [threading.Thread(target=one, args=(path,)) for path in paths]
    for t in threads:
        t.daemon = True
        t.start()
    for t in threads:
        t.join(timeout + 5)
    for path in paths:
        results.setdefault(path, {"status": None, "error": "no answer within the deadline", "elapsed": timeout})
    return dict((path, results[path]) for path in paths)


def healthy(results, deadline, accept=(200,), cookie_paths=()):
    """The emergency ladder's test: every path answered a status in ``accept`` within ``deadline`` s, and
    those of ``cookie_paths`` set a cookie (WordPress's login page always sets ``wordpress_test_cookie``;
    one that cannot has sent output before its headers, such as a UTF-8 BOM)."""
    return bool(results) and all((r or {}).get("status") in accept and ((r or {}).get("elapsed") or 0) <= deadline
                                 and (path not in cookie_paths or (r or {}).get("cookie"))
                                 for path, r in results.items())
