# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""Turn a host's evidence into a ranked list of 502 causes (pure decision logic, stdlib only).

The evidence record (every part optional; what is missing is simply not used)::

    http:      {origin: {"/": {status, elapsed}, "/wp-login.php": {...}}, public: {...}, cdn: "cloudflare"}
    logs:      a wp502_log_scan result (signatures, suspects, ...)
    fpm:       {services: [{name, active}], pools: [{name, listen, socket_exists, workers, pm,
                "pm.max_children", status: {listen_queue, max_children_reached, active_processes}, ...}],
                listens: [every pool's listen address] (a site's view only: its pools are in pools)}
    frontend:  {kind, active, upstreams: ["unix:/run/php/php8.2-fpm.sock", "127.0.0.1:9000"]}
    wordpress: [{path, config_values: {db_host}, bom_files: [...], whitespace_files: [...],
                bom_files_unproven: [...]}]   (bom_files: only files proven loaded)
    db:        {reachable, error, slow_queries, long_running, autoload_bytes}
    host:      {oom: {counts: {...}}, disks: [{path, free, used_pct}], mem: {...},
                database: {service, active, socket, socket_exists}}
    peak_hours:{by_hour: {"21": n, ...}, recurring: bool}

Each cause: ``{cause, confidence (0..1), evidence: [str], rungs: [str], ...}``, most likely first.
Rungs are the emergency ladder's steps that can help: reload_fpm, restart_fpm, restart_db, plugins,
pool_limits, frontend, bom; a cause with no rung ends with ``next_step`` for a human.

Two entry points:

- :func:`diagnose` ranks the causes of one evidence record as above (a single site, or a host read as one).
- :func:`diagnose_sites` diagnoses every site of ``evidence["sites"]`` (the site map, see
  /tmp/wp502-sites-contract.md) on a view of the evidence restricted to that site (:func:`site_view`): its
  probes, its pools and their services, its upstreams (against every pool's listen address, for
  socket_mismatch), its WordPress and database, the log lines attributed to it (:func:`site_logs`), and the
  host-wide facts (OOM, disks, ``host.database``). It sets ``site["verdict"]``, ``site["top_cause"]`` and
  ``site["failing"]`` on each site and returns the host's verdict: the worst site's causes, each with
  ``"site": id``. It sets nothing else: the caller stores the return value as ``evidence["verdict"]`` and its
  first cause as ``evidence["top_cause"]`` (wp502_collect does).

Which site owns an attributed log group (wp502_logscan ``attributed``), most specific key first: the nginx
``server`` name (the sites with that name); the ``script`` directory (the site whose docroot, WordPress path or
content directory is its longest prefix); the ``file``, when it is the error log of one site only (or the
slowlog of its pools); the ``upstream`` or the ``pool`` (every site using it: a pool's state is shared by its
sites). A group no site claims stays host-level; a host with one site gives it everything.
"""

from __future__ import absolute_import, division, print_function

import os
import re

__metaclass__ = type

CAUSES = ("fpm_down", "mysql_down", "db_access_denied", "socket_mismatch", "pool_saturated", "slow_plugin",
          "crashing_worker", "invalid_header", "bom", "too_big_header", "upstream_timeout", "slow_database",
          "autoload_bloat", "capacity", "oom", "disk_full", "cdn_only", "healthy", "unknown")

# Rungs that act on a host-wide service: one run serves every site behind it (see wp502_ladder.plan_ladder).
HOST_RUNGS = ("reload_fpm", "restart_fpm", "restart_db")

RUNGS = {
    "fpm_down": ["restart_fpm"],
    # Start or restart the database service, then verify it answers; data files are never touched.
    "mysql_down": ["restart_db"],
    "db_access_denied": [],
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
    "mysql_down": "Start or restart the database service (systemctl restart mariadb or mysql) and check that it "
                  "answers (mysqladmin ping); if it does not start, read its journal and error log (disk full, "
                  "InnoDB recovery, max_connections). Never delete, move or repair data files to get it up.",
    "db_access_denied": "The database refuses wp-config.php's DB_USER / DB_PASSWORD (ERROR 1045): fix the "
                        "credentials or the user's grant. Restarting PHP or the database will not help.",
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

_ACTIVE = ("active", "reloading", "activating")
# The client's words when the server is not there or will not take the connection (mysql/mariadb client,
# PHP mysqli): 2002 socket, 2003 TCP, 2006 gone away, 2013 lost during the handshake, 1040 too many connections.
_DB_DOWN = re.compile(r"ERROR (?:2002|2003|2006|2013|1040)\b|\((?:2002|2003|2006|2013|1040)\)|Can't connect to"
                      r"|Lost connection to|Too many connections|server has gone away|Connection refused", re.I)
# 1045: the server answers and refuses the credentials.
_DB_DENIED = re.compile(r"ERROR 1045\b|\(1045\)|Access denied for user", re.I)
MYSQL_DOWN_SERVICE = 0.95  # the database service is not active
MYSQL_DOWN_REFUSED = 0.9  # the site's local database refuses connections
DB_ACCESS_DENIED = 0.85
# A static pool has all its workers all the time: that alone is no saturation.
STATIC = "static"


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
    ok = http.get("origin_healthy") if isinstance(http.get("origin_healthy"), bool) else origin_ok(http)

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

    _database_causes(causes, ev, ok)

    # The front-end talks to an address no pool listens on (classic after a PHP upgrade). A site's view
    # carries every pool's listen address in fpm.listens, its own pools in fpm.pools.
    if fpm.get("listens") is not None:
        listens = set(norm_addr(a) for a in fpm["listens"] if a)
    else:
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
    # All workers present is saturation only for a pool that spawns on demand; a static pool always has them.
    full_pools = [p["name"] for p in pools if p.get("workers") and p.get("pm.max_children")
                  and p["workers"] >= p["pm.max_children"] and p.get("pm") != STATIC]
    queued = [p["name"] for p in pools if ((p.get("status") or {}).get("listen_queue") or 0) > 0]
    # A static pool with every worker busy and slow requests in the window: the requests hold the workers.
    static_slow = [p["name"] for p in pools if p.get("pm") == STATIC and _count(logs, "slow_request")
                   and _all_busy(p)]
    suspects = [s for s in (logs.get("suspects") or []) if s.get("type") in ("plugin", "mu-plugin", "theme")]
    slow_suspects = [s for s in suspects if (s.get("sources") or {}).get("slowlog") or
                     (s.get("sources") or {}).get("terminate_timeout")]
    reached = [p["name"] for p in pools if ((p.get("status") or {}).get("max_children_reached") or 0) > 0]
    chain_flags = [f for p in pools for f in ((p.get("timeout_chain") or {}).get("flags") or [])]
    saturated = max_children or unavailable or full_pools or _count(logs, "seems_busy") or reached or queued \
        or static_slow
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
        if queued:
            evidence.append("requests wait in the listen queue of: %s" % ", ".join(queued))
        if static_slow:
            evidence.append("every worker of the static pool %s is busy and requests are slow" % ", ".join(static_slow))
        if _count(logs, "seems_busy"):
            evidence.append("FPM says the pool seems busy %d times" % _count(logs, "seems_busy"))
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

    # Only files the site is proven to load (the collector keeps those in bom_files / whitespace_files);
    # bom_files_unproven (database unreadable) are said in the evidence, never a cause.
    # The files are named relative to the docroot (what the BOM rung is given); the evidence names one outside it
    # (a WP_CONTENT_DIR elsewhere, a wp-config.php one level up) by its whole path, not by ../../..
    boms, unproven, shown = [], [], []
    for site in ev.get("wordpress") or []:
        if not site:
            continue
        found = (site.get("bom_files") or []) + (site.get("whitespace_files") or [])
        boms.extend(found)
        shown.extend(_outside_as_path(site, rel) for rel in found)
        unproven.extend(_outside_as_path(site, rel) for rel in site.get("bom_files_unproven") or [])
    if boms:
        _add(causes, "bom", 0.75 if _count(logs, "invalid_header") else 0.6,
             ["PHP files with a BOM or whitespace before <?php: %s" % ", ".join(shown[:5])], files=boms[:50])

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
    if unproven:
        causes[0]["evidence"].append(
            "%d PHP files with a BOM or whitespace before <?php (%s) cannot be proven loaded while the database is "
            "unreadable: not a cause, not touched" % (len(unproven), ", ".join(unproven[:3])))
        causes[0]["bom_files_unproven"] = unproven[:50]
    return causes


def _outside_as_path(site, rel):
    """``rel`` (relative to the site's docroot) as a path of its own when it leads outside the docroot."""
    if rel.startswith("../") and site.get("path"):
        return os.path.normpath(os.path.join(site["path"], rel))
    return rel


def _all_busy(pool):
    status = pool.get("status") or {}
    limit = pool.get("pm.max_children") or 0
    active = status.get("active_processes")
    if active is not None:
        return bool(limit) and active >= limit
    return False


def db_is_local(db_host):
    """True for a DB_HOST on this machine (localhost, 127.0.0.1, ::1, a socket path; unset means localhost)."""
    if db_host is None or not isinstance(db_host, str) or not db_host.strip():
        return True
    host = db_host.strip()
    if host.startswith("[") and "]" in host:
        host = host[1:host.index("]")]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host in ("localhost", "127.0.0.1", "::1", "") or host.startswith("/")


def _db_host(ev):
    for site in ev.get("wordpress") or []:
        values = (site or {}).get("config_values") or {}
        if "db_host" in values:
            return values.get("db_host")
    return None


def _database_causes(causes, ev, ok):
    """mysql_down / db_access_denied: the database service of the host, and what the site's client was told."""
    db, host = ev.get("db") or {}, ev.get("host") or {}
    hostdb = host.get("database") or {}
    db_host = _db_host(ev)
    local = db_is_local(db_host)
    error = str(db.get("error") or "") if db.get("reachable") is False else ""
    service_down = bool(hostdb.get("service")) and hostdb.get("active") not in _ACTIVE
    evidence = []
    if service_down and local:
        evidence.append("%s is %s" % (hostdb["service"], hostdb.get("active")))
        if hostdb.get("socket") and hostdb.get("socket_exists") is False:
            evidence.append("socket %s does not exist" % hostdb["socket"])
    if error and _DB_DOWN.search(error):
        evidence.append("the site's database refuses connections: %s" % error.strip()[-200:])
    if evidence:
        if error and error.strip() and not _DB_DOWN.search(error) and not _DB_DENIED.search(error):
            evidence.append("the client said: %s" % error.strip()[-200:])
        if ok is False:
            evidence.append("the origin fails: WordPress cannot build a page without its database "
                            "('Error establishing a database connection')")
        if local:
            _add(causes, "mysql_down", MYSQL_DOWN_SERVICE if service_down else MYSQL_DOWN_REFUSED, evidence)
        else:
            # A remote server: restarting this host's database cannot help.
            _add(causes, "mysql_down", MYSQL_DOWN_REFUSED, [*evidence, "DB_HOST %s is another machine" % db_host],
                 rungs=[], next_step="The database server %s does not take connections: check it and the network "
                                     "between the two machines; nothing on this host can fix it." % db_host)
    elif error and _DB_DENIED.search(error):
        _add(causes, "db_access_denied", DB_ACCESS_DENIED, ["the database refuses the credentials: %s" % error.strip()[-200:]])


# --------------------------------------------------------------------------------------------
# Sites: one verdict per site, the host's is its worst site's
# --------------------------------------------------------------------------------------------

def _first_word(path):
    return str(path).split()[0] if path and str(path).split() else None


def _site_roots(site):
    wp = site.get("wordpress") or {}
    roots = [site.get("docroot"), wp.get("path"), wp.get("content_dir")]
    return [r.rstrip("/") or "/" for r in roots if isinstance(r, str) and r.startswith("/")]


def _site_files(site, pools_by_name):
    files = [_first_word(site.get("error_log"))]
    for name in site.get("pools") or []:
        for pool in pools_by_name.get(name, []):
            admin = pool.get("php_admin") or {}
            files += [_first_word(pool.get("slowlog")), _first_word(admin.get("php_admin_value[error_log]")),
                      _first_word(admin.get("php_value[error_log]"))]
    return set(f for f in files if f)


def _under(path, root):
    return root in (path, "/") or path.startswith(root + "/")


def group_owners(group, sites, pools_by_name=None):
    """The ids of the sites an attributed log group belongs to (see the module docstring); [] = host-level."""
    pools_by_name = pools_by_name or {}
    server = (group.get("server") or "").lower()
    if server:
        owners = [s["id"] for s in sites if server in [str(n).lower() for n in (s.get("names") or [s.get("id")])]]
        if owners:
            return owners
    script = group.get("script")
    if script:
        best, owners = -1, []
        for s in sites:
            for root in _site_roots(s):
                if _under(script, root) and len(root) >= best:
                    if len(root) > best:
                        best, owners = len(root), []
                    if s["id"] not in owners:
                        owners.append(s["id"])
        if owners:
            return owners
    path = group.get("file")
    if path:
        owners = [s["id"] for s in sites if path in _site_files(s, pools_by_name)]
        if len(owners) == 1:
            return owners
    upstream = norm_addr(group.get("upstream"))
    if upstream:
        owners = [s["id"] for s in sites if upstream in [norm_addr(u) for u in s.get("upstreams") or []]]
        if owners:
            return owners
    pool = group.get("pool")
    if pool:
        owners = [s["id"] for s in sites if pool in (s.get("pools") or [])]
        if owners:
            return owners
    return []


def _merge_groups(groups, max_samples=3):
    signatures, suspects, signals, functions = {}, {}, {}, {}
    for g in groups:
        for name, sig in (g.get("signatures") or {}).items():
            into = signatures.setdefault(name, {"count": 0, "samples": [], "first_seen": None, "last_seen": None})
            into["count"] += sig.get("count") or 0
            into["samples"] = [*into["samples"], *(sig.get("samples") or [])][-max_samples:]
            for key, pick in (("first_seen", min), ("last_seen", max)):
                seen = [t for t in (into[key], sig.get(key)) if t]
                into[key] = pick(seen) if seen else None
        for entry in g.get("suspects") or []:
            key = (entry["type"], entry["slug"])
            into = suspects.setdefault(key, {"type": entry["type"], "slug": entry["slug"], "count": 0, "sources": {}})
            into["count"] += entry.get("count") or 0
            for src, n in (entry.get("sources") or {}).items():
                into["sources"][src] = into["sources"].get(src, 0) + n
        for src, into in (("child_signals", signals), ("slow_functions", functions)):
            for k, n in (g.get(src) or {}).items():
                into[k] = into.get(k, 0) + n
    return {"signatures": signatures,
            "suspects": sorted(suspects.values(), key=lambda e: (-e["count"], e["type"], e["slug"])),
            "child_signals": signals, "slow_functions": functions,
            "total": sum(s["count"] for s in signatures.values()), "groups": len(groups)}


def site_logs(logs, site, sites, pools_by_name=None):
    """The part of a log scan that belongs to ``site``: the attributed groups it owns, merged (same keys as a
    scan: signatures, suspects, child_signals, slow_functions). The whole scan for the only site of a host, or
    when the scan has no ``attributed`` groups (an older scanner: nothing can be told apart)."""
    logs = logs or {}
    if len(sites) <= 1 or "attributed" not in logs:
        return logs
    mine = [g for g in logs.get("attributed") or [] if site["id"] in group_owners(g, sites, pools_by_name)]
    return _merge_groups(mine)


def _pools_by_name(evidence):
    out = {}
    for pool in (evidence.get("fpm") or {}).get("pools") or []:
        out.setdefault(pool.get("name"), []).append(pool)
    return out


def site_view(evidence, site, sites=None):
    """The evidence as :func:`diagnose` reads it, restricted to one site (host-wide facts kept)."""
    sites = sites if sites is not None else (evidence.get("sites") or [site])
    fpm = evidence.get("fpm") or {}
    by_name = _pools_by_name(evidence)
    upstreams = [norm_addr(u) for u in site.get("upstreams") or [] if u]
    pools = []
    for name in site.get("pools") or []:
        candidates = by_name.get(name, [])
        # the same pool name in two PHP versions: the one the site's upstream reaches
        matching = [p for p in candidates if norm_addr(p.get("listen")) in upstreams] or candidates
        pools.extend(p for p in matching if p not in pools)
    service_names = list(site.get("fpm_services") or [])
    if not service_names:
        service_names = sorted(set(p.get("service") for p in pools if p.get("service")))
    services = [s for s in fpm.get("services") or [] if s.get("name") in service_names]
    wp = site.get("wordpress")
    front = evidence.get("frontend") or {}
    return {
        "http": site.get("http") or {},
        "logs": site_logs(evidence.get("logs") or {}, site, sites, by_name),
        "fpm": {"services": services, "pools": pools,
                "listens": [p.get("listen") for p in fpm.get("pools") or [] if p.get("listen")]},
        "frontend": {"kind": site.get("server") or front.get("kind"), "active": front.get("active"),
                     "upstreams": upstreams},
        "wordpress": [wp] if wp else [],
        "db": (wp or {}).get("db") or {},
        "host": evidence.get("host") or {},
        "peak_hours": evidence.get("peak_hours") or {},
    }


def site_failing(site):
    """A site fails when its origin is not healthy, or when it has a public URL and that fails."""
    http = site.get("http") or {}
    healthy = http.get("origin_healthy")
    if not isinstance(healthy, bool):
        healthy = origin_ok(http)
    return healthy is False or (bool(site.get("url") or http.get("public")) and _public_failed(http))


def _badness(site):
    top = (site.get("verdict") or [{}])[0]
    return (bool(site.get("failing")), top.get("cause") not in ("healthy", None), top.get("confidence") or 0)


def diagnose_sites(evidence):
    """Diagnose every site of ``evidence["sites"]`` and return the host's verdict (its worst site's causes, each
    with ``"site": id``): a failing site before an answering one, then one with a cause before a healthy one,
    then the higher top confidence; the first in discovered order on a tie.

    Sets ``verdict``, ``top_cause``, ``failing``, ``signatures`` and ``suspects`` (its logs') on each site and
    nothing else; the caller keeps the return
    value as ``evidence["verdict"]`` and ``[0]["cause"]`` as ``evidence["top_cause"]``. Without sites, this is
    :func:`diagnose` of the whole evidence (no ``site`` key)."""
    evidence = evidence or {}
    sites = [s for s in evidence.get("sites") or [] if s and s.get("id") is not None]
    if not sites:
        return diagnose(evidence)
    for site in sites:
        view = site_view(evidence, site, sites)
        verdict = diagnose(view)
        # What the site's own logs show, kept on the site (reports, and the known-culprit match of a later host):
        # the 502-class signatures it counted and the plugins and themes its logs name most.
        logs = view.get("logs") or {}
        site["signatures"] = sorted(n for n, sig in (logs.get("signatures") or {}).items() if (sig or {}).get("count"))
        site["suspects"] = [dict((k, e.get(k)) for k in ("type", "slug", "count", "sources"))
                            for e in (logs.get("suspects") or [])[:5]]
        site["verdict"] = verdict
        site["top_cause"] = verdict[0]["cause"]
        site["failing"] = site_failing(site)
    worst = max(sites, key=_badness)
    return [dict(c, site=worst["id"]) for c in worst["verdict"]]
