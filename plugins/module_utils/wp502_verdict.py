# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""Turn a host's evidence into a ranked list of 502 causes (pure decision logic, stdlib only).

The evidence record (every part optional; what is missing is simply not used)::

    http:      {origin: {"/": {status, elapsed}, "/wp-login.php": {...}}, public: {...}, cdn: "cloudflare"}
    logs:      a wp502_log_scan result (signatures, suspects, ...)
    fpm:       {services: [{name, active}], pools: [{name, listen, socket_exists, workers,
                "pm.max_children", rss_p95, ...}]}
    frontend:  {kind, active, upstreams: ["unix:/run/php/php8.2-fpm.sock", "127.0.0.1:9000"]}
    wordpress: [{path, bom_files: [...], whitespace_files: [...]}]
    db:        {reachable, slow_queries, long_running, autoload_bytes}
    host:      {oom: {counts: {...}}, disks: [{path, free, used_pct}], mem: {...}}
    peak_hours:{by_hour: {"21": n, ...}, recurring: bool}

Each cause: ``{cause, confidence (0..1), evidence: [str], rungs: [str], ...}``, most likely first.
Rungs are the emergency ladder's steps that can help: reload_fpm, restart_fpm, plugins,
pool_limits, frontend, bom; a cause with no rung ends with ``next_step`` for a human.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

CAUSES = ("fpm_down", "socket_mismatch", "pool_saturated", "slow_plugin", "crashing_worker", "invalid_header", "bom",
          "too_big_header", "upstream_timeout", "slow_database", "autoload_bloat", "capacity", "oom", "disk_full",
          "cdn_only", "healthy", "unknown")

RUNGS = {
    "fpm_down": ["restart_fpm"],
    "socket_mismatch": [],
    "pool_saturated": ["reload_fpm", "restart_fpm", "plugins", "pool_limits"],
    "slow_plugin": ["plugins"],
    "crashing_worker": ["restart_fpm", "plugins"],
    "invalid_header": ["plugins", "bom"],
    "bom": ["bom"],
    "too_big_header": ["frontend", "plugins"],
    "upstream_timeout": ["plugins", "frontend"],
    # Slow queries come from somewhere: if the site answers with a plugin out, that plugin issues them.
    "slow_database": ["plugins"],
    "autoload_bloat": [],
    "capacity": ["pool_limits"],
    "oom": [],
    "disk_full": [],
    "cdn_only": [],
    "healthy": [],
    "unknown": ["reload_fpm", "restart_fpm", "plugins"],
}
NEXT_STEP = {
    "socket_mismatch": "Point the front-end's fastcgi_pass / proxy_fcgi at a socket FPM listens on (or the pool's "
                       "listen at what the front-end uses), validate with nginx -t / apachectl configtest, reload.",
    "slow_database": "Look at the slow queries and long-running queries listed; kill the blocking ones, add indexes "
                     "or fix the plugin issuing them. Restarting PHP only hides it.",
    "autoload_bloat": "Shrink the autoloaded options listed (set autoload to 'no' or delete stale transients); "
                      "WordPress loads them on every request.",
    "oom": "The kernel killed PHP-FPM or the database for memory: lower pm.max_children to what RAM allows "
           "(see the recommendation), or add memory; do not raise limits.",
    "disk_full": "Free space on the full filesystem (logs, backups, binlogs); PHP sessions, uploads and MySQL "
                 "temporary tables fail when it is full.",
    "cdn_only": "The origin answers: check the CDN (Ray ID, SSL mode, origin address, firewall rules for the "
                "CDN's ranges, edge caching such as Always Online or stale-if-error masking the origin).",
    "healthy": "Nothing to do at the origin.",
}

_FATAL_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL", "SIGFPE")
# Innermost slowlog frames that mean "waiting for the database".
_DB_FUNCTIONS = ("mysqli_query", "mysqli_real_query", "mysqli::query", "mysqli_stmt_execute", "mysqli_stmt::execute",
                 "PDOStatement->execute", "PDO->query", "PDO->exec", "mysql_query", "mysqli_next_result")
# A page slower than this at the origin is not an answer a visitor waits for.
SLOW_PROBE_SECONDS = 5.0


def _count(logs, name):
    return ((logs or {}).get("signatures", {}).get(name) or {}).get("count", 0)


def _samples(logs, name, n=2):
    return list(((logs or {}).get("signatures", {}).get(name) or {}).get("samples", []))[-n:]


def origin_ok(http):
    """True when every origin probe got an answer (2xx or a redirect, such as http -> https or to the
    canonical host) in time, False when one did not, None without probes."""
    origin = (http or {}).get("origin") or {}
    if not origin:
        return None
    return all(200 <= ((p or {}).get("status") or 0) < 400 and ((p or {}).get("elapsed") or 0) < SLOW_PROBE_SECONDS
               for p in origin.values())


def _timed_out(probe):
    """A probe that got no HTTP answer before its deadline (not a refused connection)."""
    probe = probe or {}
    error = str(probe.get("error", ""))
    return probe.get("status") is None and ("timed out" in error or "deadline" in error)


def _public_failed(http):
    public = (http or {}).get("public") or {}
    return bool(public) and any(not 200 <= ((p or {}).get("status") or 0) < 400 for p in public.values())


def norm_addr(addr):
    """One form for FPM listen addresses and front-end upstreams: unix:/path or host:port."""
    if not addr:
        return None
    addr = str(addr).strip()
    if addr.startswith("unix:"):
        return "unix:/" + addr[5:].lstrip("/").rstrip(":")
    if addr.startswith("/"):
        return "unix:" + addr
    if addr.isdigit():
        return "127.0.0.1:" + addr
    return addr.replace("localhost:", "127.0.0.1:")


def _add(causes, cause, confidence, evidence, **extra):
    entry = {"cause": cause, "confidence": round(min(1.0, max(0.0, confidence)), 2),
             "evidence": [e for e in evidence if e], "rungs": list(RUNGS[cause])}
    if cause in NEXT_STEP:
        entry["next_step"] = NEXT_STEP[cause]
    entry.update(extra)
    causes.append(entry)


def diagnose(ev):
    """Rank the causes the evidence supports; always at least one (``healthy`` or ``unknown``)."""
    ev = ev or {}
    http, logs = ev.get("http") or {}, ev.get("logs") or {}
    fpm, front = ev.get("fpm") or {}, ev.get("frontend") or {}
    db, host = ev.get("db") or {}, ev.get("host") or {}
    causes = []
    ok = origin_ok(http)

    # The origin answers but the public URL does not: the CDN's problem, nothing to change here.
    if ok and _public_failed(http):
        public = http.get("public") or {}
        _add(causes, "cdn_only", 0.9, ["origin answers 200, public URL answers %s" %
                                       ", ".join("%s %s" % (k, (v or {}).get("status")) for k, v in public.items()),
                                       "CDN: %s" % http.get("cdn") if http.get("cdn") else None,
                                       "Ray ID: %s" % http.get("ray_id") if http.get("ray_id") else None])

    # PHP-FPM not running, or its socket gone.
    services = fpm.get("services") or []
    pools = fpm.get("pools") or []
    down = [s["name"] for s in services if s.get("active") not in ("active", "reloading", "activating")]
    missing = [p for p in pools if p.get("socket_exists") is False]
    refused = _count(logs, "connect_refused")
    if services and len(down) == len(services):
        _add(causes, "fpm_down", 0.95, ["%s is %s" % (s["name"], s.get("active")) for s in services] +
             _samples(logs, "connect_refused", 1))
    elif missing and pools and len(missing) == len(pools):
        _add(causes, "fpm_down", 0.85, ["socket %s does not exist" % p.get("listen") for p in missing])
    elif refused and not services and not pools:
        _add(causes, "fpm_down", 0.6, ["%d connect() failures to the FPM upstream" % refused, *_samples(logs, "connect_refused", 1)])

    # The front-end talks to an address no pool listens on (classic after a PHP upgrade).
    listens = set(norm_addr(p.get("listen")) for p in pools if p.get("listen"))
    upstreams = set(norm_addr(u) for u in (front.get("upstreams") or []) if u)
    stray = sorted(u for u in upstreams if u and listens and u not in listens)
    if stray and not (services and len(down) == len(services)):
        _add(causes, "socket_mismatch", 0.9 if refused else 0.7,
             ["front-end passes PHP to %s; FPM pools listen on %s" % (", ".join(stray), ", ".join(sorted(listens)))],
             upstreams=sorted(upstreams), listens=sorted(listens))

    # Saturated pool: which plugin holds the workers, or is it plain capacity?
    max_children = _count(logs, "max_children")
    unavailable = _count(logs, "connect_unavailable")
    full_pools = [p["name"] for p in pools if p.get("workers") and p.get("pm.max_children")
                  and p["workers"] >= p["pm.max_children"]]
    suspects = [s for s in (logs.get("suspects") or []) if s.get("type") in ("plugin", "mu-plugin", "theme")]
    slow_suspects = [s for s in suspects if (s.get("sources") or {}).get("slowlog") or
                     (s.get("sources") or {}).get("terminate_timeout")]
    reached = [p["name"] for p in pools if ((p.get("status") or {}).get("max_children_reached") or 0) > 0]
    chain_flags = [f for p in pools for f in ((p.get("timeout_chain") or {}).get("flags") or [])]
    saturated = max_children or unavailable or full_pools or _count(logs, "seems_busy") or reached
    timeouts = _count(logs, "upstream_timeout") + _count(logs, "terminate_timeout")
    slow_db = (db.get("slow_queries") or 0) + len(db.get("long_running") or [])
    functions = logs.get("slow_functions") or {}
    db_waits = sum(n for f, n in functions.items() if f in _DB_FUNCTIONS)
    db_bound = slow_db and (db_waits >= max(1, sum(functions.values()) // 2) or not slow_suspects)
    if saturated:
        evidence = []
        if max_children:
            evidence.append("FPM reached pm.max_children %d times" % max_children)
        if unavailable:
            evidence.append("%d connections refused for a full listen backlog (EAGAIN)" % unavailable)
        if full_pools:
            evidence.append("pools at their limit now: %s" % ", ".join(full_pools))
        if reached:
            evidence.append("the status page counts max children reached in: %s" % ", ".join(reached))
        _add(causes, "pool_saturated", 0.7, evidence + _samples(logs, "max_children", 1) + chain_flags)
    top = slow_suspects[0] if slow_suspects else None
    if top and not db_bound:
        share = float(top["count"]) / max(1, sum(s["count"] for s in slow_suspects))
        # The plugin holds the workers (saturation) or makes requests time out.
        _add(causes, "slow_plugin", (0.6 + 0.3 * share) if saturated else 0.55 + 0.1 * share,
             ["%s %s named in %d slow request stacks" % (top["type"], top["slug"], top["count"])],
             slug=top["slug"], type=top["type"])
    elif saturated and not db_bound:
        peak = ev.get("peak_hours") or {}
        _add(causes, "capacity", 0.75 + (0.1 if peak.get("recurring") else 0),
             ["the pool fills with no slow plugin named" + ("; 502s recur at the same hours" if peak.get("recurring") else "")])
    if slow_db:
        _add(causes, "slow_database", 0.9 if db_bound and (timeouts or saturated) else 0.55,
             ["%d slow queries over 2 s and %d long-running queries" % (db.get("slow_queries") or 0, len(db.get("long_running") or [])),
              "slow requests wait in %s" % ", ".join(sorted(f for f in functions if f in _DB_FUNCTIONS)) if db_waits else None])
    hung = [k for k, p in ((http or {}).get("origin") or {}).items() if _timed_out(p)]
    if hung and not timeouts:
        _add(causes, "upstream_timeout", 0.5, ["the origin did not answer %s within the probe's deadline" % ", ".join(hung)],
             **({"slug": top["slug"], "type": top["type"]} if top else {}))
    if timeouts:
        extra = {"slug": top["slug"], "type": top["type"]} if top and not db_bound else {}
        _add(causes, "upstream_timeout", 0.6 if db_bound else 0.8,
             ["%d requests timed out waiting for PHP" % timeouts] + _samples(logs, "upstream_timeout", 1) +
             (["%s %s is in the slow stacks" % (top["type"], top["slug"])] if extra else []) + chain_flags, **extra)

    # Workers dying on a signal: a crashing extension or plugin.
    signals = logs.get("child_signals") or {}
    crashes = sum(n for sig, n in signals.items() if sig in _FATAL_SIGNALS)
    if crashes:
        _add(causes, "crashing_worker", 0.85 if _count(logs, "premature_close") else 0.7,
             ["%d workers died on %s" % (crashes, ", ".join(s for s in signals if s in _FATAL_SIGNALS)),
              *_samples(logs, "child_signal", 1)])
    elif _count(logs, "premature_close"):
        _add(causes, "crashing_worker", 0.5, ["%d responses cut off by the upstream" % _count(logs, "premature_close"),
                                              *_samples(logs, "premature_close", 1)])

    for sig in ("invalid_header", "too_big_header"):
        if _count(logs, sig):
            _add(causes, sig, 0.85, ["%d x %s" % (_count(logs, sig), sig), *_samples(logs, sig, 1)])

    boms = []
    for site in ev.get("wordpress") or []:
        boms.extend(site.get("bom_files") or [])
        boms.extend(site.get("whitespace_files") or [])
    if boms:
        _add(causes, "bom", 0.75 if _count(logs, "invalid_header") else 0.6,
             ["PHP files with a BOM or whitespace before <?php: %s" % ", ".join(boms[:5])], files=boms[:50])

    autoload = db.get("autoload_bytes") or 0
    if autoload > 800 * 1000:
        _add(causes, "autoload_bloat", 0.6 if autoload > 900 * 1000 else 0.45,
             ["autoloaded options weigh %d KB (Site Health warns at 800 KB, wp-cli doctor at 900 KB)" % (autoload // 1000)])

    oom = ((host.get("oom") or {}).get("counts")) or {}
    if oom:
        _add(causes, "oom", 0.85, ["OOM killer: %s" % ", ".join("%s x%d" % kv for kv in sorted(oom.items()))])

    full = [d for d in host.get("disks") or [] if d and ((d.get("used_pct") or 0) >= 98 or (d.get("free") or 1 << 40) < 100 << 20)]
    if full:
        _add(causes, "disk_full", 0.85, ["%s is %s%% full" % (d["path"], d.get("used_pct")) for d in full])

    if not causes:
        if ok is False:
            origin = http.get("origin") or {}
            _add(causes, "unknown", 0.3, ["origin answers %s and the evidence names no cause" %
                                          ", ".join("%s %s" % (k, (v or {}).get("status")) for k, v in origin.items())])
        else:
            _add(causes, "healthy", 0.9 if ok else 0.6,
                 ["origin answers 200" if ok else "no 502 signature in the window"])
    elif ok and not _public_failed(http):
        # Signatures in the window, but the site answers now: the causes stand, with less weight.
        for c in causes:
            c["confidence"] = round(c["confidence"] * 0.7, 2)
            c["evidence"].append("the origin answers 200 now: this happened within the window")
    causes.sort(key=lambda c: -c["confidence"])
    return causes
