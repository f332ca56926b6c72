# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""Front-end configuration: nginx (from ``nginx -T``) and Apache vhosts, as pure parsers.

What wp502 needs from them: each site's names, document root, logs, the address PHP is passed to
(``fastcgi_pass`` / ``SetHandler proxy:...`` / ``ProxyPassMatch ... fcgi://``) and the timeouts
and buffers that decide between a 502 and a 504.

nginx files are read by ``wp502_nginxconf``, the parser ``wp502_edit`` changes them with, so the
evidence and the front-end rung agree about every block and value (``${document_root}`` is a word,
``if (...) { }`` a block, ``\\.php$`` kept as nginx keeps it).
"""

from __future__ import absolute_import, division, print_function

import re

from ansible.module_utils.wp502_apacheconf import is_comment as apache_comment
from ansible.module_utils.wp502_apacheconf import logical_lines as apache_logical_lines
from ansible.module_utils.wp502_nginxconf import tree as nginx_tree

__metaclass__ = type

_NGINX_FILE = re.compile(r"^# configuration file (.+):\s*$")
_TIME = re.compile(r"^(\d+)(ms|s|m|h|d)?$")


def nginx_time(value, default=None):
    """nginx time values (``60``, ``60s``, ``5m``, ``500ms``) -> seconds (float)."""
    if value is None:
        return default
    m = _TIME.match(str(value).strip())
    if not m:
        return default
    return int(m.group(1)) * {None: 1, "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def split_nginx_dump(dump):
    """``nginx -T`` output -> [(file, text)]; its first file is the main config."""
    files = []
    current, lines = None, []
    for line in dump.splitlines():
        m = _NGINX_FILE.match(line)
        if m:
            if current is not None:
                files.append((current, "\n".join(lines)))
            current, lines = m.group(1), []
        elif current is not None:
            lines.append(line)
    if current is not None:
        files.append((current, "\n".join(lines)))
    return files


INHERITED = ("error_log", "access_log", "fastcgi_read_timeout", "fastcgi_connect_timeout", "fastcgi_send_timeout",
             "fastcgi_buffer_size", "fastcgi_buffers", "client_max_body_size", "root")


def parse_nginx(dump):
    """Servers of an ``nginx -T`` dump, with http-level settings inherited where a server has none.

    Each server: ``{file, server_names, listen, default_server, redirect, root, error_log, access_log,
    fastcgi_pass: [...], fastcgi_read_timeout (s), fastcgi_buffer_size, php_locations}``; ``default_server``
    when one of its listens says ``default_server`` (or the old ``default``), ``redirect`` True when the block
    answers everything with a server-level ``return 301/302/307/308`` (the :80 half of an https site), ``"http"``
    when it sends only plain HTTP to https (``if ($scheme = http) { return 301 https://...; }``). ``include`` directives are
    already expanded by ``nginx -T``, file by file; the main file's ``include`` lines are followed
    by position (an included file's directives join the block that included it).
    """
    files = dict(split_nginx_dump(dump))
    if not files:
        return {"servers": [], "http": {}, "upstreams": {}, "errors": ["no '# configuration file' header: not nginx -T output"]}
    main = next(iter(split_nginx_dump(dump)))[0]
    seen = set()
    errors = []
    parsed = {}

    def read(fname):
        """One file's statements; a file nginx could not read is reported and counts as empty."""
        if fname not in parsed:
            try:
                parsed[fname] = nginx_tree(files[fname])
            except ValueError as exc:
                errors.append("%s: %s" % (fname, exc))
                parsed[fname] = []
        return parsed[fname]

    where = {}  # id(a server block's statements) -> the file it is written in

    def expand(items, depth=0, fname=None):
        out = []
        for name, args, children in items:
            if name == "include" and args and depth < 10:
                pattern = args[0]
                for inc in files:
                    if inc not in seen and _glob_match(pattern, inc):
                        seen.add(inc)
                        out.extend(expand(read(inc), depth + 1, inc))
                continue
            sub = expand(children, depth, fname) if children is not None else None
            if name == "server" and sub is not None:
                where[id(sub)] = fname
            out.append((name, args, sub))
        return out

    seen.add(main)
    tree = expand(read(main), fname=main)
    http = next((c for n, _args, c in tree if n == "http" and c is not None), [])
    http_settings = dict((n, a) for n, a, c in tree if c is None and n == "error_log")  # main context
    http_settings.update((n, a) for n, a, c in http if c is None and n in INHERITED)
    upstreams = {}
    for name, args, children in http:
        if name == "upstream" and args and children is not None:
            upstreams[args[0]] = [a[0] for n, a, c in children if n == "server" and a]
    servers = []
    for name, _args, children in http:
        if name != "server" or children is None:
            continue
        servers.append(_nginx_server(children, http_settings, upstreams))
        servers[-1]["file"] = where.get(id(children))
    return {"servers": servers, "http": dict((k, " ".join(v)) for k, v in http_settings.items()),
            "upstreams": upstreams, "errors": errors}


def nginx_fastcgi_files(dump, match="fastcgi_pass"):
    """The files of an ``nginx -T`` dump in which some block holds ``match``: the files the front-end rung
    edits (``wp502_edit.set_nginx_directives`` changes exactly those blocks), read by the same parser."""
    found = []

    def holds(items):
        return any(name == match or (children is not None and holds(children)) for name, _args, children in items)

    for fname, text in split_nginx_dump(dump):
        try:
            if holds(nginx_tree(text)):
                found.append(fname)
        except ValueError:
            continue  # parse_nginx reports it
    return found


def _glob_match(pattern, name):
    rx = "^" + re.escape(pattern).replace(r"\*", "[^/]*").replace(r"\?", "[^/]") + "$"
    if re.match(rx, name):
        return True
    # relative includes are relative to the nginx prefix (usually /etc/nginx)
    return not pattern.startswith("/") and re.match("^.*/" + rx[1:], name) is not None


_REDIRECTS = (["301"], ["302"], ["303"], ["307"], ["308"])
# The tests of an ``if`` that picks out plain-HTTP requests in a server listening on both 80 and 443.
_PLAIN_TEST = ("($scheme=http)", "($scheme=\"http\")", "($scheme!=https)", "($scheme!=\"https\")", "($https=\"\")",
               "($https!=on)", "($https!=\"on\")")


def _nginx_server(children, http_settings, upstreams):
    settings = dict((k, v) for k, v in http_settings.items())
    server = {"server_names": [], "listen": [], "fastcgi_pass": [], "php_locations": [], "default_server": False,
              "redirect": False}
    # nginx inherits a server's settings into its locations wherever they are written in the block.
    for name, args, sub in children:
        if sub is not None:
            if name == "if" and " ".join(args).replace(" ", "") in _PLAIN_TEST and any(
                    n == "return" and a[:1] in _REDIRECTS and len(a) > 1 and a[1].startswith("https://") for n, a, _c in sub):
                server["redirect"] = server["redirect"] or "http"  # if ($scheme = http) { return 301 https://... }
            continue
        if name == "server_name":
            server["server_names"].extend(args)
        elif name == "listen" and args:
            server["listen"].append(" ".join(args))  # "443 ssl http2", "[::]:80 default_server"
            server["default_server"] = server["default_server"] or any(a in ("default_server", "default") for a in args[1:])
        elif name == "return" and args[:1] in _REDIRECTS:
            server["redirect"] = True
        elif name in INHERITED:
            settings[name] = args
        elif name == "fastcgi_pass" and args:
            server["fastcgi_pass"].append(args[0])
    for name, args, sub in children:
        if sub is not None and name == "location":
            _nginx_location(server, " ".join(args), sub, settings)
    resolved = []
    for target in server["fastcgi_pass"]:
        resolved.extend(upstreams.get(target, [target]))
    server["fastcgi_pass"] = sorted(set(resolved))
    for key in INHERITED:
        value = settings.get(key)
        server[key] = value[0] if value else None
    server["fastcgi_read_timeout"] = nginx_time(server["fastcgi_read_timeout"], 60.0)
    php = [loc for loc in server["php_locations"] if "php" in loc["match"]] or server["php_locations"]
    if php:
        server["fastcgi_read_timeout"] = max(loc["fastcgi_read_timeout"] for loc in php)
    return server


def _nginx_location(server, match, block, inherited):
    """A location, and the blocks nested in it (``if``, inner locations, ``limit_except``), each one that
    passes to FastCGI itself: the blocks ``wp502_edit.set_nginx_directives`` edits."""
    here = dict(inherited)
    here.update((n, a) for n, a, c in block if c is None and n in INHERITED)
    passes = [a for n, a, c in block if c is None and n == "fastcgi_pass" and a]
    if passes:
        server["fastcgi_pass"].append(passes[0][0])
        server["php_locations"].append({
            "match": match,
            "fastcgi_pass": passes[0][0],
            "fastcgi_read_timeout": nginx_time((here.get("fastcgi_read_timeout") or ["60s"])[0]),
            "fastcgi_buffer_size": " ".join(here.get("fastcgi_buffer_size") or []),
        })
    for name, args, sub in block:
        if sub is not None and name in ("location", "if", "limit_except"):
            inner = " ".join(args) if name == "location" else "%s %s %s" % (match, name, " ".join(args))
            _nginx_location(server, inner, sub, here)


_AP_VHOST_OPEN = re.compile(r"^\s*<VirtualHost\s+([^>]+)>", re.I)
_AP_VHOST_CLOSE = re.compile(r"^\s*</VirtualHost>", re.I)
_AP_DIRECTIVE = re.compile(r"^\s*(\w+)\s+(.*?)\s*$")
_AP_HANDLER = re.compile(r"""proxy:(unix:[^|"\s]+|fcgi://[^"\s]+)""", re.I)  # SetHandler "proxy:unix:...|fcgi://..."
_AP_PROXY_TARGET = re.compile(r"""(unix:[^|"\s]+(?=\|)|fcgi://[^"\s]+)""", re.I)  # ProxyPass(Match) targets


def parse_apache(files, include=None):
    """Apache vhosts from config files ``[(path, text)]``: names, root, logs, PHP backend, timeouts.

    Each vhost: ``{file, address, server_names (ServerName first, then every ServerAlias, wildcards
    kept), document_root, error_log, access_log, php_backends, ssl, redirect, ...}``. ``include(pattern)
    -> [(path, text)]``, when given, resolves ``Include``/``IncludeOptional``: a file included inside a
    ``<VirtualHost>`` adds to that vhost; one included at the top level is read where it is included
    (httpd's load order, which decides each address's default vhost) and not again later in ``files``.
    """
    globals_ = {"Timeout": "60", "ProxyTimeout": None, "ErrorLog": None}
    vhosts = []
    seen = set()
    state = {"current": None}

    def lines_of(path, text, depth):
        current = state["current"]
        for logical in apache_logical_lines(text):
            line = logical["text"]  # "\\" continuation lines joined, as httpd reads them
            if apache_comment(line):
                continue
            m = _AP_VHOST_OPEN.match(line)
            if m:
                current = state["current"] = {
                    "file": path, "address": m.group(1).strip(), "server_names": [], "document_root": None,
                    "error_log": None, "access_log": None, "php_backends": [], "proxy_timeout": None, "timeout": None,
                    "ssl": False, "redirect": False}
                continue
            if _AP_VHOST_CLOSE.match(line):
                if current is not None:
                    vhosts.append(current)
                current = state["current"] = None
                continue
            m = _AP_DIRECTIVE.match(line)
            if not m:
                continue
            name, value = m.group(1), m.group(2).strip().strip('"')
            if name.lower() in ("include", "includeoptional") and include is not None and depth < 10:
                for inc_path, inc_text in include(value):
                    if inc_path in seen:
                        continue
                    if current is None:
                        seen.add(inc_path)  # a vhost snippet may be included by many vhosts
                    lines_of(inc_path, inc_text, depth + 1)
                    current = state["current"]
                continue
            directive(current, name, value, m.group(2))
        return current

    def directive(current, name, value, raw):
        backends = (_AP_PROXY_TARGET if name in ("ProxyPassMatch", "ProxyPass") else _AP_HANDLER).findall(raw)
        if current is None:
            if name in globals_:
                globals_[name] = value
            return
        if name in ("ServerName", "ServerAlias"):
            current["server_names"].extend(value.split())
        elif name == "SSLEngine":
            current["ssl"] = value.lower() == "on"
        elif _redirects_everything(name, value):
            current["redirect"] = True
        else:
            _vhost_directive(current, name, value, backends)

    for path, text in files:
        if path in seen:
            continue
        seen.add(path)
        state["current"] = None
        lines_of(path, text, 0)
    for vh in vhosts:
        vh["php_backends"] = sorted(set(vh["php_backends"]))
        timeout = vh["proxy_timeout"] or globals_["ProxyTimeout"] or vh["timeout"] or globals_["Timeout"]
        try:
            vh["effective_proxy_timeout"] = float(timeout)
        except (TypeError, ValueError):
            vh["effective_proxy_timeout"] = None
    return {"vhosts": vhosts, "global": globals_}


_AP_CATCH_ALL = re.compile(r"^\^?/?(?:\(\.\*\)|\.\*)?\$?$")


def _redirects_everything(name, value):
    """Whether a vhost directive sends every request elsewhere (``Redirect permanent / https://...``,
    ``RedirectMatch ^/(.*)$ https://...``, certbot's ``RewriteRule ^ https://%{SERVER_NAME}... [R=permanent]``)."""
    words = value.split()
    if name != "RewriteRule" and words and (words[0].lower() in ("permanent", "temp", "seeother", "gone") or words[0].isdigit()):
        words = words[1:]
    if len(words) < 2 or not re.match(r"^https?://", words[1].strip('"'), re.I):
        return False
    if name in ("Redirect", "RedirectPermanent", "RedirectTemp"):
        return words[0].strip('"') == "/"
    if name == "RedirectMatch":
        return bool(_AP_CATCH_ALL.match(words[0].strip('"')))
    if name == "RewriteRule":
        return bool(_AP_CATCH_ALL.match(words[0].strip('"'))) and len(words) > 2 and \
            re.search(r"[\[,]R(?:=\w+)?[\],]", words[2]) is not None
    return False


def _vhost_directive(current, name, value, backends):
    """One directive inside a <VirtualHost>: root, logs, timeouts, the PHP backends."""
    if name == "DocumentRoot":
        current["document_root"] = value
    elif name == "ErrorLog":
        current["error_log"] = value
    elif name == "CustomLog":
        current["access_log"] = value.split()[0].strip('"')
    elif name == "ProxyTimeout":
        current["proxy_timeout"] = value
    elif name == "Timeout":
        current["timeout"] = value
    if name in ("SetHandler", "ProxyPassMatch", "ProxyPass") and backends:
        current["php_backends"].extend(_apache_backend(b) for b in backends)


def _apache_backend(raw):
    """``unix:/run/php/php8.2-fpm.sock`` or ``fcgi://127.0.0.1:9000/var/www/$1`` -> the address only."""
    if raw.lower().startswith("unix:"):
        return "unix:" + raw[5:]
    m = re.match(r"fcgi://([^/]+)", raw, re.I)
    return m.group(1) if m else raw


def expand_apache_vars(value, envvars):
    """``${APACHE_LOG_DIR}/error.log`` with Debian's envvars -> ``/var/log/apache2/error.log``."""
    if not value:
        return value
    return re.sub(r"\$\{(\w+)\}", lambda m: envvars.get(m.group(1), m.group(0)), value)


def parse_envvars(text):
    """Debian's /etc/apache2/envvars: ``export APACHE_LOG_DIR=/var/log/apache2$SUFFIX``."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\s*export\s+(\w+)=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip().strip('"').replace("$SUFFIX", "")
    return out
