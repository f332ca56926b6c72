# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""PHP-FPM configuration and sizing, as pure functions (standard library only; runs on targets).

- :func:`parse_fpm_config` reads a main ``php-fpm.conf`` the way FPM does, with the lexer the editor
  uses too (``wp502_ini.scan``): ``include=`` globs (relative to the prefix) read where they stand
  (an included file continues the section that included it), ``[pool]`` sections (a ``;`` comment
  may follow them; names compared case-insensitively, the first spelling kept), ``$pool``
  substitution, ``;`` comments, quoted values, the last value of a repeated directive winning, and
  the lines FPM would refuse reported as errors.
- :func:`pool_settings` gives one pool's effective settings with FPM's defaults filled in.
- :func:`emergency_raise` is what the pool-limits rung writes: a bounded step towards the pool's
  recommendation (``wp502_sizing.size_pool``: memory, CPU and database bounds, the smallest winning).
"""

from __future__ import absolute_import, division, print_function

import glob
import math
import os
import re
import socket

from ansible.module_utils.wp502_ini import scan
from ansible.module_utils.wp502_sizing import spares

__metaclass__ = type

# FPM's defaults for the settings wp502 reads (php-fpm.conf(5) and fpm_conf.c).
POOL_DEFAULTS = {
    "pm": "dynamic",
    "pm.max_children": None,  # required by FPM
    "pm.start_servers": None,  # default: min_spare + (max_spare - min_spare) / 2
    "pm.min_spare_servers": None,
    "pm.max_spare_servers": None,
    "pm.max_requests": 0,
    "pm.process_idle_timeout": "10s",
    "request_terminate_timeout": 0,
    "request_slowlog_timeout": 0,
    "listen.backlog": 511,
}
INT_KEYS = ("pm.max_children", "pm.start_servers", "pm.min_spare_servers", "pm.max_spare_servers",
            "pm.max_requests", "listen.backlog")
DURATION_KEYS = ("request_terminate_timeout", "request_slowlog_timeout", "pm.process_idle_timeout")


def _unquote(value):
    """A value as FPM reads it (quotes, escapes, a ``;`` comment after it), from the text after ``=``."""
    record = scan("x = %s" % value)[0]
    return record["value"] if record["kind"] == "directive" else value.strip()


def listen_address(listen):
    """A pool's ``listen`` value -> (family, address) to connect to: a unix socket path, ``host:port``,
    ``[v6]:port`` or a bare port (FPM then listens on every address: ask the loopback)."""
    listen = listen.strip()
    if listen.startswith("/"):
        return socket.AF_UNIX, listen
    m = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$", listen)
    if m:
        host = "::1" if m.group(1) == "::" else m.group(1)
        return socket.AF_INET6, (host, int(m.group(2)))
    m = re.match(r"^(?:([^:\s]*):)?(\d+)$", listen)
    if m and 0 < int(m.group(2)) < 65536:
        host = m.group(1) or ""
        if host in ("", "*", "0.0.0.0"):  # noqa: S104 - a pool on every address is asked on the loopback
            host = "127.0.0.1"
        return socket.AF_INET, (host, int(m.group(2)))
    raise ValueError("%r is not a pool address (a unix socket path, host:port, [v6]:port or a port)" % listen)


def parse_duration(value):
    """FPM durations: ``30``, ``30s``, ``5m``, ``1h``, ``1d`` -> seconds (int); None when unreadable."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    m = re.match(r"^\s*(\d+)\s*([smhd]?)\s*$", str(value))
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def parse_fpm_text(text, source="<text>", section="global", errors=None):
    """Parse one FPM ini file: ordered (section, key, value, source, line) tuples.

    ``section`` is where the file starts (an included file continues its includer's section); lines
    FPM would refuse are left out and, when ``errors`` is a list, reported in it as ``source:line: why``.
    """
    entries = []
    for record in scan(text, section):
        if record["kind"] == "directive":
            entries.append((record["section"], record["key"], record["value"], source, record["line"]))
        elif record["kind"] == "error" and errors is not None:
            errors.append("%s:%d: %s" % (source, record["line"], record["error"]))
    return entries


def parse_fpm_config(main_path, read=None, expand=None, prefix=None, max_files=200):
    """Parse the main FPM config and everything it includes, in FPM's order.

    ``read(path) -> str`` and ``expand(pattern) -> [paths]`` can be given for tests; by default
    the filesystem is read. Returns ``{"global": {...}, "pools": {name: {...}}, "files": [...],
    "errors": [...]}`` where each pool maps directive -> value and keeps ``__source__`` (the file of
    its first section). FPM's state carries across files: the section an included file ends in is
    the section the including file goes on with.
    """
    read = read or _read_file
    expand = expand or (lambda pattern: sorted(glob.glob(pattern)))
    prefix = prefix or os.path.dirname(os.path.dirname(main_path)) or "/"
    result = {"global": {}, "pools": {}, "files": [], "errors": []}
    seen = set()
    names = {}  # lower-case pool name -> the spelling of its first section (FPM: strcasecmp)
    state = {"section": "global"}

    def enter(name, source):
        if name.lower() == "global":
            state["section"] = "global"
            return
        state["section"] = names.setdefault(name.lower(), name)
        result["pools"].setdefault(state["section"], {"__source__": source})

    def load(path):
        if path in seen or len(seen) >= max_files:
            return
        seen.add(path)
        try:
            text = read(path)
        except (IOError, OSError) as exc:
            result["errors"].append("%s: %s" % (path, getattr(exc, "strerror", None) or exc))
            return
        result["files"].append(path)
        for record in scan(text):
            kind = record["kind"]
            if kind == "section":
                enter(record["name"], path)
            elif kind == "error":
                result["errors"].append("%s:%d: %s" % (path, record["line"], record["error"]))
            elif kind == "directive":
                key, value = record["key"], record["value"]
                if key == "include":  # FPM: strcmp, so only lower-case include includes
                    pattern = value if os.path.isabs(value) else os.path.join(prefix, value)
                    matches = [m for m in expand(pattern) if not m.endswith("/")]
                    if not matches:
                        result["errors"].append("%s:%d: include=%s matches no file" % (path, record["line"], value))
                    for included in matches:
                        load(included)
                elif state["section"] == "global":
                    result["global"][key] = value
                else:
                    pool = state["section"]
                    result["pools"][pool][key] = value.replace("$pool", pool)

    load(main_path)
    return result


def _read_file(path):
    with open(path, "rb") as fh:
        return fh.read().decode("utf-8", "replace")


def pool_settings(name, directives):
    """One pool's effective settings: FPM defaults filled in, numbers as ints, durations in seconds."""
    out = {"name": name, "source": directives.get("__source__")}
    for key, default in POOL_DEFAULTS.items():
        out[key] = directives.get(key, default)
    for key in INT_KEYS:
        if out[key] is not None:
            try:
                out[key] = int(str(out[key]).strip())
            except ValueError:
                out[key] = None
    for key in DURATION_KEYS:
        out[key] = parse_duration(out[key])
    if out["pm"] == "dynamic" and out["pm.start_servers"] is None:
        lo, hi = out["pm.min_spare_servers"], out["pm.max_spare_servers"]
        if lo is not None and hi is not None:
            out["pm.start_servers"] = lo + (hi - lo) // 2
    for key in ("listen", "listen.owner", "listen.group", "listen.mode", "slowlog", "pm.status_path",
                "pm.status_listen", "ping.path", "access.log", "user", "group"):
        out[key] = directives.get(key)
    out["php_admin"] = dict((k, v) for k, v in directives.items() if k.startswith(("php_admin_value[", "php_value[",
                                                                                  "php_admin_flag[", "php_flag[")))
    return out


def validate_pm(settings):
    """The errors FPM itself would refuse to start with, for a pool's pm settings (empty when valid)."""
    errors = []
    pm = settings.get("pm")
    mc = settings.get("pm.max_children")
    if pm not in ("static", "dynamic", "ondemand"):
        errors.append("pm must be static, dynamic or ondemand, not %r" % (pm,))
    if not isinstance(mc, int) or mc < 1:
        errors.append("pm.max_children must be a positive integer")
        return errors
    if pm == "dynamic":
        lo, hi, start = settings.get("pm.min_spare_servers"), settings.get("pm.max_spare_servers"), settings.get("pm.start_servers")
        if not isinstance(lo, int) or lo < 1:
            errors.append("pm.min_spare_servers must be a positive integer")
        if not isinstance(hi, int) or hi < 1:
            errors.append("pm.max_spare_servers must be a positive integer")
        if not errors:
            if lo > hi:
                errors.append("pm.min_spare_servers (%d) must not be greater than pm.max_spare_servers (%d)" % (lo, hi))
            if hi > mc:
                errors.append("pm.max_spare_servers (%d) must not be greater than pm.max_children (%d)" % (hi, mc))
            if start is not None and not lo <= start <= hi:
                errors.append("pm.start_servers (%d) must be between pm.min_spare_servers (%d) and "
                              "pm.max_spare_servers (%d)" % (start, lo, hi))
    return errors


def percentile(values, pct):
    """Nearest-rank percentile (pct in 0..100) of a list of numbers; None when empty."""
    data = sorted(v for v in values if v is not None)
    if not data:
        return None
    rank = max(1, math.ceil(pct / 100.0 * len(data)))
    return data[min(rank, len(data)) - 1]


def _why(recommendation):
    return (recommendation or {}).get("reason") or "from RAM and the worker size"


def emergency_raise(pool, recommendation, growth=4, frontend_timeout=None):
    """What the pool-limits rung writes for one pool, in one bounded step: ``{settings, reasons}``.

    - pm.max_children grows to the recommendation (wp502_sizing.size_pool: never past the memory, CPU or
      database bound that binds), but at most ``growth`` times what it is (a pool that jumps from 5 to
      500 workers can take the database and RAM down with it);
      spare settings follow so that FPM accepts them;
    - a listen.backlog below 128 (connections refused under a burst: EAGAIN, 502) goes to 511;
    - with the front-end giving up before PHP does, request_terminate_timeout is set to the
      front-end's timeout, so a worker is freed when its visitor has already had a 504.
    Settings already right are not repeated; ``settings`` is empty when nothing can help.
    """
    settings, reasons = {}, []
    current = pool.get("pm.max_children")
    rec = (recommendation or {}).get("pm.max_children")
    if isinstance(current, int) and current > 0 and rec:
        target = min(rec, max(current + 1, current * growth))
        if target > current:
            settings["pm.max_children"] = target
            if pool.get("pm") == "dynamic":
                settings.update(spares(target))
            reasons.append("pm.max_children %d -> %d (the recommendation is %d, %s; at most %dx in one step)"
                           % (current, target, rec, _why(recommendation), growth))
        else:
            reasons.append("the recommendation is %d (%s): pm.max_children stays %d" % (rec, _why(recommendation), current))
    backlog = pool.get("listen.backlog")
    if isinstance(backlog, int) and 0 <= backlog < 128:
        settings["listen.backlog"] = 511
        reasons.append("listen.backlog %d -> 511 (a full backlog refuses connections: EAGAIN, 502)" % backlog)
    terminate = pool.get("request_terminate_timeout") or 0
    max_exec = pool.get("max_execution_time") or 0
    if frontend_timeout and ((terminate == 0 and max_exec > frontend_timeout) or terminate > frontend_timeout):
        value = math.ceil(frontend_timeout)
        settings["request_terminate_timeout"] = "%ds" % value
        reasons.append("request_terminate_timeout -> %ds, the front-end's timeout (workers outlive their visitors)" % value)
    merged = dict(pool, **dict((k, v) for k, v in settings.items() if k.startswith("pm.")))
    if settings and validate_pm(merged):
        return {"settings": {}, "reasons": [*reasons, "not applied: " + "; ".join(validate_pm(merged))]}
    return {"settings": settings, "reasons": reasons}


def _fcgi_record(rtype, content, request_id=1):
    import struct

    return struct.pack("!BBHHBx", 1, rtype, request_id, len(content), 0) + content


def _fcgi_params(pairs):
    import struct

    out = b""
    for key, value in pairs.items():
        k, v = key.encode(), value.encode()
        for length in (len(k), len(v)):
            out += struct.pack("!B", length) if length < 128 else struct.pack("!I", length | 0x80000000)
        out += k + v
    return out


def fpm_status(listen, status_path, timeout=2.0):
    """Ask a pool for its status page over FastCGI (JSON), with a hard deadline.

    Returns the parsed status, or ``{"error": ...}``: a saturated pool does not answer, which is
    evidence too. ``listen`` is a socket path or host:port, as in the pool's config.
    """
    import json
    import struct
    import time

    if not listen or not status_path:
        return {"error": "no pm.status_path in the pool"}
    deadline = time.time() + timeout
    try:
        family, address = listen_address(listen)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address)
        params = {"SCRIPT_NAME": status_path, "SCRIPT_FILENAME": status_path, "REQUEST_URI": status_path + "?json&full",
                  "QUERY_STRING": "json&full", "REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1",
                  "GATEWAY_INTERFACE": "CGI/1.1", "REMOTE_ADDR": "127.0.0.1"}
        sock.sendall(_fcgi_record(1, struct.pack("!HB5x", 1, 0)) + _fcgi_record(4, _fcgi_params(params))
                     + _fcgi_record(4, b"") + _fcgi_record(5, b""))
        data = b""
        while time.time() < deadline:
            sock.settimeout(max(0.05, deadline - time.time()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if len(data) > 1 << 20:
                break
        sock.close()
    except (OSError, ValueError) as exc:
        return {"error": "status page did not answer: %s" % exc}
    stdout, pos = b"", 0
    while pos + 8 <= len(data):
        _version, rtype, _request_id, length, padding = struct.unpack("!BBHHB", data[pos:pos + 7])
        body = data[pos + 8:pos + 8 + length]
        if rtype == 6:
            stdout += body
        pos += 8 + length + padding
    body = stdout.split(b"\r\n\r\n", 1)[-1]
    try:
        status = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return {"error": "status page answered something else than JSON (is pm.status_path right?)"}
    keep = ("pool", "process manager", "accepted conn", "listen queue", "max listen queue", "listen queue len",
            "idle processes", "active processes", "total processes", "max active processes", "max children reached",
            "slow requests")
    out = dict((k.replace(" ", "_"), status.get(k)) for k in keep if k in status)
    # ?full: each worker's pid, state and how many requests it served (what sizing tells busy from idle by)
    if isinstance(status.get("processes"), list):
        out["processes"] = [{"pid": p.get("pid"), "state": p.get("state"), "requests": p.get("requests")}
                            for p in status["processes"][:2000] if isinstance(p, dict)]
    return out


def timeout_chain(frontend_timeout, terminate_timeout, max_execution_time):
    """Flags where the front-end, FPM and PHP disagree about how long a request may take (seconds; 0 = never)."""
    flags = []
    php_limit = [t for t in (terminate_timeout, max_execution_time) if t]
    if not php_limit:
        flags.append("neither request_terminate_timeout nor max_execution_time limits PHP: a stuck request holds its "
                     "worker forever")
    elif frontend_timeout and min(php_limit) > frontend_timeout:
        flags.append("the front-end gives up after %ss (504) while PHP may run %ss: the worker stays busy after the "
                     "visitor is gone" % (int(frontend_timeout), int(min(php_limit))))
    if terminate_timeout and max_execution_time and terminate_timeout < max_execution_time:
        flags.append("request_terminate_timeout (%ss) kills workers before max_execution_time (%ss): a 502 instead of a "
                     "PHP error" % (terminate_timeout, max_execution_time))
    return flags
