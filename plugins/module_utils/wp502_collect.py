# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""Collect a host's 502 evidence in one module run (standard library only; runs on the target).

:class:`Collector` gathers PHP-FPM, front-end, WordPress, database, HTTP, host-pressure, log and
peak-hour evidence; commands go through the ``run(argv, env=None, timeout=None) -> (rc, out, err)``
callable it is given (wp502_host.deadline_runner on a target), so nothing here needs Ansible.
Every part fails soft: what cannot be read is listed in ``errors`` and the rest goes on.
"""

from __future__ import absolute_import, division, print_function

import glob
import math
import os
import re
import socket
import time

from ansible.module_utils.wp502_fpm import (
    emergency_raise,
    fpm_status,
    listen_address,
    parse_fpm_config,
    pool_settings,
    timeout_chain,
    validate_pm,
)
from ansible.module_utils.wp502_frontend import (
    expand_apache_vars,
    nginx_fastcgi_files,
    parse_apache,
    parse_envvars,
    parse_nginx,
)
from ansible.module_utils.wp502_host import (
    CommandTimeoutError,
    describe,
    disk_usage,
    oom_kills,
    parse_loadavg,
    parse_meminfo,
    read_processes,
    which,
    workers_by_pool,
)
from ansible.module_utils.wp502_http import probe_paths, probe_sites
from ansible.module_utils.wp502_ladder import LADDER, known_culprit_matches, plan_ladder
from ansible.module_utils.wp502_logscan import Scanner, iso, wp_slugs
from ansible.module_utils.wp502_sites import build_sites, origin_endpoint, resolve_php_path, wp_multisite
from ansible.module_utils.wp502_sizing import WORKERS_PER_CPU, cgroup_limits, in_cgroup, php_bytes, size_pool, worker_size
from ansible.module_utils.wp502_verdict import diagnose_sites, norm_addr
from ansible.module_utils.wp502_wordpress import parse_wp_config, php_file_head_issue, php_unserialize_strings, plugin_slug
from ansible.module_utils.wp502_wpdb import mysql_argv

__metaclass__ = type

__all__ = ["Collector", "origin_endpoint", "split_loaded"]  # origin_endpoint lives in wp502_sites now

FPM_CONFIGS = ("/etc/php/*/fpm/php-fpm.conf", "/etc/php-fpm.conf", "/etc/opt/remi/php*/php-fpm.conf",
               "/usr/local/etc/php-fpm.conf", "/etc/php*/php-fpm.conf")
APACHE_CONFIGS = ("/etc/apache2/apache2.conf", "/etc/apache2/sites-enabled/*", "/etc/apache2/conf-enabled/*.conf",
                  "/etc/httpd/conf/httpd.conf", "/etc/httpd/conf.d/*.conf")
# Where MySQL/MariaDB read their options, in the order they read them (the last socket= wins).
MYCNF = ("/etc/my.cnf", "/etc/my.cnf.d/*.cnf", "/etc/mysql/my.cnf", "/etc/mysql/conf.d/*.cnf",
         "/etc/mysql/mariadb.conf.d/*.cnf", "/etc/mysql/mysql.conf.d/*.cnf")
DEFAULT_DB_SOCKET = "/run/mysqld/mysqld.sock"
DB_UNITS = ("mariadb", "mysql", "mysqld")
HOST_UNITS = ("nginx", "apache2", "httpd", *DB_UNITS)  # what frontend() and database_service() ask systemd about
# WordPress's drop-ins: files of wp-content it loads by name when they exist.
DROPINS = ("advanced-cache.php", "object-cache.php", "db.php", "db-error.php", "install.php", "maintenance.php",
           "php-error.php", "fatal-error-handler.php", "sunrise.php", "blog-deleted.php", "blog-inactive.php",
           "blog-suspended.php")
_ACCESS_502 = re.compile(rb'\[(\d\d)/(\w{3})/(\d{4}):(\d\d):\d\d:\d\d [^\]]*\] "[^"\n]*" (50[234]) ')
_MONTHS = dict((m, i) for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                             "Nov", "Dec"), 1))
_SLOW_ENTRY = re.compile(r"^# Time: .*?$|^# Query_time: (?P<qt>[\d.]+)", re.M)


def normalize_query(sql):
    """Slow-log query text with literals folded, so the same query groups together."""
    sql = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "S", sql)
    sql = re.sub(r"\b\d+(?:\.\d+)?\b", "N", sql)
    return re.sub(r"\s+", " ", sql).strip()[:300]


def parse_slow_log(text, since=None, threshold=2.0):
    """MySQL/MariaDB slow log entries over ``threshold`` s: count and the top 10 normalised queries by time."""
    entries = []
    for block in re.split(r"(?m)^(?=# Time: |# User@Host: )", text):
        m = re.search(r"^# Query_time: ([\d.]+)", block, re.M)
        if not m:
            continue
        qt = float(m.group(1))
        ts = re.search(r"^SET timestamp=(\d+);", block, re.M)
        when = int(ts.group(1)) if ts else None
        if since is not None and when is not None and when < since:
            continue
        lines = [ln for ln in block.splitlines() if ln and not ln.startswith("#") and not ln.startswith("SET timestamp=")
                 and not ln.lower().startswith("use ")]
        if qt >= threshold:
            entries.append((qt, when, normalize_query(" ".join(lines))))
    groups = {}
    for qt, _when, query in entries:
        g = groups.setdefault(query, {"query": query, "count": 0, "total_time": 0.0, "max_time": 0.0})
        g["count"] += 1
        g["total_time"] = round(g["total_time"] + qt, 3)
        g["max_time"] = max(g["max_time"], qt)
    top = sorted(groups.values(), key=lambda g: -g["total_time"])[:10]
    return {"count": len(entries), "top": top}


def peak_hours(lines_bytes, since=None):
    """502/503/504 answers per hour (``YYYY-MM-DDTHH``) from access-log bytes, and whether they recur
    at the same hour of day on several days (a capacity pattern rather than a code fault)."""
    per_hour = {}
    for m in _ACCESS_502.finditer(lines_bytes):
        day, mon, year, hour = m.group(1), m.group(2).decode(), m.group(3), m.group(4)
        if mon not in _MONTHS:
            continue
        if since is not None:
            stamp = time.mktime((int(year), _MONTHS[mon], int(day), int(hour), 59, 59, 0, 0, -1))
            if stamp < since:
                continue
        key = "%s-%02d-%sT%s" % (year.decode(), _MONTHS[mon], day.decode(), hour.decode())
        per_hour[key] = per_hour.get(key, 0) + 1
    return summarise_peaks(per_hour)


def summarise_peaks(per_hour):
    """Answers per hour, and the hours of day that carry 502s on two days or more."""
    by_hour_of_day = {}
    for key in per_hour:
        by_hour_of_day.setdefault(key[-2:], set()).add(key[:10])
    recurring = sorted(h for h, days in by_hour_of_day.items() if len(days) >= 2)
    return {"by_hour": dict(sorted(per_hour.items())), "recurring": bool(recurring), "recurring_hours": recurring}


# What Collector._cmd returns for a command that outlived its deadline (as GNU timeout(1) exits).
TIMED_OUT_RC = 124


def _short_command(argv, width=60):
    """A command for an error line: each long argument (an SQL statement, say) cut to ``width``."""
    return describe([a if len(str(a)) <= width else str(a)[:width] + "..." for a in argv])


class Collector:
    """One host's evidence. ``run(argv, env=None, timeout=None)`` runs commands (wp502_host.deadline_runner)."""

    def __init__(self, run, since_epoch, now=None, probe_timeout=10.0, scan_files=True, recent_days=7,
                 max_php_files=20000, os_reserve=None, db=True, probe=True, sites=None, extra_logs=None,
                 cookie_paths=("/wp-login.php",), known_culprits=None, workers_per_cpu=WORKERS_PER_CPU):
        self.run = run
        self.workers_per_cpu = workers_per_cpu
        self.known_culprits = list(known_culprits or [])
        self.since = since_epoch
        self.now = time.time() if now is None else now
        self.probe_timeout = probe_timeout
        self.scan_files = scan_files
        self.recent_days = recent_days
        self.max_php_files = max_php_files
        self.os_reserve = os_reserve
        self.db_enabled = db
        self.probe_enabled = probe
        self.sites_given = sites or []
        self.extra_logs = extra_logs or []
        self.cookie_paths = tuple(cookie_paths or ())
        self.errors = []
        self.secrets = []
        self._units = {}  # unit_states(): what systemctl said of each unit asked (None: no such unit)

    # ---- helpers -------------------------------------------------------------------------
    def _cmd(self, argv, env=None, timeout=30):
        """``(rc, out, err)`` of a command run with a deadline of ``timeout`` seconds. It never raises: a
        command that cannot run is rc 127; one that outlives its deadline is rc 124 (TIMED_OUT_RC) and
        an entry of ``errors`` naming it, and the evidence goes on without it."""
        try:
            return self.run(argv, env=env, timeout=timeout)
        except CommandTimeoutError:
            what = "`%s` timed out: no answer within %d s, killed" % (_short_command(argv), math.ceil(timeout))
            self._error("timeout", what)
            return TIMED_OUT_RC, "", what
        except Exception as exc:  # noqa: BLE001 - a missing binary or a hung command is evidence, not a crash
            return 127, "", str(exc)

    def _error(self, where, what):
        text = "%s: %s" % (where, what)
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "********")
        self.errors.append(text[:500])

    @staticmethod
    def _read(path, limit=4 * 1024 * 1024):
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")

    @staticmethod
    def _which(*names):
        return which(*names)

    # ---- systemd ---------------------------------------------------------------------------
    def unit_states(self, units):
        """{unit: {active, sub, main_pid}} (keyed by the unit's own name: ``mysql`` may answer as ``mariadb``).

        The first call asks ``systemctl show`` about its units and every front-end and database unit the
        evidence asks about later (HOST_UNITS), in one command; later calls are answered from that (a
        systemctl run costs 20-30 ms, three of them were a tenth of a collection)."""
        if not units or not self._which("systemctl"):
            return {}
        ask = [u for u in list(units) + [u for u in HOST_UNITS if u not in units] if u not in self._units]
        if ask and any(u in ask for u in units):
            argv = ["systemctl", "show", "--no-pager", "-p", "Id", "-p", "ActiveState", "-p", "SubState", "-p", "MainPID",
                    "-p", "LoadState", *ask]
            rc, out, _err = self._cmd(argv, timeout=15)
            blocks = out.strip().split("\n\n") if rc == 0 else []
            for n, unit in enumerate(ask):  # one block per unit asked, in the order asked
                block = blocks[n] if n < len(blocks) else ""
                fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
                self._units[unit] = None
                if fields.get("Id") and fields.get("LoadState") != "not-found":
                    self._units[unit] = (fields["Id"].replace(".service", ""), {
                        "active": fields.get("ActiveState"), "sub": fields.get("SubState"),
                        "main_pid": int(fields["MainPID"]) if fields.get("MainPID", "").isdigit() else None})
        return dict(self._units[u] for u in units if self._units.get(u))

    # ---- PHP-FPM ---------------------------------------------------------------------------
    def fpm(self, processes, mem, mysql_rss):
        configs = []
        for pattern in FPM_CONFIGS:
            configs.extend(sorted(glob.glob(pattern)))
        versions = []
        pools = []
        global_logs = []
        for conf_path in configs:
            m = re.search(r"/php/(\d+\.\d+)/fpm/|php(\d)(\d)/", conf_path)
            version = (m.group(1) or "%s.%s" % (m.group(2), m.group(3))) if m else None
            conf = parse_fpm_config(conf_path)
            for err in conf["errors"]:
                self._error("fpm", err)
            service = "php%s-fpm" % version if version and conf_path.startswith("/etc/php/") else "php-fpm"
            binary = self._which(*(["php-fpm%s" % version] if version else []) + ["php-fpm"])
            versions.append({"version": version, "config": conf_path, "service": service, "binary": binary})
            ini = os.path.join(os.path.dirname(conf_path), "php.ini")
            max_exec, memory_limit = None, None
            if os.path.isfile(ini):
                ini_text = _safe_read(ini)
                m_exec = re.search(r"^\s*max_execution_time\s*=\s*(\d+)", ini_text, re.M)
                max_exec = int(m_exec.group(1)) if m_exec else None
                m_mem = re.search(r"^\s*memory_limit\s*=\s*(\S+)", ini_text, re.M)
                memory_limit = m_mem.group(1) if m_mem else None
            log = conf["global"].get("error_log")
            if log and not log.startswith("syslog"):
                global_logs.append(log if log.startswith("/") else os.path.join("/var", log))
            for name, directives in conf["pools"].items():
                settings = pool_settings(name, directives)
                settings["config"] = conf_path
                settings["service"] = service
                settings["pm_errors"] = validate_pm(settings)
                listen = settings.get("listen") or ""
                settings["socket_exists"] = self._listening(listen)
                settings["connect"] = _connect(listen)
                override = settings["php_admin"].get("php_admin_value[max_execution_time]") or \
                    settings["php_admin"].get("php_value[max_execution_time]")
                settings["max_execution_time"] = int(override) if override and str(override).isdigit() else max_exec
                settings["memory_limit"] = php_bytes(settings["php_admin"].get("php_admin_value[memory_limit]")
                                                     or settings["php_admin"].get("php_value[memory_limit]") or memory_limit)
                # the pool's own PHP error log (ISPConfig, Plesk and per-site pools set one), read with the others
                settings["error_log"] = settings["php_admin"].get("php_admin_value[error_log]") or \
                    settings["php_admin"].get("php_value[error_log]")
                if settings["socket_exists"] and settings.get("pm.status_path"):
                    settings["status"] = fpm_status(listen, settings["pm.status_path"], timeout=2.0)
                pools.append(settings)
        services = self.unit_states(sorted(set(v["service"] for v in versions)))
        live = workers_by_pool(processes)
        for pool in pools:
            w = live.get(pool["name"], {})
            pool.update({"workers": w.get("workers", 0), "rss_avg": w.get("rss_avg"), "rss_p95": w.get("rss_p95"),
                         "rss_max": w.get("rss_max")})
        return {"versions": versions, "services": [dict(name=k, **v) for k, v in sorted(services.items())],
                "pools": pools, "logs": global_logs,
                "masters": [p["detail"] for p in processes if p["kind"] == "fpm_master"]}

    @staticmethod
    def _listening(listen):
        if not listen:
            return None
        if listen.startswith("/"):
            return os.path.exists(listen)
        try:
            family, address = listen_address(listen)
        except ValueError:
            return None
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(1)
            sock.connect(address)
            return True
        except OSError:
            return False
        finally:
            sock.close()

    # ---- front-end -------------------------------------------------------------------------
    def frontend(self):
        out = {"kind": None, "servers": [], "errors": []}
        nginx = self._which("nginx")
        apache = self._which("apache2ctl", "apachectl", "httpd")
        states = self.unit_states([u for u, b in (("nginx", nginx), ("apache2", apache), ("httpd", apache)) if b])
        if nginx:
            rc, dump, err = self._cmd([nginx, "-T"], timeout=20)
            if rc == 0:
                parsed = parse_nginx(dump)
                out["nginx"] = {"active": (states.get("nginx") or {}).get("active"), "errors": parsed["errors"],
                                "binary": nginx,
                                # the files the front-end rung edits, found by the parser it edits with
                                "fastcgi_files": nginx_fastcgi_files(dump)}
                out["servers"].extend(nginx_servers(parsed))
            elif rc != TIMED_OUT_RC:  # (a timeout is in errors already)
                self._error("nginx -T", (err or dump).strip()[-300:])
        if apache:
            files = []
            for pattern in APACHE_CONFIGS:
                for path in sorted(glob.glob(pattern)):
                    try:
                        files.append((path, self._read(path)))
                    except (IOError, OSError) as exc:
                        self._error("apache", "%s: %s" % (path, exc))
            envvars = {}
            if os.path.exists("/etc/apache2/envvars"):
                envvars = parse_envvars(self._read("/etc/apache2/envvars"))
            envvars.setdefault("APACHE_LOG_DIR", "/var/log/apache2" if os.path.isdir("/var/log/apache2") else "/var/log/httpd")
            parsed = parse_apache(files, include=self._apache_include)
            unit = "apache2" if "apache2" in states else "httpd"
            out["apache"] = {"active": (states.get(unit) or {}).get("active"), "binary": apache, "unit": unit,
                             "fastcgi_files": [f for f, text in files
                                               if re.search(r"^\s*<VirtualHost", text, re.M | re.I)
                                               and re.search(r"proxy:(unix|fcgi)|fcgi://", text, re.I)]}
            out["servers"].extend(apache_servers(parsed, envvars))
        active = [k for k in ("nginx", "apache") if (out.get(k) or {}).get("active") == "active"]
        out["kind"] = active[0] if active else ("nginx" if nginx else "apache" if apache else None)
        out["active"] = bool(active)
        out["upstreams"] = sorted(set(u for s in out["servers"] if s["kind"] == out["kind"] for u in s["upstreams"]))
        return out

    def _apache_include(self, pattern):
        """``Include``/``IncludeOptional`` of an Apache config: ``[(path, text)]``, relative to its ServerRoot."""
        pattern = pattern.strip().strip('"')
        if not pattern.startswith("/"):
            root = "/etc/apache2" if os.path.isdir("/etc/apache2") else "/etc/httpd"
            pattern = os.path.join(root, pattern)
        out = []
        for path in sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]:
            if os.path.isdir(path):
                out.extend(self._apache_include(os.path.join(path, "*")))
            elif os.path.isfile(path):
                try:
                    out.append((path, self._read(path)))
                except (IOError, OSError) as exc:
                    self._error("apache", "%s: %s" % (path, exc))
        return out

    # ---- WordPress -------------------------------------------------------------------------
    def find_sites(self, front, pools):
        """The site map (wp502_sites.build_sites) of the active front-end, each site with its wp-config.php
        (in the docroot or one level up) under ``_config``. Discovered docroots without one are not
        WordPress: they leave the map and are listed in ``front["not_wordpress"]``; a given site stays."""
        sites = build_sites(front.get("servers") or [], pools, self.sites_given, front.get("kind"))
        kept, other = [], []
        for site in sites:
            root = site.get("docroot")
            config = None
            for candidate in ((os.path.join(root, "wp-config.php"), os.path.join(os.path.dirname(root.rstrip("/")), "wp-config.php"))
                              if root else ()):
                if os.path.isfile(candidate):
                    config = candidate
                    break
            site["_config"] = config
            if config or site.get("given"):
                kept.append(site)
            else:
                other.append({"id": site["id"], "docroot": root, "names": site["names"]})
        front["not_wordpress"] = other
        return kept

    def wordpress(self, site):
        """A site's WordPress, read without running PHP: ``(entry, cfg, password)``."""
        root = site["docroot"].rstrip("/") or "/"
        try:
            text = self._read(site["_config"])
        except (IOError, OSError) as exc:
            self._error("wp-config", exc)
            text = ""
        cfg = parse_wp_config(text)
        password = cfg.pop("db_password", None)
        if isinstance(password, str):
            self.secrets.append(password)
        config_dir = os.path.dirname(site["_config"])
        out = {"path": root, "config": site["_config"], "host": site.get("probe_host"),
               "config_values": dict((k, v) for k, v in cfg.items()),
               "table_prefix": cfg.get("table_prefix") if isinstance(cfg.get("table_prefix"), str) else "wp_"}
        out.update(wp_multisite(text))
        # ABSPATH: where wp-settings.php is (the docroot, or a core subdirectory such as Bedrock's web/wp)
        core = next((d for d in [root, *sorted(os.path.join(root, x) for x in _listdir(root))]
                     if os.path.isfile(os.path.join(d, "wp-settings.php"))), root)
        content = resolve_php_path(cfg.get("wp_content_dir"), config_dir, core)
        # an unresolved WP_CONTENT_DIR (Bedrock's config/application.php, getenv()): nothing outside core proven
        out["content_dir_resolved"] = not (cfg.get("wp_content_dir") is not None and content is None)
        if not out["content_dir_resolved"]:
            self._error("wp-config", "WP_CONTENT_DIR %r in %s is only known when PHP runs: wp-content assumed, "
                        "its files unproven" % (cfg["wp_content_dir"], site["_config"]))
        content = os.path.normpath(content or os.path.join(core, "wp-content"))
        out["content_dir"] = content
        out["core_rel"] = _rel(core, root)
        out["content_rel"] = _rel(content, root)
        out["config_rel"] = _rel(site["_config"], root)
        out["plugins"] = self._plugins(os.path.join(content, "plugins"))
        out["mu_plugins"] = sorted(os.path.basename(p) for p in glob.glob(os.path.join(content, "mu-plugins", "*.php")))
        out["themes"] = sorted(d for d in _listdir(os.path.join(content, "themes")) if os.path.isdir(os.path.join(content, "themes", d)))
        out["dropins"] = sorted(d for d in DROPINS if os.path.isfile(os.path.join(content, d)))
        if self.scan_files:
            out.update(self._scan_php(root, extra=[d for d in (content, site["_config"]) if not _under(d, root)]))
        out["debug_log"] = self._debug_log(os.path.join(content, "debug.log"))
        return out, cfg, password

    def _plugins(self, plugin_dir):
        plugins = []
        for entry in sorted(_listdir(plugin_dir)):
            path = os.path.join(plugin_dir, entry)
            main = None
            if os.path.isdir(path):
                for php in sorted(glob.glob(os.path.join(path, "*.php")))[:20]:
                    header = _head(php, 8192)
                    if re.search(r"Plugin Name\s*:", header):
                        main = php
                        break
            elif entry.endswith(".php"):
                header = _head(path, 8192)
                main = path if re.search(r"Plugin Name\s*:", header) else None
            if main:
                version = re.search(r"^[ \t/*#@]*Version\s*:\s*(\S+)", _head(main, 8192), re.M)
                plugins.append({"slug": entry[:-4] if entry.endswith(".php") else entry,
                                "file": os.path.relpath(main, plugin_dir), "version": version.group(1) if version else None})
        return plugins

    def _scan_php(self, root, extra=()):
        """PHP files of a site that start with a BOM or whitespace, and those changed recently, named relative
        to ``root``; ``extra`` are a wp-content directory and a wp-config.php outside it (named ``../...``)."""
        bom, whitespace, recent = [], [], []
        cutoff = self.now - self.recent_days * 86400
        seen = 0
        for path in _php_files(root, extra):
            seen += 1
            if seen > self.max_php_files:
                self._error("php files", "more than %d PHP files under %s: the rest were not checked" % (self.max_php_files, root))
                return {"bom_files": bom, "whitespace_files": whitespace, "recent_files": sorted(recent)[:50],
                        "recent_count": len(recent), "php_files_checked": seen - 1}
            issue = php_file_head_issue(_head_bytes(path, 16))
            rel = os.path.relpath(path, root)
            if issue == "bom":
                bom.append(rel)
            elif issue == "whitespace":
                whitespace.append(rel)
            try:
                if os.stat(path).st_mtime >= cutoff:
                    recent.append(rel)
            except OSError:
                pass
        return {"bom_files": bom, "whitespace_files": whitespace, "recent_files": sorted(recent)[:50],
                "recent_count": len(recent), "php_files_checked": seen}

    def _debug_log(self, path):
        if not os.path.isfile(path):
            return None
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as fh:
                fh.seek(max(0, size - 256 * 1024))
                tail = fh.read().decode("utf-8", "replace").splitlines()[-200:]
        except (IOError, OSError) as exc:
            self._error("debug.log", exc)
            return None
        fatal = [ln for ln in tail if "PHP Fatal" in ln or "PHP Parse" in ln]
        attribution = {}
        for line in tail:
            for kind, slug in wp_slugs(line):
                key = "%s:%s" % (kind, slug)
                attribution[key] = attribution.get(key, 0) + 1
        return {"path": path, "size": size, "fatal_errors": len(fatal), "last": [ln[:500] for ln in tail[-5:]],
                "attribution": attribution}

    # ---- database --------------------------------------------------------------------------
    def database(self, cfg, password, prefix, multisite=False):
        client = self._which("mariadb", "mysql")
        if not client:
            return {"reachable": None, "error": "no mysql or mariadb client on the host"}
        if not re.match(r"^\w+$", prefix or ""):
            return {"reachable": None, "error": "unusual table prefix %r: not queried" % (prefix,)}
        try:
            argv = mysql_argv(client, cfg)
        except ValueError as exc:
            return {"reachable": None, "error": str(exc)}
        p = prefix
        autoload = "autoload IN ('yes','on','auto-on','auto')"
        sql = ";".join([
            "SELECT '##active', option_value FROM %soptions WHERE option_name = 'active_plugins'" % p,
            "SELECT '##autoload', COUNT(*), COALESCE(SUM(LENGTH(option_value)), 0) FROM %soptions WHERE %s" % (p, autoload),
            "SELECT '##top', option_name, LENGTH(option_value) FROM %soptions WHERE %s ORDER BY 3 DESC LIMIT 10" % (p, autoload),
            "SELECT '##rows', (SELECT COUNT(*) FROM %soptions), (SELECT COUNT(*) FROM %spostmeta)" % (p, p),
            "SELECT '##long', ID, USER, COMMAND, TIME, REPLACE(REPLACE(LEFT(COALESCE(INFO, ''), 300), '\\t', ' '), '\\n', ' ') "
            "FROM information_schema.PROCESSLIST WHERE COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump') AND TIME >= 5",
            "SELECT '##slowlog', @@slow_query_log, @@slow_query_log_file, @@long_query_time",
            "SELECT '##maxconn', @@max_connections",
            "SELECT '##theme', option_name, option_value FROM %soptions WHERE option_name IN ('template', 'stylesheet')" % p,
        ] + ([  # network-active plugins load on every site of a network (the table exists on a multisite only)
            "SELECT '##sitewide', meta_value FROM %ssitemeta WHERE meta_key = 'active_sitewide_plugins' AND site_id = 1" % p,
        ] if multisite else [])) + ";"
        env = {"MYSQL_PWD": password} if isinstance(password, str) else None
        rc, out, err = self._cmd([*argv, "-e", sql], env=env, timeout=20)
        if rc != 0:
            return {"reachable": False, "error": (err or out).strip()[-300:].replace(password or "\0", "********")}
        res = {"reachable": True, "active_plugins": [], "autoload_count": 0, "autoload_bytes": 0, "autoload_top": [],
               "rows": {}, "long_running": [], "slow_queries": 0, "slow_top": []}
        for line in out.splitlines():
            cols = line.split("\t")
            tag = cols[0]
            if tag == "##active" and len(cols) > 1:
                res["active_plugins"] = php_unserialize_strings(cols[1].replace("\\\\", "\\"))["values"]
            elif tag == "##autoload" and len(cols) > 2:
                res["autoload_count"], res["autoload_bytes"] = int(cols[1]), int(cols[2])
            elif tag == "##top" and len(cols) > 2:
                res["autoload_top"].append({"option": cols[1], "bytes": int(cols[2])})
            elif tag == "##rows" and len(cols) > 2:
                res["rows"] = {"options": int(cols[1]), "postmeta": int(cols[2])}
            elif tag == "##long" and len(cols) > 5:
                res["long_running"].append({"id": cols[1], "user": cols[2], "command": cols[3], "time": int(cols[4]),
                                            "info": normalize_query(cols[5])})
            elif tag == "##sitewide" and len(cols) > 1:
                res["active_sitewide_plugins"] = php_unserialize_strings(cols[1].replace("\\\\", "\\"))["values"]
            elif tag == "##theme" and len(cols) > 2:
                res.setdefault("themes", {})[cols[1]] = cols[2]
            elif tag == "##maxconn" and len(cols) > 1 and cols[1].isdigit():
                res["max_connections"] = int(cols[1])
            elif tag == "##slowlog" and len(cols) > 3:
                res["slow_log"] = {"enabled": cols[1] == "1", "file": cols[2], "long_query_time": cols[3]}
        slow = res.get("slow_log") or {}
        if slow.get("file") and os.path.isfile(slow["file"]):
            try:
                size = os.path.getsize(slow["file"])
                with open(slow["file"], "rb") as fh:
                    fh.seek(max(0, size - 16 * 1024 * 1024))
                    parsed = parse_slow_log(fh.read().decode("utf-8", "replace"), since=self.since)
                res["slow_queries"], res["slow_top"] = parsed["count"], parsed["top"]
            except (IOError, OSError) as exc:
                self._error("slow log", exc)
        return res

    # ---- HTTP --------------------------------------------------------------------------------
    def probe(self, host_header, port=80, paths=("/", "/wp-login.php"), scheme="http", url=None):
        return probe_paths(paths, self.probe_timeout, host_header=host_header, port=port, scheme=scheme, url=url)

    # ---- logs --------------------------------------------------------------------------------
    def logs(self, frontend, fpm):
        paths = []
        for srv in frontend.get("servers", []):
            if srv["kind"] == frontend.get("kind") and srv.get("error_log") and srv["error_log"].startswith("/"):
                paths.append(srv["error_log"].split()[0])
        paths += fpm.get("logs", [])
        for pool in fpm.get("pools", []):
            if pool.get("slowlog"):
                slow = pool["slowlog"]
                paths.append(slow if slow.startswith("/") else os.path.join("/var", slow))
            # php_admin_value[error_log]: where a per-site pool's PHP fatals go instead of FPM's own log
            if isinstance(pool.get("error_log"), str) and pool["error_log"].startswith("/"):
                paths.append(pool["error_log"])
        paths += self.extra_logs
        paths = [p for i, p in enumerate(paths) if p not in paths[:i]]
        scanner = Scanner(since_epoch=self.since, max_samples=3, now=self.now)
        scanner.scan_paths([p for p in paths if os.path.exists(p) or glob.has_magic(p)])
        result = scanner.result()
        result["paths"] = paths
        return result

    def access_peaks(self, sites, frontend):
        paths = [s.get("access_log") for s in sites if s.get("access_log")]
        paths += [srv.get("access_log") for srv in frontend.get("servers", []) if srv.get("access_log")]
        seen, per_hour = set(), {}
        for entry in paths:
            path = (entry or "").split()[0]
            if not path.startswith("/") or path in seen or not os.path.isfile(path):
                continue
            seen.add(path)
            try:
                size = os.path.getsize(path)
                with open(path, "rb") as fh:
                    fh.seek(max(0, size - 64 * 1024 * 1024))
                    counts = peak_hours(fh.read(), since=self.since)
            except (IOError, OSError) as exc:
                self._error("access log", exc)
                continue
            for k, v in counts["by_hour"].items():
                per_hour[k] = per_hour.get(k, 0) + v
        result = summarise_peaks(per_hour)
        result["files"] = sorted(seen)
        return result

    # ---- database service ---------------------------------------------------------------------
    def database_service(self):
        """The host's MariaDB/MySQL: ``{service, active, socket, socket_exists}`` (service None when no unit)."""
        states = self.unit_states(list(DB_UNITS))
        service = next((u for u in DB_UNITS if u in states), None)
        texts = []
        for pattern in MYCNF:
            for path in sorted(glob.glob(pattern)):
                texts.append(_safe_read(path))
        sock = mycnf_socket(texts)
        return {"service": service, "active": (states.get(service) or {}).get("active") if service else None,
                "socket": sock, "socket_exists": os.path.exists(sock)}

    # ---- HTTP, every site at once -----------------------------------------------------------------
    def probe_all(self, sites):
        """Every site asked at its origin (its Host header, port and scheme) and its public URL, concurrently
        within one deadline: each site's ``http``, and ``evidence["probe"]``."""
        targets = probe_targets(sites)
        res = probe_sites(targets, self.probe_timeout, cookie_paths=self.cookie_paths) if targets else \
            {"sites": {}, "skipped": [], "seconds": 0.0}
        for site in sites:
            site["http"] = res["sites"].get(site["id"]) or {}
        return {"sites": len(sites), "probed": len(sites) - len(res["skipped"]), "skipped": res["skipped"],
                "seconds": res["seconds"], "targets": targets}

    # ---- everything --------------------------------------------------------------------------
    def collect(self):
        started = time.time()
        processes = read_processes()
        mem = parse_meminfo(_safe_read("/proc/meminfo"))
        mysql_rss = sum(p["rss"] or 0 for p in processes if p["kind"] == "mysqld")
        fpm = self.fpm(processes, mem, mysql_rss)
        front = self.frontend()
        self.timeouts(fpm, front)
        sites = self.find_sites(front, fpm["pools"])
        # The origins are asked first: what they answer now, before the slower reads below.
        probe = {"sites": len(sites), "probed": 0, "skipped": [], "seconds": 0.0, "targets": probe_targets(sites)}
        if self.probe_enabled:
            probe = self.probe_all(sites)
        dbs = {}  # one read per distinct database: (host, name, prefix)
        for site in sites:
            config = site.pop("_config", None)
            if not config:
                site["wordpress"] = None
                continue
            wp, cfg, password = self.wordpress(dict(site, _config=config))
            if self.db_enabled:
                key = (str(cfg.get("db_host")), str(cfg.get("db_name")), wp["table_prefix"])
                if key not in dbs:
                    dbs[key] = self.database(cfg, password, wp["table_prefix"], multisite=wp.get("multisite"))
                wp["db"] = dbs[key]
                wp["db_server"] = key[0]  # its pools share that server's max_connections
                readable = bool(wp["db"].get("reachable"))
                active = set(wp["db"].get("active_plugins") or []) | set(wp["db"].get("active_sitewide_plugins") or [])
                for plugin in wp["plugins"]:
                    plugin["active"] = plugin["file"] in active if readable else None
                themes = set((wp["db"].get("themes") or {}).values())
                split_loaded(wp, active if readable else None, themes if readable else None)
            else:
                split_loaded(wp, None, None)
            site["wordpress"] = wp
        wordpress = [s["wordpress"] for s in sites if s.get("wordpress")]
        db = next((w["db"] for w in wordpress if w.get("db")), {})
        self.size_pools(fpm, mem, processes, sites)
        logs = self.logs(front, fpm)
        disks = []
        for path in set([os.path.dirname(p) for p in logs.get("paths", []) if p.startswith("/")] + ["/var/lib/mysql", "/tmp", "/"]):
            du = disk_usage(path)
            if du and du["path"] not in [d["path"] for d in disks]:
                disks.append(du)
        host = {"mem": dict((k, mem.get(k)) for k in ("MemTotal", "MemAvailable", "SwapTotal", "SwapFree")),
                "load": parse_loadavg(_safe_read("/proc/loadavg")), "cpus": os.cpu_count(), "mysql_rss": mysql_rss,
                "disks": disks, "oom": self.oom(), "database": self.database_service()}
        evidence = {"fpm": fpm, "frontend": front, "sites": sites, "probe": probe, "wordpress": wordpress, "db": db,
                    "http": worst_http(sites), "logs": logs, "host": host, "peak_hours": self.access_peaks(sites, front)}
        # ---- the verdict, per site (wp502_verdict.diagnose_sites fills each site's verdict, top_cause and failing
        # and returns the host's: its worst site's)
        verdict = diagnose_sites(evidence)
        # The emergency's plan (wp502_ladder.plan_ladder): the failing sites' top causes' rungs, and with every rung
        # of the ladder after those (plan_every: wp502_emergency_ignore_verdict). Each site also carries its own,
        # for a site that answered here but fails when the ladder asks it again before changing anything.
        # Plugins proved guilty on other hosts (the emergency's wp502_known_culprits) that a site's evidence points
        # to: the plugins rung takes them out first, and first of all when the evidence is more than "active".
        for site in sites:
            site["known_culprits"] = known_culprit_matches(site, self.known_culprits) if self.known_culprits else []
        evidence["plan"] = plan_ladder(sites)
        evidence["plan_every"] = plan_ladder(sites, every=True)
        for site in sites:
            site["plan"] = plan_ladder([dict(site, failing=True)])
            site["plan_every"] = plan_ladder([dict(site, failing=True)], every=True)
        evidence["ladder"] = list(LADDER)
        evidence.update({"verdict": verdict, "top_cause": verdict[0]["cause"], "errors": self.errors,
                         "collected_at": iso(self.now), "collect_seconds": round(time.time() - started, 3)})
        return evidence

    def size_pools(self, fpm, mem, processes, sites):
        """Each pool's recommendation (wp502_sizing.size_pool: the memory its cgroup or the host allows, its CPU
        quota or cores, its database's max_connections; the smallest bound wins and is named) and the bounded
        step the pool-limits rung would take towards it (wp502_fpm.emergency_raise)."""
        cgroups, limits_of, inside = {}, {}, {}

        def cgroup_of(pid):
            if pid not in cgroups:
                cgroups[pid] = _safe_read("/proc/%d/cgroup" % pid)
            return cgroups[pid]

        def limits_for(pid):
            """The limits of a pid's cgroup, read once per cgroup (a host's pools mostly share one)."""
            text = cgroup_of(pid)
            if text not in limits_of:
                limits_of[text] = cgroup_limits(text)
            return limits_of[text]

        def rss_inside(cgroup):
            """``(MySQL RSS, {pool: workers' RSS})`` of the processes in ``cgroup``, summed once per cgroup."""
            if cgroup not in inside:
                by_pool = {}
                for pool_name, rss in workers.items():
                    by_pool[pool_name] = sum(r or 0 for w, r in rss.items() if in_cgroup(cgroup_of(w), cgroup))
                inside[cgroup] = (sum(m["rss"] or 0 for m in mysqld if in_cgroup(cgroup_of(m["pid"]), cgroup)), by_pool)
            return inside[cgroup]

        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cores = os.cpu_count()
        workers = {}
        for p in processes:
            if p["kind"] == "fpm_worker":
                workers.setdefault(p["detail"], {})[p["pid"]] = p["rss"]
        masters = [p["pid"] for p in processes if p["kind"] == "fpm_master"]
        mysqld = [p for p in processes if p["kind"] == "mysqld"]
        # The database server behind each pool (its sites'), and the pools that share each server.
        pool_db, server_pools = {}, {}
        for site in sites:
            wp = site.get("wordpress") or {}
            maxconn = (wp.get("db") or {}).get("max_connections")
            if not maxconn:
                continue
            for name in site.get("pools") or []:
                pool_db.setdefault(name, (wp.get("db_server"), maxconn))
                server_pools.setdefault(wp.get("db_server"), set()).add(name)
        for pool in fpm.get("pools", []):
            name = pool["name"]
            mine = workers.get(name, {})
            pid = next(iter(mine), None) or (masters[0] if masters else None)
            limits = limits_for(pid) if pid else {"memory_max": None, "cpus": None}
            ram = mem.get("MemTotal")
            if limits.get("memory_max") and (not ram or limits["memory_max"] < ram):
                memory, memory_how = limits["memory_max"], "cgroup limit (%s)" % limits["memory_cgroup"]
                mysql, by_pool = rss_inside(limits["memory_cgroup"])
            else:
                memory, memory_how = ram, "RAM"
                mysql, by_pool = rss_inside("/")  # everything is inside the root
            others = sum(r for other, r in by_pool.items() if other != name)
            if limits.get("cpus"):
                cpus, cpu_how = limits["cpus"], "cores (cpu quota of %s)" % limits["cpu_cgroup"]
            else:
                cpus, cpu_how = cores, "cores"
            processes_status = (pool.get("status") or {}).get("processes")
            served = [p.get("pid") for p in processes_status if (p.get("requests") or 0) > 0] \
                if isinstance(processes_status, list) else None
            worker, worker_how = worker_size(mine, served, pool.get("memory_limit"))
            server, maxconn = pool_db.get(name, (None, None))
            db_others = sum(p.get("pm.max_children") or 0 for p in fpm.get("pools", [])
                            if p["name"] != name and p["name"] in server_pools.get(server, ()))
            if memory and worker:
                try:
                    pool["recommendation"] = size_pool(
                        memory, worker, cpus=cpus, db_max_connections=maxconn, db_others=db_others, mysql_bytes=mysql,
                        other_pools_bytes=others, os_reserve=self.os_reserve, workers_per_cpu=self.workers_per_cpu,
                        pm=pool.get("pm") if pool.get("pm") in ("static", "dynamic") else "dynamic",
                        worker_how=worker_how, memory_how=memory_how, cpu_how=cpu_how)
                except ValueError as exc:
                    self._error("fpm recommendation", exc)
            pool["emergency_raise"] = emergency_raise(pool, pool.get("recommendation"),
                                                      frontend_timeout=(pool.get("timeout_chain") or {}).get("frontend"))

    @staticmethod
    def timeouts(fpm, front):
        """The timeout chain of each pool the active front-end uses: front-end read timeout, FPM
        request_terminate_timeout, PHP max_execution_time, and where they disagree."""
        for pool in fpm.get("pools", []):
            listen = norm_addr(pool.get("listen"))
            served = [srv.get("read_timeout") for srv in front.get("servers", [])
                      if srv["kind"] == front.get("kind") and listen in [norm_addr(u) for u in srv.get("upstreams") or []]]
            front_timeout = max([t for t in served if t] or [0]) or None
            pool["timeout_chain"] = {"frontend": front_timeout, "request_terminate_timeout": pool.get("request_terminate_timeout"),
                                     "max_execution_time": pool.get("max_execution_time"),
                                     "flags": timeout_chain(front_timeout, pool.get("request_terminate_timeout"),
                                                            pool.get("max_execution_time")) if served else []}

    def oom(self):
        lines = []
        if self._which("journalctl"):
            since = "@%d" % int(self.since) if self.since else "-7d"
            rc, out, _err = self._cmd(["journalctl", "-k", "--no-pager", "-q", "--since", since, "-o", "short-iso"], timeout=20)
            if rc == 0:
                lines = out.splitlines()
        if not lines and self._which("dmesg"):
            rc, out, _err = self._cmd(["dmesg"], timeout=10)
            if rc == 0:
                lines = out.splitlines()
        return oom_kills(lines)


def probe_targets(sites):
    """Where each site is asked (``wp502_http.probe_sites`` and ``wp502_probe sites=``): id, Host header, port,
    scheme and public URL."""
    return [{"id": s["id"], "host": s.get("probe_host"), "port": s.get("port") or 80, "scheme": s.get("scheme") or "http",
             "url": s.get("url")} for s in sites]


def _connect(listen):
    """Where a pool is reached, for the ladder's waits: ``{"path"}`` or ``{"host", "port"}`` (None when unreadable)."""
    try:
        family, address = listen_address(listen)
    except ValueError:
        return None
    return {"path": address} if family == socket.AF_UNIX else {"host": address[0], "port": address[1]}


def nginx_servers(parsed):
    """The evidence's servers (``frontend.servers``) of a ``parse_nginx`` result."""
    return [{"kind": "nginx", "file": srv.get("file"), "names": srv["server_names"], "root": srv["root"],
             "listen": srv["listen"], "default_server": srv.get("default_server", False),
             "redirect": srv.get("redirect", False), "error_log": srv["error_log"], "access_log": srv["access_log"],
             "upstreams": srv["fastcgi_pass"], "read_timeout": srv["fastcgi_read_timeout"],
             "buffer_size": srv["fastcgi_buffer_size"]} for srv in parsed["servers"]]


def apache_servers(parsed, envvars):
    """The evidence's servers of a ``parse_apache`` result (``${APACHE_LOG_DIR}`` expanded with ``envvars``);
    a vhost with SSLEngine on has its addresses marked ``ssl``, as nginx writes it."""
    main_error = expand_apache_vars(parsed["global"].get("ErrorLog"), envvars)
    return [{"kind": "apache", "file": vh["file"], "names": vh["server_names"], "root": vh["document_root"],
             "listen": [a + (" ssl" if vh.get("ssl") else "") for a in vh["address"].split()],
             "default_server": False, "redirect": vh.get("redirect", False),
             "error_log": expand_apache_vars(vh["error_log"], envvars) or main_error,
             "access_log": expand_apache_vars(vh["access_log"], envvars),
             "upstreams": vh["php_backends"], "read_timeout": vh["effective_proxy_timeout"], "buffer_size": None}
            for vh in parsed["vhosts"]]


def site_failing(http):
    """A site fails when its origin is not healthy, or its public URL (when probed) does not answer 2xx/3xx.
    A site the probes never reached (skipped, probes off) is not called failing."""
    http = http or {}
    if http.get("origin_healthy") is False:
        return True
    public = http.get("public") or {}
    return bool(public) and any(not 200 <= ((p or {}).get("status") or 0) < 400 for p in public.values())


def worst_http(sites):
    """The http of the site that fares worst (compatibility with one-site evidence): the first failing one,
    else the first probed one."""
    probed = [s.get("http") for s in sites if (s.get("http") or {}).get("origin")]
    failing = [s.get("http") for s in sites if s.get("http") and site_failing(s["http"])]
    return (failing or probed or [{}])[0]


def _classify(rel, site):
    """What loads a PHP file of a site (``rel`` relative to its docroot): ``core``, ``config``, ``mu``,
    ``dropin``, ``("plugin", slug)``, ``("theme", name)``, ``languages`` or None (WordPress never loads it)."""
    core = site.get("core_rel") or ""
    core = core + "/" if core else ""
    content = (site.get("content_rel") or "wp-content").rstrip("/") + "/"
    if rel == (site.get("config_rel") or "wp-config.php") or rel == core + "wp-config.php":
        return "config"
    if rel.startswith(content):
        rest = rel[len(content):]
        if rest.startswith("mu-plugins/"):
            return "mu"  # what a top-level mu-plugin includes cannot be known without PHP: all of mu-plugins
        if rest in DROPINS:
            return "dropin"
        m = re.match(r"^(plugins|themes)/([^/]+)(/?)", rest)
        if m and (m.group(1) == "themes" and m.group(3)):
            return ("theme", m.group(2))
        if m and m.group(1) == "plugins" and (m.group(3) or m.group(2).endswith(".php")):
            return ("plugin", plugin_slug(m.group(2)))
        if rest.startswith("languages/"):
            return "languages"  # translations (*.l10n.php) load for the active locale only
        return None
    if rel.startswith(core) and (rel[len(core):].startswith(("wp-admin/", "wp-includes/")) or "/" not in rel[len(core):]):
        return "core"
    return None


def split_loaded(site, active_plugins, active_themes):
    """Keep in bom_files / whitespace_files only the PHP files WordPress is proven to load: core (wp-admin,
    wp-includes, the root's *.php), wp-config.php, every file of mu-plugins, the drop-ins, the active
    plugins (network-active ones included) and the active theme and its parent.

    ``active_plugins`` / ``active_themes`` are None when the database could not be read: plugin and theme
    files then go to *_unproven (nothing unproven is touched). On a multisite a plugin or theme the main
    site does not use may be a subsite's: unproven too; so is everything outside core when WP_CONTENT_DIR
    could not be resolved. What WordPress never loads goes to *_inactive.
    """
    known = active_plugins is not None
    active_slugs = set(plugin_slug(p) for p in active_plugins or ())
    themes = set(active_themes or ())
    multisite = bool(site.get("multisite"))
    for key in ("bom_files", "whitespace_files"):
        loaded, idle, unproven = [], [], []
        for rel in site.get(key) or []:
            what = _classify(rel, site)
            if site.get("content_dir_resolved") is False and what not in ("core", "config"):
                unproven.append(rel)
            elif what in ("core", "config", "mu", "dropin"):
                loaded.append(rel)
            elif isinstance(what, tuple):
                kind, name = what
                used = name in (active_slugs if kind == "plugin" else themes)
                if known and used:
                    loaded.append(rel)
                elif not known or multisite or (kind == "theme" and not themes):
                    unproven.append(rel)
                else:
                    idle.append(rel)
            elif what == "languages":
                unproven.append(rel)
            else:
                idle.append(rel)
        site[key] = loaded
        site[key.replace("_files", "_files_inactive")] = idle
        site[key.replace("_files", "_files_unproven")] = unproven


def mycnf_socket(texts, default=DEFAULT_DB_SOCKET):
    """The server's socket from its option files ``[text, ...]`` in the order it reads them (the last
    ``socket`` of a server section wins), else ``default``."""
    socket_path = None
    for text in texts:
        section = None
        for raw in (text or "").splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            m = re.match(r"^\[([^\]]+)\]", line)
            if m:
                section = m.group(1).strip().lower()
                continue
            m = re.match(r"^socket\s*=\s*(.+?)\s*$", line)
            if m and section and (section in ("mysqld", "mariadb", "mariadbd", "server", "client-server", "mysqld_safe")
                                  or section.startswith(("mariadb-", "mysqld-"))):
                socket_path = m.group(1).strip("\"'")
    return socket_path or default


SKIP_DIRS = ("uploads", "cache", "node_modules", ".git", "upgrade")


def _php_files(root, extra=()):
    """The .php files under ``root``, then under each of ``extra`` (a directory or one file), each once."""
    done = set()
    for top in [root, *list(extra)]:
        walk = [(os.path.dirname(top), [], [os.path.basename(top)])] if os.path.isfile(top) else os.walk(top)
        for dirpath, dirnames, filenames in walk:
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
            for name in filenames:
                path = os.path.join(dirpath, name)
                if name.endswith(".php") and path not in done:
                    done.add(path)
                    yield path


def _rel(path, root):
    """``path`` relative to ``root`` ("" for the root itself, ``../x`` outside it)."""
    rel = os.path.relpath(path, root)
    return "" if rel == "." else rel


def _under(path, root):
    path, root = os.path.normpath(path), os.path.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def _safe_read(path):
    try:
        with open(path, "r") as fh:
            return fh.read()
    except (IOError, OSError):
        return ""


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def _head_bytes(path, size):
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except (IOError, OSError):
        return b""


def _head(path, size):
    return _head_bytes(path, size).decode("utf-8", "replace")
