# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""Find and classify the signatures of WordPress 502s in web-server and PHP-FPM logs.

Pure standard-library Python (it runs on the targets). The scan is built for speed on large
logs: files are read in large binary chunks into one reused buffer, only lines that contain one
of a few prefilters (literal-prefixed regexes run by the C regex engine) are decoded and classified, a
time window is found by bisecting on timestamps instead of reading from the start, and rotated
``.gz`` files are streamed through zlib, never decompressed to disk.

Entry points: :func:`classify_line` (one line), :func:`parse_since`, :class:`Scanner` (files).

Attribution to sites, in the same pass (no second read of any file). Every counted line carries the keys it
names: ``file`` (the log it was read from, rotated suffix dropped, so ``siteb.error.log.2.gz`` counts as
``siteb.error.log``), ``server`` (nginx ``server: NAME``), ``upstream`` (nginx ``upstream: "fastcgi://..."``,
Apache's ``Unix domain socket /run/php/x.sock`` or ``attempt to connect to 127.0.0.1:9001``, in
:func:`wp502_verdict.norm_addr` form), ``pool`` (FPM ``[pool NAME]``, slowlog header) and ``script`` (the
directory a script lives in, cut before ``/wp-content/``, ``/wp-admin/`` or ``/wp-includes/``: FPM
``script '...'`` lines, slowlog ``script_filename``, a fatal error's ``in /path/file.php``). Lines with the
same keys form one group of ``result()["attributed"]``::

    [{"file": "/var/log/nginx/error.log", "server": "siteb.test", "upstream": "unix:/run/php/siteb.sock",
      "pool": None, "script": None, "total": 12,
      "signatures": {"connect_refused": {"count": 12, "first_seen": iso, "last_seen": iso, "samples": [...]}},
      "suspects": [{"type": "plugin", "slug": "x", "count": 3, "sources": {"slowlog": 3}}],
      "child_signals": {"SIGSEGV": 2}, "slow_functions": {"mysqli_query": 3}}, ...]

Each line is in exactly one group, so summing the groups a site owns never counts a line twice. Which site
owns a group is decided by the reader, who knows the sites (wp502_verdict.site_logs): most specific key
first; a group no site claims stays host-level. At most MAX_GROUPS groups are kept; lines beyond that are
counted in a group with only their ``file`` key. Every suspect also says which ``pools``, ``servers`` and
``scripts`` named it (``{key: count}``).
"""

from __future__ import absolute_import, division, print_function

import calendar
import datetime
import errno
import glob
import os
import re
import stat
import time
import zlib
from collections import Counter, deque

__metaclass__ = type

SIGNATURES = (
    # front-end (nginx, Apache)
    "connect_refused",
    "connect_unavailable",
    "upstream_timeout",
    "premature_close",
    "invalid_header",
    "too_big_header",
    "fastcgi_stderr",
    # PHP-FPM
    "max_children",
    "child_signal",
    "terminate_timeout",
    "slow_request",
    "seems_busy",
)
KINDS = ("auto", "nginx", "apache", "fpm", "fpm_slowlog")

SAMPLE_MAX = 2048  # characters kept per sample
CLASSIFY_HEAD = 16384  # a signature sits in the head of a line: longer lines are cut for matching
CHUNK = 4 * 1024 * 1024
MAX_LINE = 1024 * 1024  # a longer "line" is cut to its head; memory stays bounded
MAX_GROUPS = 4096  # attribution groups kept (see the module docstring); beyond, lines keep their file key only
GROUP_SAMPLES = 2  # samples kept per signature per group
SLACK = 120  # seconds: lines are written slightly out of order; bisect aims that much earlier

# Prefilters: C-speed searches over raw bytes that select the lines worth classifying. Each starts
# with a literal (re's fast literal-prefix search); what follows is checked inside the regex engine,
# so the frequent harmless lines ("an upstream response is buffered", PHP notices relayed through
# FastCGI stderr) never reach Python. classify_line() decides; a prefilter only has to be a superset,
# which tests/unit/test_logscan.py checks on every labelled line.
_PRE_NGINX_UPSTREAM = re.compile(
    rb"upstream(?: timed out| prematurely closed| sent |s while connecting"
    rb"|(?<=connecting to upstream)|(?<=\) while reading response header from upstream)"
    rb"|(?<=\) while reading upstream)|(?<=\) while sending request to upstream))")
# A PHP fatal-class error relayed through FastCGI stderr (nginx) or AH01071 (Apache).
_PRE_PHP_FATAL = re.compile(rb"PHP (?:Fatal|Parse|Recoverable|Core|Compile)")
_PRE_FPM = re.compile(
    rb"\[pool [^\]\n]{1,256}\] (?:server reached|child \d+ exited on signal|child \d+, script|seems busy)")
_AH0 = rb"1079|2454|0957|0959|1114|2458|1067|1068|1069|1070|1075|1102|0898|1220|1110|1104|2429"  # AH0NNNN:
_PRE_MOD_FCGID = re.compile(rb"mod_fcgid: ")
_PRE_MOD_FASTCGI = re.compile(rb"FastCGI: (?:comm with|incomplete headers|failed to connect)")  # mod_fastcgi
_PRE_APACHE = (
    re.compile(rb"AH0(?:" + _AH0 + rb"):"),
    re.compile(rb"AH10124:"),
    _PRE_MOD_FCGID,
    re.compile(rb"End of script output before headers"),
    re.compile(rb"Timeout waiting for output from CGI script"),
    re.compile(rb"malformed header from script"),
    re.compile(rb"Premature end of script headers"),
    _PRE_MOD_FASTCGI,
)
# The nginx prefilters as fixed strings: a line holds one of them exactly when _PRE_NGINX_UPSTREAM or
# _PRE_PHP_FATAL selects it (tests/unit/test_logscan.py). What `grep -F` is given to look for what the module
# looks for: the benchmark's like-for-like baseline (bench/bench_logscan.py).
NGINX_LITERALS = (
    "upstream timed out", "upstream prematurely closed", "upstream sent ", "upstreams while connecting",
    "connecting to upstream", ") while reading response header from upstream", ") while reading upstream",
    ") while sending request to upstream", "PHP Fatal", "PHP Parse", "PHP Recoverable", "PHP Core", "PHP Compile",
)
PREFILTERS = {
    "nginx": (_PRE_NGINX_UPSTREAM, _PRE_PHP_FATAL),
    "fpm": (_PRE_FPM,),
    "fpm_slowlog": (),
    "apache": (*_PRE_APACHE, _PRE_PHP_FATAL),
}
PREFILTERS["auto"] = (_PRE_NGINX_UPSTREAM, _PRE_PHP_FATAL, _PRE_FPM, *_PRE_APACHE)

# What the scan runs: for each kind, regexes that select exactly the lines PREFILTERS[kind] selects, in fewer
# passes. A pass costs about a CPU cycle per byte whatever it looks for (re scans for the first byte of a
# pattern's literal prefix one byte at a time, as does bytes.count), so passes, not patterns, are what a scan
# costs: literals that share a word are looked for at that word, the rest of each checked around it inside the
# regex engine. Apache's error numbers are found at "AH", its four CGI-script messages at "script" (lookbehind
# for what comes before, lookahead for what follows). No pattern spans a newline, so a line is selected by a
# union exactly when it is by one of its parts; tests/unit/test_logscan.py checks both select the same lines.
_SCAN_APACHE = (
    re.compile(rb"AH(?:0(?:" + _AH0 + rb")|10124):"),
    re.compile(rb"script(?:(?<=End of script)(?= output before headers)|(?<=Timeout waiting for output from CGI script)"
               rb"|(?<=malformed header from script)|(?<=Premature end of script)(?= headers))"),
    _PRE_MOD_FCGID,
    _PRE_MOD_FASTCGI,
)
SCAN_PASSES = {
    "nginx": PREFILTERS["nginx"],
    "fpm": PREFILTERS["fpm"],
    "fpm_slowlog": (),
    "apache": (*_SCAN_APACHE, _PRE_PHP_FATAL),
    "auto": (_PRE_NGINX_UPSTREAM, _PRE_PHP_FATAL, _PRE_FPM, *_SCAN_APACHE),
}


# --------------------------------------------------------------------------------------------
# Line classification
# --------------------------------------------------------------------------------------------

_FATAL = re.compile(
    r"PHP (?:Fatal error|Parse error|Recoverable fatal error|Core error|Compile error)"
    r"|Uncaught (?:Error|Exception|TypeError|ArgumentCountError|ValueError|\w+Exception)"
    r"|Allowed memory size of \d+ bytes exhausted|Maximum execution time of [\d.]+ seconds? exceeded"
    r"|Out of memory \(allocated"
)

_NGINX = (
    ("connect_unavailable", re.compile(r"\(11: Resource temporarily unavailable\) while connecting to upstream")),
    ("upstream_timeout", re.compile(r"upstream timed out \(\d+: [^)]*\)|\((?:110|60): (?:Connection|Operation) timed out\) "
                                    r"while (?:connecting to|reading response header from|sending request to|reading) upstream")),
    ("connect_refused", re.compile(
        r"\((?:111|61): Connection refused\) while connecting to upstream"
        r"|\(2: No such file or directory\) while connecting to upstream"
        r"|\(13: Permission denied\) while connecting to upstream"
        r"|\((?:113|65): No route to host\) while connecting to upstream"
        r"|\((?:101|51): Network is unreachable\) while connecting to upstream"
        r"|\((?:99|49): Cannot assign requested address\) while connecting to upstream"
        r"|no live upstreams while connecting to upstream")),
    ("too_big_header", re.compile(r"upstream sent too big header")),
    ("invalid_header", re.compile(
        r"upstream sent (?:invalid header|invalid status|unsupported FastCGI protocol version|invalid FastCGI record type"
        r"|unexpected FastCGI record|invalid chunked response|no valid HTTP/1\.0 header|duplicate header line)")),
    ("premature_close", re.compile(
        r"upstream prematurely closed"
        r"|\((?:104|54): Connection reset by peer\) while (?:reading response header from|reading|sending request to) upstream"
        r"|\(32: Broken pipe\) while (?:reading response header from|reading|sending request to) upstream")),
)

_APACHE = (
    ("upstream_timeout", re.compile(
        r"\(70007\)The timeout specified has expired|Timeout waiting for output from CGI script"
        r"|mod_fcgid: read data timeout|AH01220:|AH01110: error reading response"
        r"|FastCGI: comm with (?:server|client) .{0,300} aborted: idle timeout")),
    ("connect_refused", re.compile(
        r"AH01079: failed to make connection to backend|AH02454: FCGI: attempt to connect to Unix domain socket"
        r"|AH00957: \w+: attempt to connect to|AH00959: ap_proxy_connect_backend disabling worker"
        r"|AH01114: HTTP: failed to make connection to backend|AH02458: FCGI: attempt to connect"
        r"|mod_fcgid: can't (?:connect|create) |FastCGI: failed to connect to server")),
    ("premature_close", re.compile(
        r"AH01067: Failed to read FastCGI header|End of script output before headers"
        r"|\((?:104|32)\)(?:Connection reset by peer|Broken pipe): .*AH01075:"
        r"|mod_fcgid: error reading data from FastCGI server|mod_fcgid: get overlap result error"
        r"|AH01102: error reading status line from remote server|AH00898: Error reading from remote server"
        r"|AH01068: Got bogus version|Premature end of script headers"
        r"|FastCGI: incomplete headers \(\d+ bytes\) received from server"
        r"|FastCGI: comm with (?:server|client) .{0,300} aborted: read failed")),
    ("invalid_header", re.compile(
        r"AH02429: Response header name .{0,200} contains invalid characters|AH01070: Error parsing script headers"
        r"|malformed header from script|AH01069: Error parsing FastCGI header"
        r"|FastCGI: comm with (?:server|client) .{0,300} aborted: error parsing headers")),
    ("too_big_header", re.compile(r"AH01104: Response header .{0,200} too long|header too long|AH10124:")),
    ("max_children", re.compile(r"mod_fcgid: can't apply process slot")),
)

_FPM = re.compile(
    r"\[pool (?P<pool>[^\]]+)\] (?:"
    r"(?P<max_children>server reached (?:pm\.)?max_children setting \((?P<limit>\d+)\))"
    r"|(?P<child_signal>child (?P<sig_pid>\d+) exited on signal (?P<signo>\d+) \((?P<signame>SIG\w+)[^)]*\))"
    r"|child (?P<pid>\d+), script '(?P<script>[^']*)' \(request: \"(?P<request>[^\"]*)\"\) "
    r"(?:(?P<terminate_timeout>execution timed out)|(?P<slow_request>executing too slow))"
    r"|(?P<seems_busy>seems busy \(you may need to increase))"
)
_SLOW_FRAME = re.compile(r"^\[0x[0-9a-f]+\] ([^\s(]+)\(")
_SLOW_HEADER = re.compile(r"\[pool (?P<pool>[^\]]+)\] pid (?P<pid>\d+)\s*$")

_NGX_REQUEST = re.compile(r'request: "(?:[A-Z]+) ([^" ?]+)')
_NGX_UPSTREAM = re.compile(r'upstream: "(?:fastcgi|http|https|uwsgi|scgi)://([^"]+)"')
_APACHE_SOCKET = re.compile(r"Unix domain socket (\S+)|attempt to connect to (\[[^\]]+\]:\d+|[^\s(]+:\d+)")
_APACHE_PIDTID = re.compile(r"\[pid (\d+)(?::tid (\d+))?\]")
_NGX_SERVER = re.compile(r", server: ([^,\s]+)")
# the file a PHP fatal error names: "... in /var/www/a/wp-content/plugins/x/x.php on line 12", or ":12"
_PHP_FILE = re.compile(r" in (/[^\s:'\"]+\.php)(?: on line |:\d)")
_PHP_LOG = re.compile(r"\[[^\]\n]{10,64}\] PHP (?:Fatal error|Parse error|Recoverable fatal error|Core error|Compile error):")
_SCRIPT_FILENAME = re.compile(r"^script_filename = (\S+)")
_SCRIPT_CUT = re.compile(r"/wp-(?:content|admin|includes)/")
_WP_SLUG = re.compile(r"wp-content/(plugins|mu-plugins|themes)/([^/\s\"'()\\:;,]+)")


def _fpm_match(line):
    m = _FPM.search(line)
    if m is None:
        return None
    for sig in ("max_children", "child_signal", "terminate_timeout", "slow_request", "seems_busy"):
        if m.group(sig):
            return sig, m
    return None


def classify_line(line):
    """Return ``(signature, details)`` for a log line, or ``None`` when it is no 502 signature.

    ``details`` holds what the line tells beyond its signature: ``upstream``, ``request``,
    ``pool``, ``pid``, ``signal``, ``script``, ``front`` (nginx/apache/fpm).
    """
    head = line[:CLASSIFY_HEAD]
    # PHP errors relayed by the front-end: judged on their text, never on what the PHP message quotes.
    idx = head.find("FastCGI sent in stderr:")
    if idx < 0:
        idx = head.find("AH01071: Got error '")
    if idx >= 0:
        if _FATAL.search(head, idx):
            details = {"front": "nginx" if head[idx] == "F" else "apache"}
            _add_request(head, details)
            script = _PHP_FILE.search(head, idx)
            if script:
                details["script"] = script.group(1)
            if details["front"] == "nginx":
                _add_server_upstream(head, details)
            return "fastcgi_stderr", details
        return None
    # PHP's own error log (a pool's php_admin_value[error_log]): the same fatal errors, written by PHP itself.
    if head.startswith("[") and _PHP_LOG.match(head):
        details = {"front": "php"}
        script = _PHP_FILE.search(head)
        if script:
            details["script"] = script.group(1)
        return "fastcgi_stderr", details
    if "[pool " in head:
        found = _fpm_match(head)
        if found:
            sig, m = found
            details = {"front": "fpm", "pool": m.group("pool")}
            if sig == "child_signal":
                details.update(pid=int(m.group("sig_pid")), signal=m.group("signame"))
            elif sig in ("terminate_timeout", "slow_request"):
                details.update(pid=int(m.group("pid")), script=m.group("script"))
                req = m.group("request").split(" ", 1)
                details["request"] = req[-1].split("?", 1)[0] if req else ""
            return sig, details
    if "upstream" in head:
        for sig, rx in _NGINX:
            if rx.search(head):
                details = {"front": "nginx"}
                _add_request(head, details)
                _add_server_upstream(head, details)
                return sig, details
    for sig, rx in _APACHE:
        if rx.search(head):
            details = {"front": "apache"}
            sock = _APACHE_SOCKET.search(head)
            if sock:
                details["upstream"] = "unix:" + sock.group(1) if sock.group(1) else sock.group(2)
            pt = _APACHE_PIDTID.search(head)
            if pt:
                details["pidtid"] = pt.group(0)
            return sig, details
    return None


def _add_request(head, details):
    m = _NGX_REQUEST.search(head)
    if m:
        details["request"] = m.group(1)


def _add_server_upstream(head, details):
    up = _NGX_UPSTREAM.search(head)
    if up:
        details["upstream"] = _norm_upstream(up.group(1))
    srv = _NGX_SERVER.search(head)
    if srv:
        details["server"] = srv.group(1)


def script_root(path):
    """The directory a script's site lives in: cut before /wp-content/, /wp-admin/, /wp-includes/, else the
    script's directory. ``/var/www/b/wp-content/plugins/x/x.php`` -> ``/var/www/b``."""
    if not path or not path.startswith("/"):
        return None
    m = _SCRIPT_CUT.search(path)
    if m:
        return path[:m.start()] or "/"
    return os.path.dirname(path) or "/"


def log_key(path):
    """The log a (rotated) file belongs to: ``/var/log/nginx/b.error.log.2.gz`` -> ``/var/log/nginx/b.error.log``."""
    m = _ROTATED.match(path or "")
    return m.group("base") if m else path


def _norm_upstream(raw):
    """``unix:/run/php/php8.2-fpm.sock:`` and ``unix:///run/...`` -> ``unix:/run/...``; TCP kept as host:port."""
    if raw.startswith("unix:"):
        path = raw[5:].rstrip(":")
        return "unix:/" + path.lstrip("/")
    return raw


def wp_slugs(text):
    """The (type, slug) of every wp-content plugin, mu-plugin and theme a text names, in order, once each."""
    seen = []
    for kind, raw in _WP_SLUG.findall(text):
        slug = raw[:-4] if kind == "mu-plugins" and raw.endswith(".php") else raw
        item = ({"plugins": "plugin", "mu-plugins": "mu-plugin", "themes": "theme"}[kind], slug[:200])
        if item not in seen:
            seen.append(item)
    return seen


# --------------------------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_TS = re.compile(
    r"(?P<ngx>(?P<ny>\d{4})/(?P<nm>\d\d)/(?P<nd>\d\d) (?P<nH>\d\d):(?P<nM>\d\d):(?P<nS>\d\d))"
    r"|\[(?P<fd>\d\d)-(?P<fm>[A-Z][a-z]{2})-(?P<fy>\d{4}) (?P<fH>\d\d):(?P<fM>\d\d):(?P<fS>\d\d)(?:\.\d+)?"
    r"(?: (?P<fz>[A-Za-z][\w/+-]{0,40}))?\]"  # PHP's own error_log adds its zone: [02-Dec-2026 00:10:00 UTC]
    r"|\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<am>[A-Z][a-z]{2}) +(?P<ad>\d{1,2}) (?P<aH>\d\d):(?P<aM>\d\d):(?P<aS>\d\d)"
    r"(?:\.\d+)? (?P<ay>\d{4})\]"
    r"|(?P<iy>\d{4})-(?P<im>\d\d)-(?P<id>\d\d)[T ](?P<iH>\d\d):(?P<iM>\d\d):(?P<iS>\d\d)(?:[.,]\d+)?"
    r"(?P<iz>Z|[+-]\d\d:?\d\d)?"
    r"|^(?:<\d+>)?(?P<sm>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(?P<sd>\d{1,2}) (?P<sH>\d\d):(?P<sM>\d\d):(?P<sS>\d\d)"
)
_TS_HEAD = 256  # timestamps are looked for in the first characters of a line


def _local_epoch(y, mo, d, h, mi, s):
    try:
        return time.mktime((y, mo, d, h, mi, s, 0, 0, -1))
    except (OverflowError, ValueError):
        return None


def parse_timestamp(line, now=None):
    """Epoch seconds of the first timestamp in a line's head (local time unless it carries a zone)."""
    m = _TS.search(line, 0, _TS_HEAD)
    if m is None:
        return None
    g = m.group
    try:
        if g("ngx"):
            return _local_epoch(int(g("ny")), int(g("nm")), int(g("nd")), int(g("nH")), int(g("nM")), int(g("nS")))
        if g("fd"):
            fields = (int(g("fy")), _MONTHS[g("fm")], int(g("fd")), int(g("fH")), int(g("fM")), int(g("fS")))
            if g("fz") in ("UTC", "GMT", "Etc/UTC"):
                return float(calendar.timegm((*fields, 0, 0, 0)))
            return _local_epoch(*fields)  # a named zone other than UTC: read as the host's local time
        if g("am"):
            return _local_epoch(int(g("ay")), _MONTHS[g("am")], int(g("ad")), int(g("aH")), int(g("aM")), int(g("aS")))
        if g("iy"):
            fields = (int(g("iy")), int(g("im")), int(g("id")), int(g("iH")), int(g("iM")), int(g("iS")))
            zone = g("iz")
            if zone is None:
                return _local_epoch(*fields)
            epoch = calendar.timegm((*fields, 0, 0, 0))
            if zone != "Z":
                sign = 1 if zone[0] == "+" else -1
                digits = zone[1:].replace(":", "")
                epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
            return float(epoch)
        # syslog: no year; the latest year that does not put the line in the future
        now = time.time() if now is None else now
        year = time.localtime(now).tm_year
        epoch = _local_epoch(year, _MONTHS[g("sm")], int(g("sd")), int(g("sH")), int(g("sM")), int(g("sS")))
        if epoch is not None and epoch > now + 86400:
            epoch = _local_epoch(year - 1, _MONTHS[g("sm")], int(g("sd")), int(g("sH")), int(g("sM")), int(g("sS")))
        return epoch
    except (KeyError, ValueError):
        return None


def iso(epoch):
    """ISO-8601 with the host's UTC offset."""
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch).astimezone().replace(microsecond=0).isoformat()


_SINCE_REL = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_since(since, now=None):
    """``15m``, ``1h``, ``24h``, ``7d``, an ISO-8601 time or ``all`` -> epoch seconds (``None`` for all)."""
    now = time.time() if now is None else now
    text = str(since).strip()
    if text.lower() == "all":
        return None
    m = _SINCE_REL.match(text)
    if m:
        return now - int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    iso_text = text[:-1] + "+00:00" if text.endswith("Z") else text
    try:
        when = datetime.datetime.fromisoformat(iso_text)
    except ValueError:
        raise ValueError(
            "since=%r is not understood: use a duration such as 15m, 1h, 24h, 7d, an ISO-8601 time such as "
            "2026-11-23T21:00:00+00:00, or all" % (since,)
        ) from None
    if when.tzinfo is None:
        return time.mktime(when.timetuple()) + when.microsecond / 1e6
    return when.timestamp()


# --------------------------------------------------------------------------------------------
# Files: kinds, rotation, reading
# --------------------------------------------------------------------------------------------

_SNIFF = (
    ("fpm_slowlog", re.compile(rb"^\[\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d(?:\.\d+)?\]\s+\[pool [^\]]+\] pid \d+\s*$", re.M)),
    ("fpm", re.compile(rb"^\[\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d(?:\.\d+)?\] (?:NOTICE|WARNING|ERROR|ALERT|DEBUG):", re.M)),
    ("nginx", re.compile(rb"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(?:debug|info|notice|warn|error|crit|alert|emerg)\]", re.M)),
    ("apache", re.compile(rb"^\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d", re.M)),
)


def sniff_kind(head, path=""):
    """Decide the kind of log from its first bytes (and its name when the bytes say nothing)."""
    for kind, rx in _SNIFF:
        if rx.search(head):
            return kind
    name = os.path.basename(path)
    if "slow" in name and ("fpm" in name or "php" in name):
        return "fpm_slowlog"
    return "auto"


_ROTATED = re.compile(r"^(?P<base>.+?)(?:\.(?P<n>\d+)|-(?P<date>\d{8}(?:\d{2})?))(?P<gz>\.gz)?$")


def is_rotated(path):
    return _ROTATED.match(path) is not None


def rotated_siblings(path):
    """The rotated copies of a log: ``.1``, ``.N.gz``, ``-YYYYMMDD``, ``-YYYYMMDD.gz``."""
    found = set()
    for suffix in (".[0-9]*", "-[0-9]*"):
        for candidate in glob.glob(glob.escape(path) + suffix):
            m = _ROTATED.match(candidate)
            if m and m.group("base") == path:
                found.add(candidate)
    return sorted(found)


def _mtime_or_zero(path):
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def find_rotated_copy(path, head, min_size, exclude=()):
    """The copy logrotate's ``copytruncate`` made of ``path`` just before truncating it.

    A candidate is a plain rotated sibling (``.1``, ``-YYYYMMDD``; a ``.gz`` is compressed later) that is
    at least ``min_size`` bytes long and starts with ``head``, the first bytes read from ``path`` before it
    was truncated: the copy holds the whole old content at the same offsets. A sibling with other content
    (an older rotation, another file) is never used, and nothing is used when ``head`` is empty.
    Returns ``(path, file object, stat)``, the file object unbuffered and owned by the caller, or ``None``.
    """
    if not head:
        return None
    candidates = [c for c in rotated_siblings(path) if not c.endswith(".gz")]
    for candidate in sorted(candidates, key=_mtime_or_zero, reverse=True):
        try:
            fd = os.open(candidate, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if (stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in exclude
                    and st.st_size >= max(min_size, len(head)) and os.pread(fd, len(head), 0) == head):
                fh = os.fdopen(fd, "rb", buffering=0)
                fd = None
                return candidate, fh, st
        except OSError:
            pass
        finally:
            if fd is not None:
                os.close(fd)
    return None


class Reading:
    """What reading one file produced; becomes one entry of the ``files`` result."""

    def __init__(self, path, kind, rotated, compressed):
        self.path = path
        self.kind = kind
        self.rotated = rotated
        self.compressed = compressed
        self.size = None
        self.inode = None
        self.mtime = None
        self.bytes_read = 0
        self.bytes_decompressed = 0
        self.lines_scanned = 0
        self.start_offset = 0
        self.first_ts = None
        self.last_ts = None
        self.truncated_at = None  # offset at which the file was found truncated while it was read
        self.rest_from = None  # the rotated copy the rest of it was read from
        self.warnings = []
        self.ok = False

    def as_dict(self):
        out = {
            "path": self.path, "kind": self.kind, "size": self.size, "inode": self.inode,
            "bytes_read": self.bytes_read, "rotated": self.rotated, "compressed": self.compressed,
            "lines_scanned": self.lines_scanned, "start_offset": self.start_offset,
            "first_seen": iso(self.first_ts), "last_seen": iso(self.last_ts), "read": self.ok,
        }
        if self.compressed:
            out["bytes_decompressed"] = self.bytes_decompressed
        if self.truncated_at is not None:
            out["truncated_at"] = self.truncated_at
            out["rest_from"] = self.rest_from
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


class _Sig:
    __slots__ = ("count", "first", "last", "samples")

    def __init__(self, max_samples):
        self.count = 0
        self.first = None
        self.last = None
        self.samples = deque(maxlen=max(0, max_samples))

    def note(self, epoch, sample):
        """One more line of this signature: its count, the window it spans, its latest samples."""
        self.count += 1
        if epoch is not None:
            if self.first is None or epoch < self.first:
                self.first = epoch
            if self.last is None or epoch > self.last:
                self.last = epoch
        if self.samples.maxlen:
            self.samples.append(sample)


class _Group:
    """The lines that carry the same attribution keys (file, server, upstream, pool, script)."""

    __slots__ = ("functions", "keys", "signals", "sigs", "suspects")

    def __init__(self, keys):
        self.keys = keys
        self.sigs = {}
        self.suspects = {}
        self.signals = Counter()
        self.functions = Counter()

    def add(self, sig, epoch, sample, max_samples):
        s = self.sigs.get(sig)
        if s is None:
            s = self.sigs[sig] = _Sig(max_samples)
        s.note(epoch, sample)

    def as_dict(self):
        out = dict((name, self.keys[i]) for i, name in enumerate(GROUP_KEYS))
        out["total"] = sum(s.count for s in self.sigs.values())
        out["signatures"] = dict((name, {"count": s.count, "first_seen": iso(s.first), "last_seen": iso(s.last),
                                         "samples": list(s.samples)}) for name, s in sorted(self.sigs.items()))
        out["suspects"] = sorted(self.suspects.values(), key=lambda e: (-e["count"], e["type"], e["slug"]))
        out["child_signals"] = dict(self.signals)
        out["slow_functions"] = dict(self.functions)
        return out


GROUP_KEYS = ("file", "server", "upstream", "pool", "script")


class Scanner:
    """Scan log files for 502 signatures within a time window.

    >>> scanner = Scanner(since_epoch=None)
    >>> scanner.scan_paths(["/var/log/nginx/error.log"])
    >>> result = scanner.result()
    """

    def __init__(self, since_epoch=None, *, kind="auto", max_samples=5, rotated=True, now=None, chunk_size=CHUNK):
        if kind not in KINDS:
            raise ValueError("kind=%r is not one of %s" % (kind, ", ".join(KINDS)))
        self.since = since_epoch
        self.kind = kind
        self.max_samples = max_samples
        self._group_samples = max(0, min(GROUP_SAMPLES, max_samples))
        self.rotated = rotated
        self.now = time.time() if now is None else now
        self.chunk_size = max(4096, chunk_size)
        self.sigs = dict((s, _Sig(max_samples)) for s in SIGNATURES)
        self.by_upstream = Counter()
        self.by_pool = Counter()
        self.requests = Counter()
        self.suspects = {}
        self.signals = Counter()
        self.slow_functions = Counter()
        self.groups = {}  # (file, server, upstream, pool, script) -> _Group
        self._file = None  # log_key() of the file being read
        self.readings = []
        self.warnings = []
        self._seen_inodes = {}  # (dev, inode) -> None, or the log whose rest it was read as (copytruncate)
        self._slow_keys = set()  # (second, pid) of slow requests already counted
        self._terminated = {}  # pid -> epoch of "execution timed out, terminating"
        self._apache_last = {}  # pid:tid -> (second, signature): Apache logs 2 lines per failure
        self._buf = None

    # ---- results -------------------------------------------------------------------------
    def result(self):
        signatures = {}
        for name in SIGNATURES:
            s = self.sigs[name]
            signatures[name] = {"count": s.count, "first_seen": iso(s.first), "last_seen": iso(s.last),
                                "samples": list(s.samples)}
        firsts = [r.first_ts for r in self.readings if r.first_ts is not None]
        lasts = [r.last_ts for r in self.readings if r.last_ts is not None]
        start = min(firsts) if firsts else None
        if self.since is not None and (start is None or start < self.since):
            start = self.since
        suspects = sorted(self.suspects.values(), key=lambda s: (-s["count"], s["type"], s["slug"]))
        return {
            "signatures": signatures,
            "by_upstream": dict(self.by_upstream),
            "by_pool": dict(self.by_pool),
            "child_signals": dict(self.signals),
            "slow_functions": dict(self.slow_functions.most_common(10)),
            "top_requests": [{"request": r, "count": c} for r, c in self.requests.most_common(10)],
            "suspects": suspects,
            "attributed": [g.as_dict() for g in self.groups.values() if g.sigs or g.suspects or g.functions],
            "files": [r.as_dict() for r in self.readings],
            "bytes_read": sum(r.bytes_read for r in self.readings),
            "lines_scanned": sum(r.lines_scanned for r in self.readings),
            "window": {"since": iso(self.since) if self.since is not None else "all", "start": iso(start),
                       "end": iso(max(lasts)) if lasts else None},
            "warnings": list(self.warnings),
            "total": sum(s.count for s in self.sigs.values()),
        }

    def _group(self, details):
        """The attribution group of a line with these details (created on first use)."""
        script = details.get("script")
        keys = (self._file, details.get("server"), details.get("upstream"), details.get("pool"),
                script_root(script) if script else None)
        group = self.groups.get(keys)
        if group is None:
            if len(self.groups) >= MAX_GROUPS:
                keys = (self._file, None, None, None, None)
                group = self.groups.get(keys)
                if group is not None:
                    return group
            group = self.groups[keys] = _Group(keys)
        return group

    def _record(self, sig, epoch, line, details, group=None):
        sample = line[:SAMPLE_MAX]
        (group or self._group(details)).add(sig, epoch, sample, self._group_samples)
        self.sigs[sig].note(epoch, sample)
        if details.get("upstream"):
            self.by_upstream[details["upstream"]] += 1
        if details.get("pool"):
            self.by_pool[details["pool"]] += 1
        if details.get("request"):
            self.requests[details["request"]] += 1
        if details.get("signal"):
            self.signals[details["signal"]] += 1
            (group or self._group(details)).signals[details["signal"]] += 1

    def _suspect(self, text, source, group):
        keys = group.keys
        for kind, slug in wp_slugs(text):
            key = kind + ":" + slug
            entry = self.suspects.get(key)
            if entry is None:
                entry = self.suspects[key] = {"type": kind, "slug": slug, "count": 0, "sources": {},
                                              "pools": {}, "servers": {}, "scripts": {}}
            entry["count"] += 1
            entry["sources"][source] = entry["sources"].get(source, 0) + 1
            for name, value in (("servers", keys[1]), ("pools", keys[3]), ("scripts", keys[4])):
                if value is not None:
                    entry[name][value] = entry[name].get(value, 0) + 1
            local = group.suspects.get(key)
            if local is None:
                local = group.suspects[key] = {"type": kind, "slug": slug, "count": 0, "sources": {}}
            local["count"] += 1
            local["sources"][source] = local["sources"].get(source, 0) + 1

    # ---- one line ------------------------------------------------------------------------
    def consider(self, line, epoch=None, reading=None):
        """Classify one decoded line (its timestamp already parsed, or parsed here)."""
        found = classify_line(line)
        if found is None:
            return
        sig, details = found
        if epoch is None:
            epoch = parse_timestamp(line, self.now)
        if self.since is not None and epoch is not None and epoch < self.since:
            return
        second = int(epoch) if epoch is not None else None
        group = None
        if sig == "slow_request":
            key = (second, details.get("pid"))
            if key in self._slow_keys:
                return
            self._remember_slow(key)
        elif sig == "terminate_timeout":
            self._terminated[details.get("pid")] = epoch
            group = self._group(details)
            self._suspect(details.get("script", ""), "terminate_timeout", group)
        elif sig == "child_signal" and details.get("signal") in ("SIGTERM", "SIGKILL", "SIGQUIT"):
            # FPM kills a worker it gave up on: that is the timeout already counted, not a crash.
            when = self._terminated.get(details.get("pid"), "none")
            if when != "none" and (when is None or epoch is None or abs(epoch - when) <= 5):
                return
        elif sig == "fastcgi_stderr":
            group = self._group(details)
            self._suspect(line[:CLASSIFY_HEAD], "fastcgi_stderr", group)
        if details.get("pidtid") and second is not None:
            last = self._apache_last.get(details["pidtid"])
            self._apache_last[details["pidtid"]] = (second, sig)
            if last == (second, sig):
                return
            if len(self._apache_last) > 4096:
                self._apache_last.clear()
        self._record(sig, epoch, line, details, group)

    def _remember_slow(self, key):
        if len(self._slow_keys) > 200000:
            self._slow_keys.clear()
        self._slow_keys.add(key)

    def consider_slow_entry(self, header, body_lines):
        """One FPM slowlog entry: a timestamped header, ``script_filename = ...``, stack frames."""
        m = _SLOW_HEADER.search(header)
        epoch = parse_timestamp(header, self.now)
        if self.since is not None and epoch is not None and epoch < self.since:
            return
        details = {"front": "fpm", "pool": m.group("pool") if m else None}
        for line in body_lines[:3]:
            script = _SCRIPT_FILENAME.match(line)
            if script:
                details["script"] = script.group(1)
                break
        group = self._group(details)
        text = "\n".join(body_lines)
        self._suspect(text, "slowlog", group)
        for line in body_lines:
            frame = _SLOW_FRAME.match(line)
            if frame:
                self.slow_functions[frame.group(1)] += 1  # the innermost frame: what the worker waits on
                group.functions[frame.group(1)] += 1
                break
        pid = int(m.group("pid")) if m else None
        key = (int(epoch) if epoch is not None else None, pid)
        if key in self._slow_keys:
            return
        self._remember_slow(key)
        sample = header + "\n" + "\n".join(body_lines[:12])
        self._record("slow_request", epoch, sample, details, group)

    # ---- files ---------------------------------------------------------------------------
    def scan_paths(self, paths):
        """Expand globs and rotated siblings, newest first; scan each file once."""
        files = []
        for raw in paths:
            expanded = sorted(glob.glob(raw)) if glob.has_magic(raw) else [raw]
            if not expanded:
                self.warnings.append("%s: no file matches this path" % raw)
                self.readings.append(self._failed(raw, "no file matches this path"))
                continue
            for path in expanded:
                files.append(path)
                if self.rotated and not is_rotated(path):
                    files.extend(rotated_siblings(path))
        ordered = []
        seen = set()
        for path in files:
            if path in seen:
                continue
            seen.add(path)
            ordered.append(path)
        for path in self._newest_first(ordered):
            self.scan_file(path)

    def _newest_first(self, paths):
        def mtime(p):
            try:
                return os.stat(p).st_mtime
            except OSError:
                return float("inf")  # let scan_file report it
        return sorted(paths, key=lambda p: -mtime(p))

    def _failed(self, path, why):
        reading = Reading(path, self.kind, is_rotated(path), path.endswith(".gz"))
        reading.warnings.append(why)
        return reading

    def scan_file(self, path):
        self._file = log_key(path)
        try:
            self._scan_file(path)
        finally:
            self._file = None

    def _scan_file(self, path):
        compressed = path.endswith(".gz")
        reading = Reading(path, self.kind, is_rotated(path), compressed)
        # O_NONBLOCK: opening a FIFO given by mistake must not hang the scan (no effect on files).
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(path, flags | getattr(os, "O_NOATIME", 0))
        except OSError as exc:
            if exc.errno == errno.EPERM and getattr(os, "O_NOATIME", 0):
                try:
                    fd = os.open(path, flags)
                except OSError as exc2:
                    return self._unreadable(reading, exc2)
            else:
                return self._unreadable(reading, exc)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                return self._unreadable(reading, None, "is a directory, not a log file")
            if not stat.S_ISREG(st.st_mode):
                return self._unreadable(reading, None, "is not a regular file")
            reading.size, reading.inode, reading.mtime = st.st_size, st.st_ino, st.st_mtime
            ident = (st.st_dev, st.st_ino)
            if ident in self._seen_inodes:
                rest_of = self._seen_inodes[ident]
                if rest_of is None:
                    reading.warnings.append("same file as one already scanned (hard link or duplicate path): skipped")
                else:
                    reading.warnings.append("already read as the rest of %s, truncated while it was read "
                                            "(copytruncate): skipped" % rest_of)
                reading.ok = True
                self.readings.append(reading)
                return
            self._seen_inodes[ident] = None
            if self.since is not None and st.st_mtime < self.since - SLACK:
                # Nothing was written to it inside the window.
                reading.ok = True
                reading.warnings.append("last written before the window: not read")
                self.readings.append(reading)
                return
            with os.fdopen(fd, "rb", buffering=0) as fh:
                fd = None
                if compressed:
                    self._scan_gzip(fh, reading)
                else:
                    self._scan_plain(fh, reading, st.st_size, ident)
            reading.ok = True
        except OSError as exc:
            reading.warnings.append("read error: %s" % (exc.strerror or exc))
            self.warnings.append("%s: read error: %s" % (path, exc.strerror or exc))
            reading.ok = reading.bytes_read > 0
        finally:
            if fd is not None:
                os.close(fd)
        self.readings.append(reading)

    def _unreadable(self, reading, exc, why=None):
        why = why or ("cannot be read: %s" % (exc.strerror or exc))
        reading.warnings.append(why)
        self.warnings.append("%s: %s" % (reading.path, why))
        self.readings.append(reading)

    def _decide_kind(self, head, reading):
        if self.kind != "auto":
            return self.kind
        kind = sniff_kind(head, reading.path)
        reading.kind = kind
        return kind

    # ---- plain files: bisect to the window, then chunks ------------------------------------
    def _scan_plain(self, fh, reading, size, ident):
        head = fh.read(65536)
        reading.bytes_read += len(head)
        kind = self._decide_kind(head, reading)
        target = self.since - SLACK if self.since is not None else None
        source = _PlainSource(fh, reading.path, head, ident)
        try:
            start = 0
            if len(head) < min(size, 65536):
                # truncated between the open and the first read: nothing of the old content is held yet
                source.truncated(0)
            elif target is not None and size > 4 * self.chunk_size:
                try:
                    start = self._bisect(fh, size, target, reading)
                except _TruncatedError:
                    source.truncated(0)  # while bisecting: nothing of the window was read yet
            if source.truncated_at is None:
                if start == 0:
                    # the head already read is the start of the scan: not read twice
                    fh.seek(len(head))
                    source.begin(len(head), size - len(head), prefix=head)
                else:
                    fh.seek(start)
                    source.begin(start, size - start)
            elif source.rest_from:
                # the window is looked for again in the copy, which holds the old content at the same offsets
                start = 0
                if target is not None and source.copy_size > 4 * self.chunk_size:
                    try:
                        start = self._bisect(source.fh, source.copy_size, target, reading)
                    except _TruncatedError:
                        start = 0
                source.begin_copy(start, inside_line=start > 0)
            reading.start_offset = start
            self._scan_stream(source, reading, kind, skip_partial=start > 0)
        finally:
            source.close()
        reading.bytes_read += source.total
        if source.truncated_at is not None:
            self._report_truncation(source, reading, size)

    def _report_truncation(self, source, reading, size):
        """Say what a copytruncate under the scan changed, in the file's entry and the warnings."""
        reading.truncated_at = source.truncated_at
        if source.rest_from:
            reading.rest_from = source.rest_from
            self._seen_inodes[source.copy_ident] = reading.path  # its sibling entry is not read again
            why = "%s was truncated while it was read (copytruncate): the rest came from %s" % (reading.path, source.rest_from)
            if source.copy_size < size:
                why += (" (it ends at offset %d, before the %d bytes the file had when opened: lines after offset %d "
                        "may be missing)" % (source.copy_size, size, source.copy_size))
        else:
            why = ("%s was truncated while it was read (copytruncate?) and no rotated copy matches what was read: "
                   "lines after offset %d may be missing" % (reading.path, source.truncated_at))
        if source.new_bytes:
            why += "; the %d bytes written to it since were read from its offset 0" % source.new_bytes
        reading.warnings.append(why)
        self.warnings.append(why)

    def _bisect(self, fh, size, target, reading):
        """Offset of a line start at or before the first line stamped >= target (logs are chronological).
        Raises _TruncatedError when the file turns out shorter than ``size`` (truncated under us)."""
        lo, hi = 0, size
        while hi - lo > self.chunk_size:
            mid = (lo + hi) // 2
            ts = self._first_ts_after(fh, mid, hi, reading)
            if ts is None:
                break  # no timestamp there: read from lo, nothing is skipped wrongly
            if ts < target:
                lo = mid
            else:
                hi = mid
        return lo

    def _first_ts_after(self, fh, offset, limit, reading):
        """The first timestamp of the first whole line after offset: 4 KiB read, more only if needed."""
        size = 4096
        while True:
            fh.seek(offset)
            want = min(size, max(0, limit - offset))
            block = fh.read(want)
            reading.bytes_read += len(block)
            if len(block) < want:
                raise _TruncatedError(offset)
            nl = block.find(b"\n")
            if nl >= 0:
                for raw in block[nl + 1:].split(b"\n")[:-1]:
                    ts = parse_timestamp(raw[:_TS_HEAD].decode("utf-8", "replace"), self.now)
                    if ts is not None:
                        return ts
            if size >= 262144 or len(block) < size:
                return None
            size *= 4

    # ---- gzip: streamed, multi-member, truncated or corrupt reported -----------------------
    def _scan_gzip(self, fh, reading):
        source = _GzipSource(fh, reading)
        head = source.peek(65536)
        kind = self._decide_kind(head, reading)
        self._scan_stream(source, reading, kind, skip_partial=False)
        if source.error:
            reading.warnings.append(source.error)
            self.warnings.append("%s: %s" % (reading.path, source.error))

    # ---- the hot loop ------------------------------------------------------------------------
    def _scan_stream(self, source, reading, kind, skip_partial):
        passes = SCAN_PASSES.get(kind, SCAN_PASSES["auto"])
        slowlog = kind == "fpm_slowlog"
        counter = _NewlineCounter()
        cap = self.chunk_size + MAX_LINE + 1
        if self._buf is None or len(self._buf) < cap:
            self._buf = bytearray(cap)
        buf = self._buf
        view = memoryview(buf)
        carry = 0  # bytes of an unfinished line kept at the start of buf
        first_line = skip_partial
        pending_slow = None  # (header, body) of a slowlog entry spanning chunks
        lines = 0
        first_ts = None
        cut_warned = False
        try:
            while True:
                fresh = carry  # buf[:carry] is the head of an unfinished line: no newline in it
                n = source.readinto(view[carry:carry + self.chunk_size])
                if n == 0:
                    if carry:
                        # the last line has no newline: it still counts
                        buf[carry] = 0x0A
                        end = carry + 1
                        carry_next = 0
                    else:
                        break
                else:
                    end = carry + n
                    last_nl = buf.rfind(b"\n", 0, end)
                    if last_nl < 0:
                        if end >= MAX_LINE:
                            # a single huge line: keep its head, drop the rest of it
                            if not cut_warned:
                                reading.warnings.append("a line longer than %d bytes was cut to its head" % MAX_LINE)
                                cut_warned = True
                            carry = CLASSIFY_HEAD
                        else:
                            carry = end
                        continue
                    carry_next = end - (last_nl + 1)
                    end = last_nl + 1
                begin = 0
                if first_line:
                    nl = buf.find(b"\n", 0, end)
                    begin = nl + 1
                    first_line = False
                lines += counter.count(buf, max(begin, fresh), end)
                if first_ts is None:
                    first_ts = self._ts_at(buf, begin, end)
                if slowlog:
                    pending_slow = self._slow_chunk(buf, begin, end, pending_slow)
                else:
                    self._prefiltered(buf, begin, end, passes, reading)
                ts = self._last_ts(buf, begin, end)
                if ts is not None:
                    reading.last_ts = ts
                if n == 0:
                    break
                if carry_next:
                    buf[0:carry_next] = buf[end:end + carry_next]
                carry = carry_next
        finally:
            view.release()
        if pending_slow is not None:
            self.consider_slow_entry(pending_slow[0], pending_slow[1])
        reading.lines_scanned = lines
        reading.first_ts = first_ts

    def _ts_at(self, buf, begin, end):
        pos = begin
        for _line in range(50):  # lines looked at, at most
            if pos >= end:
                return None
            nl = buf.find(b"\n", pos, end)
            nl = end if nl < 0 else nl
            ts = parse_timestamp(bytes(buf[pos:min(nl, pos + _TS_HEAD)]).decode("utf-8", "replace"), self.now)
            if ts is not None:
                return ts
            pos = nl + 1
        return None

    def _last_ts(self, buf, begin, end):
        pos = end - 1  # the newline ending the last line
        for _line in range(50):  # lines looked at, at most
            if pos <= begin:
                return None
            prev = buf.rfind(b"\n", begin, pos)
            start = prev + 1
            ts = parse_timestamp(bytes(buf[start:min(pos, start + _TS_HEAD)]).decode("utf-8", "replace"), self.now)
            if ts is not None:
                return ts
            pos = prev
        return None

    def _prefiltered(self, buf, begin, end, passes, reading):
        """Classify every line of buf[begin:end] a pass selects (SCAN_PASSES); each line at most once, in order."""
        starts = {}
        for rx in passes:
            for m in rx.finditer(buf, begin, end):
                i = m.start()
                ls = buf.rfind(b"\n", begin, i) + 1
                if ls in starts:
                    continue
                le = buf.find(b"\n", i, end)
                starts[ls] = end if le < 0 else le
        for ls in sorted(starts):
            raw = bytes(buf[ls:min(starts[ls], ls + CLASSIFY_HEAD)])
            self.consider(raw.decode("utf-8", "replace").rstrip("\r"), None, reading)

    def _slow_chunk(self, buf, begin, end, pending):
        """FPM slowlog entries: a header line, then lines up to a blank line."""
        text = bytes(buf[begin:end]).decode("utf-8", "replace")
        header, body = pending if pending is not None else (None, [])
        for raw in text.split("\n")[:-1]:
            line = raw.rstrip("\r")
            if _SLOW_HEADER.search(line) and line.startswith("["):
                if header is not None:
                    self.consider_slow_entry(header, body)
                header, body = line, []
            elif not line.strip():
                if header is not None:
                    self.consider_slow_entry(header, body)
                header, body = None, []
            elif header is not None and len(body) < 200:
                body.append(line[:SAMPLE_MAX])
        return (header, body) if header is not None else None


class _NewlineCounter:
    """Counts the newlines of a buffer's ranges, behind ``lines_scanned``.

    ``bytes.count(b"\\n")`` tests every byte in a loop (about a cycle a byte); ``bytes.replace(b"\\n", b"")``
    jumps from newline to newline with ``memchr`` (C's vectorised search) and copies what lies between, so the
    length it drops is the count, found at several bytes a cycle on log lines. Its cost grows with the number of
    lines, though: where lines are shorter than DENSE bytes on average (measured on the last range), counting
    byte by byte is the faster and is used instead. The copy is made BLOCK bytes at a time: the slice and what
    replace returns stay under the allocator's mmap threshold (128 KiB in glibc and musl), so they reuse memory
    already mapped; 256 KiB blocks were mapped and unmapped each time, a page fault per 4 KiB counted.
    """

    DENSE = 40
    BLOCK = 64 * 1024

    __slots__ = ("dense",)

    def __init__(self):
        self.dense = False

    def count(self, buf, start, end):
        if end <= start:
            return 0
        if self.dense:
            found = buf.count(b"\n", start, end)
        else:
            found = 0
            for lo in range(start, end, self.BLOCK):
                hi = min(end, lo + self.BLOCK)
                found += hi - lo - len(buf[lo:hi].replace(b"\n", b""))
        self.dense = found * self.DENSE > end - start
        return found


class _TruncatedError(Exception):
    """A read came back shorter than the size the file had when it was opened: it was truncated under us."""


class _PlainSource:
    """The bytes of a plain log from an offset up to the size it had when it was opened: a log that grows
    while it is read is not chased forever.

    A read that comes back short means the file was truncated under us (logrotate's ``copytruncate``): what
    that read got is dropped (it may already be new lines), the rest of the old content is read from the
    rotated copy at the same offsets (:func:`find_rotated_copy`: checked to start with the same bytes), and
    then the lines written to the file since, from its offset 0, so that no line is lost or read twice.
    Without a matching copy, only the new lines follow; ``truncated_at`` and ``rest_from`` tell which.
    When nothing is truncated this costs one comparison and one byte noted per read, no system call.
    """

    _OLD, _COPY, _NEW = 0, 1, 2

    def __init__(self, fh, path, head, ident):
        self.fh = fh  # the file being read now: the log, or its copy
        self.live = fh
        self.path = path
        self.head = head  # the first bytes of the log, read when it was opened: they identify its copy
        self.ident = ident
        self.phase = self._OLD
        self.base = 0  # offset of the first byte read from fh in this phase
        self.left = 0
        self.prefix = b""
        self.total = 0  # bytes read from disk (the prefix was counted by the caller)
        self.phase_total = 0  # total when this phase began
        self.last = 0x0A  # last byte handed out: a line end, or nothing yet
        self.truncated_at = None
        self.rest_from = None  # path of the copy; False when none matched
        self.copy_size = 0
        self.copy_ident = None

    def begin(self, offset, limit, prefix=b""):
        """Read the log itself from offset (where fh stands), prefix first."""
        self.base, self.left, self.prefix = offset, limit, prefix
        if offset:
            self.last = None  # starts inside a line

    def truncated(self, offset):
        """The log was found shorter than ``offset``: switch to its copy, or to its new lines."""
        self.truncated_at = offset
        found = find_rotated_copy(self.path, self.head, offset, exclude={self.ident})
        if found is None:
            self.rest_from = False
            self._to_new()
            return
        self.rest_from, self.fh, st = found
        self.copy_size, self.copy_ident = st.st_size, (st.st_dev, st.st_ino)
        self.begin_copy(offset)

    def begin_copy(self, offset, inside_line=False):
        self.phase = self._COPY
        self.fh.seek(offset)
        self.base, self.left, self.phase_total = offset, self.copy_size - offset, self.total
        if inside_line:
            self.last = None

    @property
    def new_bytes(self):
        """Bytes read from the log's new content, after it was truncated."""
        return self.total - self.phase_total if self.phase == self._NEW else 0

    def _to_new(self):
        if self.fh is not self.live:
            self.fh.close()
        self.phase = self._NEW
        self.fh = self.live
        self.fh.seek(0)
        self.left = os.fstat(self.fh.fileno()).st_size
        self.base, self.phase_total = 0, self.total

    def close(self):
        if self.fh is not self.live:
            self.fh.close()
            self.fh = self.live

    def readinto(self, view):
        if self.prefix:
            n = min(len(view), len(self.prefix))
            view[:n] = self.prefix[:n]
            self.prefix = self.prefix[n:]
            self.last = view[n - 1]
            return n
        if self.left <= 0:
            return self._next(view)
        want = min(len(view), self.left)
        n = self.fh.readinto(view[:want]) or 0
        if n < want:
            return self._short(view, n)
        self.left -= n
        self.total += n
        self.last = view[n - 1]
        return n

    def _short(self, view, n):
        if self.phase == self._OLD:
            offset = self.base + self.total - self.phase_total
            self.total += n  # read from disk, though not used
            self.truncated(offset)
            return self._resume(view)
        # the copy or the new lines ended early: keep what came, then go on
        self.left = 0
        if n == 0:
            return self._next(view)
        self.total += n
        self.last = view[n - 1]
        return n

    def _next(self, view):
        """The current part is read: after the copy come the new lines; after those, or the log, nothing."""
        if self.phase != self._COPY:
            return 0
        self._to_new()
        return self._resume(view)

    def _resume(self, view):
        if self.phase == self._NEW and self.left > 0 and self.last != 0x0A:
            view[0] = 0x0A  # what came before ended inside a line: the new lines start on their own
            self.last = 0x0A
            return 1
        return self.readinto(view)


class _GzipSource:
    """Streams a gzip file (several members allowed) through zlib, bounded output per call;
    a truncated or corrupt stream ends the read with ``error`` set, keeping what was read.

    The file is read 1 MiB at a time, but zlib is given FEED bytes of it at a time and asked for at most PIECE
    bytes back: each piece it returns is a new bytes object, and one that stays under the allocator's mmap
    threshold (128 KiB in glibc and musl) is carved from memory already mapped. 4 MiB pieces were mapped and
    unmapped each time, a page fault per 4 KiB decompressed. What zlib did not take back when a piece was full
    (``unconsumed_tail``) is a copy, so it is kept small too.
    """

    FEED = 16 * 1024
    PIECE = 64 * 1024

    def __init__(self, fh, reading):
        self.fh = fh
        self.reading = reading
        self.d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.input = b""  # compressed bytes read from the file, from self.fed on not yet given to zlib
        self.fed = 0
        self.full = False  # the last piece filled the room it was given: zlib may hold more output
        self.in_member = False
        self.error = None
        self.peeked = b""

    def _more(self, size, into=None):
        """Up to ``size`` more decompressed bytes: written piece by piece to the memoryview ``into`` (their number is
        returned; nothing is joined or copied twice), or returned as bytes."""
        out = [] if into is None else None
        got = 0
        while got < size and self.error is None:
            if self.d.unconsumed_tail:
                data = self.d.unconsumed_tail
            elif self.full:
                data = b""
            elif self.fed < len(self.input):
                data = memoryview(self.input)[self.fed:self.fed + self.FEED]
                self.fed += len(data)
            else:
                self.input, self.fed = self.fh.read(1024 * 1024), 0
                self.reading.bytes_read += len(self.input)
                if not self.input:
                    if self.in_member:
                        self.error = ("truncated gzip: the stream ends after %d decompressed bytes"
                                      % (self.reading.bytes_decompressed + got))
                    break
                continue
            room = min(self.PIECE, size - got)
            try:
                piece = self.d.decompress(data, room)
            except zlib.error as exc:
                self.error = "corrupt gzip after %d decompressed bytes: %s" % (self.reading.bytes_decompressed + got, exc)
                break
            self.in_member = True
            self.full = len(piece) == room
            if piece:
                if out is None:
                    into[got:got + len(piece)] = piece
                else:
                    out.append(piece)
                got += len(piece)
            if self.d.eof:
                rest = self.d.unused_data + self.input[self.fed:]
                self.d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self.in_member = self.full = False
                # another member may follow; zero padding after the last one is allowed
                self.input, self.fed = (rest if rest.strip(b"\0") else b""), 0
        self.reading.bytes_decompressed += got
        return got if out is None else b"".join(out)

    def peek(self, size):
        self.peeked = self._more(size)
        return self.peeked

    def readinto(self, view):
        want = len(view)
        n = 0
        if self.peeked:
            n = min(want, len(self.peeked))
            view[:n] = self.peeked[:n]
            self.peeked = self.peeked[n:]
        if n < want:
            n += self._more(want - n, view[n:])
        return n


def lower_priority():
    """nice 10 and the idle I/O class: the host being scanned is usually already in trouble."""
    try:
        os.nice(10)
    except OSError:
        pass
    try:
        import ctypes
        import platform

        numbers = {"x86_64": 251, "aarch64": 30, "arm64": 30, "i686": 289, "i386": 289, "ppc64le": 273, "s390x": 282}
        nr = numbers.get(platform.machine())
        if nr is not None:
            libc = ctypes.CDLL(None, use_errno=True)
            # ioprio_set(IOPRIO_WHO_PROCESS, self, IOPRIO_CLASS_IDLE << 13)
            libc.syscall(nr, 1, 0, 3 << 13)
    except Exception:  # best effort: priority is a courtesy, never a reason to fail
        pass
