# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""WordPress evidence without executing PHP: wp-config.php, serialized options, BOMs (stdlib only)."""

from __future__ import absolute_import, division, print_function

import re

__metaclass__ = type

_STR = r"""(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")"""
_DEFINE = re.compile(r"""\bdefine\s*\(\s*""" + _STR + r"""\s*,\s*(?P<value>""" + _STR + r"""|[^;]*?)\s*\)\s*;""", re.S)
_PREFIX = re.compile(r"""\$table_prefix\s*=\s*""" + _STR + r"""\s*;""")

CONFIG_KEYS = {
    "DB_NAME": "db_name", "DB_USER": "db_user", "DB_PASSWORD": "db_password", "DB_HOST": "db_host",
    "DB_CHARSET": "db_charset", "WP_DEBUG": "wp_debug", "WP_DEBUG_LOG": "wp_debug_log",
    "WP_DEBUG_DISPLAY": "wp_debug_display", "WP_CONTENT_DIR": "wp_content_dir", "WP_PLUGIN_DIR": "wp_plugin_dir",
    "WP_HOME": "wp_home", "WP_SITEURL": "wp_siteurl", "MULTISITE": "multisite", "WP_MEMORY_LIMIT": "wp_memory_limit",
    "DISABLE_WP_CRON": "disable_wp_cron",
}


def _php_literal(raw):
    """A PHP literal as Python: strings, true/false/null, numbers; anything else (getenv(), expressions)
    comes back as ``{"expression": text}`` because it is only known when PHP runs."""
    raw = raw.strip()
    m = re.match("^" + _STR + "$", raw, re.S)
    if m:
        text = m.group(1) if m.group(1) is not None else m.group(2)
        return re.sub(r"\\(['\"\\])", r"\1", text)
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    if re.match(r"^-?\d+$", raw):
        return int(raw)
    return {"expression": raw[:200]}


def strip_php_comments(text):
    """PHP source without its comments (``//``, ``#``, ``/* */``), strings left intact."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        else:
            j = i
            while j < n and text[j] not in "'\"/#":
                j += 1
            if j == i:  # a lone slash
                j = i + 1
            out.append(text[i:j])
            i = j
    return "".join(out)


def parse_wp_config(text):
    """The settings of a wp-config.php, read without running it.

    Returns ``{db_name, db_user, db_password, db_host, table_prefix, wp_debug, ...}`` for what is
    defined. Comments are ignored; of two definitions the first is kept, as PHP keeps it.
    """
    clean = strip_php_comments(text)
    out = {}
    for m in _DEFINE.finditer(clean):
        name = m.group(1) if m.group(1) is not None else m.group(2)
        key = CONFIG_KEYS.get(name)
        if key and key not in out:
            out[key] = _php_literal(m.group("value"))
    m = _PREFIX.search(clean)
    if m:
        out["table_prefix"] = m.group(1) if m.group(1) is not None else m.group(2)
    return out


def split_db_host(db_host):
    """DB_HOST forms: ``localhost``, ``127.0.0.1:3307``, ``localhost:/run/mysqld/mysqld.sock``, ``[::1]:3306``."""
    if not isinstance(db_host, str) or not db_host:
        return {"host": "localhost", "port": None, "socket": None}
    host, port, socket = db_host, None, None
    m = re.match(r"^\[([^\]]+)\](?::(\d+))?$", db_host)
    if m:
        return {"host": m.group(1), "port": int(m.group(2)) if m.group(2) else None, "socket": None}
    if ":" in db_host and db_host.count(":") == 1:
        host, rest = db_host.split(":", 1)
        if rest.startswith("/"):
            socket = rest
        elif rest.isdigit():
            port = int(rest)
    return {"host": host or "localhost", "port": port, "socket": socket}


def php_unserialize_strings(data):
    """The string values of a PHP-serialized array (active_plugins, active_sitewide_plugins keys).

    Lengths in PHP serialization are bytes, so this walks the bytes; anything unexpected ends the
    walk and what was read so far is returned with ``ok`` false.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    values = []
    i = 0
    ok = True
    try:
        if not raw.startswith(b"a:"):
            return {"values": [], "ok": False}
        i = raw.index(b"{") + 1
        while i < len(raw) and raw[i:i + 1] != b"}":
            tag = raw[i:i + 1]
            if tag == b"s":
                colon = raw.index(b":", i + 2)
                length = int(raw[i + 2:colon])
                start = colon + 2
                if raw[start + length:start + length + 2] != b'";':
                    ok = False
                    break
                values.append(raw[start:start + length].decode("utf-8", "replace"))
                i = start + length + 2  # closing quote and ;
            elif tag in (b"i", b"b", b"d"):
                i = raw.index(b";", i) + 1
            elif tag == b"N":
                i += 2
            else:
                ok = False
                break
    except (ValueError, IndexError):
        ok = False
    return {"values": values, "ok": ok}


def plugin_slug(plugin_file):
    """``akismet/akismet.php`` -> ``akismet``; ``hello.php`` -> ``hello``."""
    return plugin_file.split("/", 1)[0] if "/" in plugin_file else re.sub(r"\.php$", "", plugin_file)


def php_file_head_issue(head):
    """What breaks headers at the start of a PHP file: ``bom``, ``whitespace`` before ``<?php``, or None."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "bom"
    stripped = head.lstrip(b" \t\r\n")
    if stripped is not head and len(stripped) != len(head) and stripped.startswith(b"<?"):
        return "whitespace"
    return None
