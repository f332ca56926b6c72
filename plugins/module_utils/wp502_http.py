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


def _tls_context(verify):
    import ssl

    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _opener(public):
    """A urllib opener that follows no redirect; the origin's own certificate is not what is being checked.

    Its TLS context is made at the first https request: loading the system's CA certificates takes about
    50 ms, which a host whose sites are all plain http (behind a TLS-terminating CDN or proxy) never pays.
    (urllib's own HTTPSHandler makes a verifying context as it is built on Python 3.12 and later.)"""
    import http.client
    from urllib.request import AbstractHTTPHandler, HTTPRedirectHandler, HTTPSHandler, build_opener

    class NoRedirect(HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    class LazyTLS(HTTPSHandler):  # a subclass, so that build_opener adds no HTTPSHandler of its own
        def __init__(self):
            # not HTTPSHandler.__init__: on Python 3.12+ it loads the CA certificates into a context of its own
            AbstractHTTPHandler.__init__(self)  # pylint: disable=non-parent-init-called
            self.lock = threading.Lock()
            self.context = None

        def https_open(self, req):
            with self.lock:
                if self.context is None:
                    self.context = _tls_context(public)
            return self.do_open(http.client.HTTPSConnection, req, context=self.context)

    return build_opener(NoRedirect, LazyTLS())


def _check_url(url):
    if url is not None and not (url.startswith("http://") or url.startswith("https://")):
        raise ValueError("only http:// and https:// URLs are probed, not %r" % url)


def probe_one(opener, path, timeout, host_header=None, port=80, scheme="http", url=None):
    """One request: ``{url, status, elapsed, error?, cdn?, request_id?, location, cookie}``."""
    from urllib.error import HTTPError, URLError
    from urllib.request import Request

    target = (url.rstrip("/") + path) if url else "%s://127.0.0.1:%d%s" % (scheme, port, path)
    headers = {"User-Agent": "wp502-probe"}
    if not url:
        headers["Host"] = host_header or "localhost"
    start = time.time()
    entry = {"url": target}
    try:
        resp = opener.open(Request(target, headers=headers), timeout=timeout)  # noqa: S310 - http(s) only, checked by callers
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
    return entry


def probe_paths(paths, timeout, host_header=None, port=80, scheme="http", url=None):
    """``{path: {url, status, elapsed, error?, cdn?, request_id?, location, cookie}}``; status None when no
    answer, ``cookie`` whether the answer set a cookie."""
    _check_url(url)
    opener = _opener(url is not None)
    results = {}

    def one(path):
        results[path] = probe_one(opener, path, timeout, host_header=host_header, port=port, scheme=scheme, url=url)

    threads = [threading.Thread(target=one, args=(path,)) for path in paths]
    for t in threads:
        t.daemon = True
        t.start()
    for t in threads:
        t.join(timeout + 5)
    for path in paths:
        results.setdefault(path, {"status": None, "error": "no answer within the deadline", "elapsed": timeout})
    return dict((path, results[path]) for path in paths)


# A request is not started with less than this left before the overall deadline (s): it could not answer.
MIN_START_SECONDS = 0.5


def probe_sites(targets, timeout, cookie_paths=(), paths=("/", "/wp-login.php"), workers=32, deadline=None):
    """Every site of a host asked at once: its origin (127.0.0.1, its port and scheme, its Host header) and,
    when it has a ``url``, its public URL.

    ``targets``: ``[{"id", "host", "port", "scheme", "url"?}]``. Requests go through at most ``workers``
    threads; each one waits at most ``timeout`` s and never past the overall ``deadline`` (seconds from now,
    default ``timeout + 5``), so a host whose sites all hang still answers in about one deadline. A site
    whose origin requests could not all be started in time is listed in ``skipped`` with why (its
    ``origin_healthy`` is then None: unknown, not failing).

    Returns ``{"sites": {id: {"origin": {path: probe}, "origin_healthy": bool|None, "public"?: {path: probe},
    "cdn"?, "ray_id"?}}, "skipped": [{"id", "why"}], "seconds": float}``.
    """
    started = time.time()
    budget = float(timeout) + 5 if deadline is None else float(deadline)
    end = started + budget
    openers = {False: _opener(False), True: _opener(True)}
    jobs = []
    for target in targets:
        url = target.get("url")
        if url:
            _check_url(url)
        for path in paths:
            jobs.append((target["id"], "origin", path, target))
    for target in targets:  # public URLs after every origin: the origins are what the ladder decides on
        if target.get("url"):
            for path in paths:
                jobs.append((target["id"], "public", path, target))
    results = {}
    not_started = {}
    lock = threading.Lock()
    cursor = [0]

    def worker():
        while True:
            with lock:
                if cursor[0] >= len(jobs):
                    return
                job = jobs[cursor[0]]
                cursor[0] += 1
            sid, kind, path, target = job
            left = end - time.time()
            if left < MIN_START_SECONDS:
                with lock:
                    not_started.setdefault((sid, kind), []).append(path)
                continue
            public = kind == "public"
            entry = probe_one(openers[public], path, min(float(timeout), left), host_header=target.get("host"),
                              port=int(target.get("port") or 80), scheme=target.get("scheme") or "http",
                              url=target.get("url") if public else None)
            with lock:
                results[(sid, kind, path)] = entry

    threads = [threading.Thread(target=worker) for _worker in range(max(1, min(int(workers), len(jobs))))]
    for t in threads:
        t.daemon = True  # a request that outlives the deadline is abandoned, not waited for
        t.start()
    for t in threads:
        t.join(max(0.0, end - time.time()) + 0.2)
    with lock:
        done = dict(results)
        unstarted = dict((k, list(v)) for k, v in not_started.items())
        asked = cursor[0]
    for sid, kind, path, _target in jobs[asked:]:  # never reached by a worker
        unstarted.setdefault((sid, kind), []).append(path)
    sites, skipped = {}, []
    for target in targets:
        sid = target["id"]
        out = {"origin": {}}
        for kind in ("origin", "public") if target.get("url") else ("origin",):
            probes = {}
            for path in paths:
                if (sid, kind, path) in done:
                    probes[path] = done[(sid, kind, path)]
                elif path in unstarted.get((sid, kind), []):
                    probes[path] = {"status": None, "error": "not asked: the probe deadline of %.1f s had passed" % budget,
                                    "elapsed": 0.0}
                else:
                    probes[path] = {"status": None, "error": "no answer within the deadline", "elapsed": round(budget, 3)}
            out[kind] = probes
        if unstarted.get((sid, "origin")):
            out["origin_healthy"] = None
            skipped.append({"id": sid, "why": "not probed within the deadline of %.1f s (%d sites, %d workers): %s"
                            % (budget, len(targets), len(threads), ", ".join(unstarted[(sid, "origin")]))})
        else:
            out["origin_healthy"] = healthy(out["origin"], timeout, cookie_paths=cookie_paths)
        if "public" in out:
            ray = [p.get("request_id") for p in out["public"].values() if p.get("request_id")]
            cdn = [p.get("cdn") for p in out["public"].values() if p.get("cdn")]
            out["cdn"], out["ray_id"] = (cdn[0] if cdn else None), (ray[0] if ray else None)
        sites[sid] = out
    return {"sites": sites, "skipped": skipped, "seconds": round(time.time() - started, 3)}


def healthy(results, deadline, accept=(200,), cookie_paths=()):
    """The emergency ladder's test: every path answered a status in ``accept`` within ``deadline`` s, and
    those of ``cookie_paths`` set a cookie (WordPress's login page always sets ``wordpress_test_cookie``;
    one that cannot has sent output before its headers, such as a UTF-8 BOM)."""
    return bool(results) and all((r or {}).get("status") in accept and ((r or {}).get("elapsed") or 0) <= deadline
                                 and (path not in cookie_paths or (r or {}).get("cookie"))
                                 for path, r in results.items())
