# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""Minimal edits of PHP-FPM, nginx and Apache configuration text, as pure functions (no I/O).

The emergency ladder changes a few settings in files an operator wrote by hand. Every function
here takes the file's text and returns the new text plus a list of the changes it made; every
byte it was not asked to change stays as it was: comments, indentation, blank lines, CRLF or LF
line endings, a missing final newline, a leading byte order mark (U+FEFF, skipped while reading).
Running a function twice changes nothing the second time.

- :func:`set_fpm_pool` sets directives in one ``[pool]`` section of an FPM ini file, read with
  ``wp502_ini.scan``, the lexer ``wp502_fpm`` reads pools with.
- :func:`set_nginx_directives` sets directives next to ``fastcgi_pass`` in every nginx block
  that proxies to FPM, read by ``wp502_nginxconf`` (nginx's own tokenizer: quotes, ``#`` comments,
  ``\\`` escapes, ``${var}``), the parser ``wp502_frontend`` reads ``nginx -T`` with.
- :func:`set_apache_directives` sets directives at the top level of every ``<VirtualHost>``
  (or of the file when it has none), reading ``\\`` continuation lines as one line with
  ``wp502_apacheconf``, the reader ``wp502_frontend.parse_apache`` uses.
- :func:`strip_bom`, :func:`unified_diff` and :func:`ansible_diff` are the small helpers around
  reading a file and reporting a change (``--diff``).

Text that a function cannot read with certainty (unbalanced braces or sections, an unterminated
quote) raises ``ValueError`` instead of being edited at a guess.
"""

from __future__ import absolute_import, division, print_function

import difflib
import re

from ansible.module_utils.wp502_apacheconf import logical_lines as apache_logical_lines
from ansible.module_utils.wp502_apacheconf import split_lines as _split_lines
from ansible.module_utils.wp502_ini import same_key as same_ini_key
from ansible.module_utils.wp502_ini import scan as scan_ini
from ansible.module_utils.wp502_nginxconf import parse as parse_nginx_text
from ansible.module_utils.wp502_nginxconf import word_value as nginx_word

__metaclass__ = type

BOM = b"\xef\xbb\xbf"
FPM_MARKER = "; wp502 emergency run"


# --- shared helpers ---------------------------------------------------------------------------

def _dominant_eol(text):
    """CRLF when at least half of the file's lines end with it, LF otherwise (and for one-line files)."""
    crlf = text.count("\r\n")
    return "\r\n" if crlf and crlf * 2 >= text.count("\n") else "\n"


def _leading_space(text):
    return text[:len(text) - len(text.lstrip(" \t"))]


def _items(settings):
    """Settings as ordered (key, value) pairs, from a dict or a list of pairs."""
    if isinstance(settings, dict):
        return list(settings.items())
    return [tuple(pair) for pair in settings]


def _render(key, value, what):
    """str(value), stripped; refuse what would break the file (no value, a line break)."""
    if value is None:
        raise ValueError("%s: no value given for %s" % (what, key))
    text = str(value).strip()
    if not text:
        raise ValueError("%s: empty value for %s" % (what, key))
    if "\n" in text or "\r" in text:
        raise ValueError("%s: the value for %s contains a line break" % (what, key))
    return text


def _split_bom(text):
    """(leading U+FEFF marks, the rest): a decoded file saved with a BOM is edited after it, BOM kept."""
    rest = text.lstrip(u"\ufeff")
    return text[:len(text) - len(rest)], rest


def _apply(text, edits):
    """Apply (start, end, replacement) edits on the original text's offsets; they must not overlap."""
    out = []
    pos = len(text)
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        if end > pos:
            raise ValueError("overlapping edits at offset %d" % start)
        out.append(text[end:pos])
        out.append(replacement)
        pos = start
    out.append(text[:pos])
    return "".join(reversed(out))


# --- PHP-FPM ----------------------------------------------------------------------------------

_FPM_KEY = re.compile(r"^[A-Za-z0-9_.\-]+(?:\[[^\]\s;=\"']+\])?$")
# Values PHP's ini scanner reads literally without quotes; anything else is written quoted.
_FPM_PLAIN = re.compile(r"^[A-Za-z0-9_./:,+$%@\-]+(?:[ \t]+[A-Za-z0-9_./:,+$%@\-]+)*$")


def _fpm_render(key, value):
    if not _FPM_KEY.match(str(key)):
        raise ValueError("php-fpm: invalid directive name %r" % (key,))
    text = _render(key, value, "php-fpm")
    if "\"" in text:
        raise ValueError("php-fpm: the value for %s contains a double quote" % key)
    return text


def _fpm_write(value, written):
    """The new value in the old one's quoting: quoted stays quoted; unsafe characters get quoted."""
    old = written.strip()
    if len(old) >= 2 and old[0] == old[-1] and old[0] in "\"'" and old[0] not in value:
        return old[0] + value + old[0]
    if _FPM_PLAIN.match(value):
        return value
    return "\"" + value + "\""


def _fpm_append_after(records, header, end):
    """Index of the record new directives go after: the section's last non-blank line.

    Comment lines directly above the next section's header (no blank line between) describe
    that section, so they are not counted as this one's.
    """
    i = end - 1
    if end < len(records):
        while i > header and records[i]["kind"] == "comment":
            i -= 1
    while i > header and records[i]["kind"] == "blank":
        i -= 1
    return i


def set_fpm_pool(text, pool, settings):
    """Set directives in the ``[pool]`` section of a PHP-FPM pool file.

    The file is read by ``wp502_ini.scan``, the lexer the evidence reads pools with, so both agree on
    every section, name and value (``[www] ; main site`` is the pool www; ``listen = /x.sock ; note``
    is ``/x.sock``). ``settings`` maps directive -> value (rendered with ``str``), e.g.
    ``{"pm.max_children": 20}``. Section and directive names are matched case-insensitively, as FPM
    does (strcasecmp). A directive set in the section (all ``[pool]`` sections, as FPM merges repeated
    ones) has the value of its last occurrence replaced, keeping the line's spacing, quoting and ``;``
    comment. A directive not set there (commented-out lines do not count) is appended after the pool's
    last ``[pool]`` section's last non-blank line, the appended block preceded by one
    ``; wp502 emergency run`` comment line. Directives whose value is already equal are left alone.

    Returns ``(new_text, changes)``, changes being ``[{"key", "before", "after"}]`` in the order of
    ``settings`` (``before`` is None for an appended directive, else the value as FPM reads it).
    Raises ``ValueError`` when the file has no ``[pool]`` section or a line FPM would refuse
    (``# text``, a line without ``=``, an unterminated quote): such a file is not edited at a guess.
    """
    bom, text = _split_bom(text)
    items = [(str(key), _fpm_render(key, value)) for key, value in _items(settings)]
    records = scan_ini(text)
    for record in records:
        if record["kind"] == "error":
            raise ValueError("php-fpm: line %d: %s" % (record["line"], record["error"]))
    headers = [(i, r["name"]) for i, r in enumerate(records) if r["kind"] == "section"]
    sections = []
    for n, (i, name) in enumerate(headers):
        if same_ini_key(name, pool):
            sections.append((i, headers[n + 1][0] if n + 1 < len(headers) else len(records)))
    if not sections:
        raise ValueError("php-fpm: no [%s] section in the pool configuration" % pool)

    last = []
    indent = ""
    for header, end in sections:
        for i in range(header + 1, end):
            if records[i]["kind"] == "directive":
                last.append(records[i])
                indent = records[i]["indent"]

    edits = []
    changes = []
    appended = []
    for key, value in items:
        record = next((r for r in reversed(last) if same_ini_key(r["key"], key)), None)
        if record is None:
            appended.append("%s%s = %s" % (indent, key, _fpm_write(value, "")))
            changes.append({"key": key, "before": None, "after": value})
            continue
        before = record["value"]
        if value in (before, record["written"]):
            continue
        new = _fpm_write(value, record["written"])
        if not record["written"] and text[record["value_start"] - 1:record["value_start"]] not in (" ", "\t"):
            new = " " + new
        edits.append((record["value_start"], record["value_end"], new))
        changes.append({"key": key, "before": before, "after": value})

    if appended:
        header, end = sections[-1]
        at = records[_fpm_append_after(records, header, end)]
        eol = _dominant_eol(text)
        block = [indent + FPM_MARKER, *appended]
        if at["eol"]:
            pos = at["end"] + len(at["eol"])
            edits.append((pos, pos, "".join(line + eol for line in block)))
        else:
            # The section ends the file without a final newline: keep it that way.
            edits.append((at["end"], at["end"], "".join(eol + line for line in block)))
    return bom + _apply(text, edits), changes


# --- nginx ------------------------------------------------------------------------------------

_NGINX_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NGINX_UNSAFE = set(";{}#\"'\\")


def _nginx_blocks(block):
    """The top level and every block, in file order."""
    yield block
    for stmt in block:
        if stmt["block"] is not None:
            yield from _nginx_blocks(stmt["block"])


def _nginx_render(key, value):
    if not _NGINX_NAME.match(str(key)):
        raise ValueError("nginx: invalid directive name %r" % (key,))
    text = _render(key, value, "nginx")
    bad = sorted(set(text) & _NGINX_UNSAFE)
    if bad:
        raise ValueError("nginx: the value for %s contains %s" % (key, " ".join(bad)))
    return " ".join(text.split())


def _nginx_insert(text, anchor, statements):
    """Put statements after the anchor's line, indented like it (or after its ``;`` when the line goes on)."""
    term_end = anchor["term"][2]
    line_end = text.find("\n", term_end)
    if line_end < 0:
        line_end = len(text)
    rest = text[term_end:line_end].strip()
    if rest and not rest.startswith("#"):
        # Something follows on the same line (``location / { fastcgi_pass x; }``): stay on it.
        return (term_end, term_end, "".join(" " + s for s in statements))
    name_start = anchor["words"][0][1]
    lead = text[text.rfind("\n", 0, name_start) + 1:name_start]
    indent = lead if not lead.strip() else _leading_space(lead)
    if line_end < len(text):
        eol = "\r\n" if text[line_end - 1:line_end] == "\r" else "\n"
        pos = line_end - len(eol) + 1
    else:
        eol = _dominant_eol(text)
        pos = line_end
    return (pos, pos, "".join(eol + indent + s for s in statements))


def set_nginx_directives(text, settings, match="fastcgi_pass"):
    """Set directives in every nginx block that directly contains a ``match`` directive.

    ``settings`` maps directive -> value, e.g. ``{"fastcgi_read_timeout": "120s"}`` or
    ``{"fastcgi_buffers": "16 32k"}`` (a value of several words is several arguments). In each block
    (``location``, ``server``, ``if``, ... or the top level of an included snippet) that directly
    contains ``match``: a directive set directly in that block (not in a nested block, not in a
    ``#`` comment) has its arguments replaced; one not set there is inserted as
    ``<indent>name value;`` on the line after the ``match`` line, indented like it (on the same
    line, after its ``;``, when more follows on that line). Values already equal are left alone.

    Returns ``(new_text, changes)``, changes being ``[{"block_line", "key", "before", "after"}]``,
    ``block_line`` the 1-based line of the block's ``match`` directive, ``before`` the arguments as
    written (None when inserted), sorted by ``block_line`` then ``settings`` order. Text without
    ``match`` comes back unchanged with no changes. Raises ``ValueError`` for text nginx could not
    parse (unbalanced braces, an unterminated quote, a statement without ``;``).
    """
    bom, text = _split_bom(text)
    items = [(str(key), _nginx_render(key, value)) for key, value in _items(settings)]
    root = parse_nginx_text(text)
    edits = []
    changes = []
    for block in _nginx_blocks(root):
        anchors = [stmt for stmt in block if stmt["name"] == match]
        if not anchors:
            continue
        anchor = anchors[0]
        inserts = []
        for key, value in items:
            found = [stmt for stmt in block if stmt["name"] == key]
            if not found:
                inserts.append("%s %s;" % (key, value))
                changes.append({"block_line": anchor["line"], "key": key, "before": None, "after": value})
                continue
            stmt = found[-1]
            args = stmt["words"][1:]
            written = [text[a[1]:a[2]] for a in args]
            if [nginx_word(w) for w in written] == value.split():
                continue
            if args:
                edits.append((args[0][1], args[-1][2], value))
            else:
                edits.append((stmt["words"][0][2], stmt["words"][0][2], " " + value))
            changes.append({"block_line": anchor["line"], "key": key, "before": " ".join(written), "after": value})
        if inserts:
            edits.append(_nginx_insert(text, anchor, inserts))
    changes.sort(key=lambda change: change["block_line"])
    return bom + _apply(text, edits), changes


# --- Apache httpd -----------------------------------------------------------------------------

_AP_OPEN = re.compile(r"^\s*<([A-Za-z][^\s>]*)(.*)$")
_AP_CLOSE = re.compile(r"^\s*</\s*([A-Za-z][^\s>]*)\s*>")
_AP_DIRECTIVE = re.compile(r"^([ \t]*)([A-Za-z_][\w-]*)(?:([ \t]+)(.*?))?[ \t]*$")
_AP_NAME = re.compile(r"^[A-Za-z_][\w-]*$")


def _apache_render(key, value):
    if not _AP_NAME.match(str(key)):
        raise ValueError("apache: invalid directive name %r" % (key,))
    return " ".join(_render(key, value, "apache").split())


def _apache_scan(text):
    """Virtual hosts (with their top-level directives) and the file's top-level directives."""
    vhosts = []
    top = {}
    stack = []
    for ll in apache_logical_lines(text):
        content = ll["text"]
        stripped = content.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _AP_CLOSE.match(content)
        if m:
            name = m.group(1).lower()
            if not stack or stack[-1][0] != name:
                raise ValueError("apache: unexpected </%s> on line %d" % (m.group(1), ll["line"]))
            stack.pop()
            continue
        parent = stack[-1][1] if stack else None
        if parent is not None and parent["child_indent"] is None:
            parent["child_indent"] = _leading_space(content)
        m = _AP_OPEN.match(content)
        if m:
            vhost = None
            if m.group(1).lower() == "virtualhost":
                vhost = {"line": ll["line"], "end": ll["end"], "eol": ll["eol"], "indent": _leading_space(content),
                         "child_indent": None, "address": " ".join(m.group(2).strip().rstrip(">").split()), "directives": {}}
                vhosts.append(vhost)
            stack.append((m.group(1).lower(), vhost))
            continue
        m = _AP_DIRECTIVE.match(content)
        if not m:
            continue
        if not stack:
            top.setdefault(m.group(2).lower(), []).append((ll, m))
        elif parent is not None:
            parent["directives"].setdefault(m.group(2).lower(), []).append((ll, m))
    if stack:
        raise ValueError("apache: unexpected end of file, <%s> is not closed" % stack[-1][0])
    return vhosts, top


def _apache_replace(ll, m, value):
    """(edit or None, before): the directive's arguments replaced, continuation lines included."""
    before = " ".join((m.group(4) or "").split())
    if before == value:
        return None, before
    offsets = ll["offsets"]
    if m.group(4):
        return (offsets[m.start(4)], offsets[m.end(4) - 1] + 1, value), before
    at = offsets[m.end(2) - 1] + 1
    return (at, at, " " + value), before


def set_apache_directives(text, settings):
    """Set directives at the top level of every ``<VirtualHost>`` of an Apache httpd config.

    ``settings`` maps directive -> value, e.g. ``{"ProxyTimeout": 120}``; names are matched
    case-insensitively. In each ``<VirtualHost ...>`` a directive set directly in it (not in a
    nested ``<Directory>``, ``<FilesMatch>``, ``<IfModule>``, ...; ``#`` comment lines never count)
    has the arguments of its last occurrence replaced; one not set there is inserted right after
    the ``<VirtualHost ...>`` line, indented like the vhost's first line (its indentation plus four
    spaces when it is empty). A file without virtual hosts gets the directive replaced at its top
    level, or appended at its end (ending with a newline). ``\\`` continuation lines are one line; a
    replaced value that spanned several lines is written on one. Values already equal are left alone.

    Returns ``(new_text, changes)``, changes being ``[{"line", "vhost", "key", "before", "after"}]``:
    ``line`` is the 1-based line of the replaced directive, of the ``<VirtualHost>`` a directive
    was inserted after, or of an appended directive in the new text; ``vhost`` the vhost's address
    (``"*:80"``) or None. Raises ``ValueError`` for unbalanced ``<Section>`` tags.
    """
    bom, text = _split_bom(text)
    items = [(str(key), _apache_render(key, value)) for key, value in _items(settings)]
    vhosts, top = _apache_scan(text)
    edits = []
    changes = []
    appended = []
    for key, value in items:
        if not vhosts:
            found = top.get(key.lower())
            if not found:
                appended.append((key, value))
                changes.append({"line": len(_split_lines(text)) + len(appended), "vhost": None, "key": key, "before": None,
                                "after": value})
                continue
            ll, m = found[-1]
            edit, before = _apache_replace(ll, m, value)
            if edit:
                edits.append(edit)
                changes.append({"line": ll["line"], "vhost": None, "key": key, "before": before, "after": value})
            continue
        for vhost in vhosts:
            found = vhost["directives"].get(key.lower())
            if found:
                ll, m = found[-1]
                edit, before = _apache_replace(ll, m, value)
                if edit:
                    edits.append(edit)
                    changes.append({"line": ll["line"], "vhost": vhost["address"], "key": key, "before": before,
                                    "after": value})
                continue
            vhost.setdefault("inserts", []).append("%s %s" % (key, value))
            changes.append({"line": vhost["line"], "vhost": vhost["address"], "key": key, "before": None, "after": value})

    for vhost in vhosts:
        if vhost.get("inserts"):
            indent = vhost["child_indent"]
            if indent is None:
                indent = vhost["indent"] + "    "
            eol = vhost["eol"] or _dominant_eol(text)
            edits.append((vhost["end"], vhost["end"], "".join(eol + indent + line for line in vhost["inserts"])))

    if appended:
        eol = _dominant_eol(text)
        prefix = eol if text and not text.endswith("\n") else ""
        edits.append((len(text), len(text), prefix + "".join("%s %s%s" % (key, value, eol) for key, value in appended)))
    return bom + _apply(text, edits), changes


# --- reading and reporting --------------------------------------------------------------------

def strip_bom(data):
    """``data`` without its leading UTF-8 byte order marks (a file saved twice can carry two).

    Bytes in, bytes out; a str loses its leading U+FEFF characters. Unchanged when there is none.
    """
    bom = BOM if isinstance(data, (bytes, bytearray)) else u"\ufeff"
    n = 0
    while data.startswith(bom, n):
        n += len(bom)
    return data[n:] if n else data


def unified_diff(before, after, path):
    """A unified diff (``--- a/path`` / ``+++ b/path``) of two texts; empty when they are equal.

    A leading ``/`` of path is dropped (``/etc/x`` -> ``a/etc/x``), as git writes it; a last line
    without a newline is marked ``\\ No newline at end of file``.
    """
    name = path.lstrip("/")
    out = []
    for line in difflib.unified_diff(_split_lines(before), _split_lines(after), "a/" + name, "b/" + name):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def ansible_diff(before, after, path):
    """The ``diff`` entry of a module result, which Ansible prints with ``--diff``."""
    return {"before": before, "after": after, "before_header": path, "after_header": path}
