# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""PHP-FPM's ini files, read the way php-fpm reads them: the one lexer of the evidence and the editor.

php-fpm (fpm_conf_load_ini_file) reads its files one physical line at a time and hands each line to
PHP's ini scanner (zend_ini_scanner, INI_SCANNER_NORMAL). :func:`scan` does the same and keeps
where everything is, so that a reader (``wp502_fpm``) and an editor (``wp502_edit``) see exactly the
same sections, names and values. What it follows (checked against ``php-fpm8.2 -tt``):

- ``[name]`` opens a section; a ``;`` comment may follow the ``]`` (``[www] ; main site``); any other
  text after it is an error (FPM: "value is NULL"). The name is taken as written, spaces included
  (``[ www ]`` is the pool `` www ``), quotes and ``\\`` escapes read as in values.
- ``name = value``; spaces around the name and ``=`` do not count. ``name[key]`` is an array entry
  (``php_admin_value[memory_limit]``): spaces after ``[`` do not count, those before ``]`` do.
- A value ends at the end of the line or at a ``;`` comment (``listen = /run/php.sock ; main``), its
  trailing spaces dropped. ``"..."`` is read with ``\\"``, ``\\\\`` and ``\\$`` escapes, spaces around
  it dropped (``"a"  "b"`` is ``ab``); ``'...'`` is taken as it is; ``${VAR}`` and ``$pool`` are
  kept as written (FPM replaces ``$pool`` per pool; ``${VAR}`` comes from FPM's environment). A
  value that is only ``yes``/``on``/``true`` reads ``1``, ``no``/``off``/``false``/``none``/``null``
  reads empty. ``listen = [::]:9000`` is one value.
- ``;`` starts a comment line. ``#`` does NOT (PHP 7 removed it: FPM refuses ``# text`` with
  "value is NULL" and ``# a = b`` as an unknown entry); a line with no ``=``, an ``=`` inside a
  value, or an unterminated quote are errors too. Error lines are returned with ``kind="error"`` and
  the reason; FPM refuses to start with any of them.
- A leading byte order mark is skipped (wp502 keeps it when editing); CRLF line ends are read as LF.

Standard library only; runs on targets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# PHP's LABEL_CHAR complement: what ends a directive name.
_LABEL_STOP = frozenset('=\n\r\t;&|^$~(){}!"[]\x00')
_BOOLEANS = {"true": "1", "on": "1", "yes": "1", "false": "", "off": "", "no": "", "none": "", "null": ""}
_SPACE = " \t"


def physical_lines(text):
    """``(start, body, eol)`` per line, split on LF: ``body`` without its ``\\r\\n``/``\\n``."""
    out = []
    pos = 0
    n = len(text)
    while pos < n:
        end = text.find("\n", pos)
        if end < 0:
            body, eol, nxt = text[pos:], "", n
        else:
            body, eol, nxt = text[pos:end], "\n", end + 1
        if eol and body.endswith("\r"):
            body, eol = body[:-1], "\r\n"
        out.append((pos, body, eol))
        pos = nxt
    return out


class _Error(Exception):
    pass


def _skip(body, i, chars=_SPACE):
    while i < len(body) and body[i] in chars:
        i += 1
    return i


def _double_quoted(body, i):
    """``body[i] == '"'`` -> (text, index after the closing quote). Escapes as zend_ini_escape_string."""
    out = []
    j = i + 1
    while j < len(body):
        c = body[j]
        if c == "\\" and j + 1 < len(body):
            nxt = body[j + 1]
            out.append(nxt if nxt in "\"\\$" else "\\" + nxt)
            j += 2
            continue
        if c == '"':
            return "".join(out), j + 1
        out.append(c)
        j += 1
    raise _Error("unterminated double quote (FPM: syntax error, unexpected end of file)")


def _single_quoted(body, i):
    end = body.find("'", i + 1)
    if end < 0:
        raise _Error("unterminated single quote (FPM: syntax error)")
    return body[i + 1:end], end + 1


def _dollar_curly(body, i):
    end = body.find("}", i + 2)
    if end < 0:
        raise _Error("unterminated ${ (FPM: syntax error)")
    return body[i:end + 1], end + 1


def _value(body, i):
    """A value from ``body[i]`` (spaces after ``=`` already skipped) -> (value, end of the value as written,
    True when it is one quoted string)."""
    parts = []
    start = i
    end = i
    quoted_parts = 0
    other_parts = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c in _SPACE:
            j = _skip(body, i)
            if j >= n or body[j] == ";":
                break  # trailing spaces, then the end of the line or a comment
            if body[j] == '"':
                i = j  # spaces before an opening quote do not count
                continue
            parts.append(body[i:j])
            i = j
            continue
        if c == ";":
            break
        if c == "=":
            raise _Error("'=' inside a value (FPM: syntax error, unexpected '='); quote the value")
        if c == '"':
            text, i = _double_quoted(body, i)
            parts.append(text)
            end = i
            quoted_parts += 1
            i = _skip(body, i)  # spaces after a closing quote do not count either
            continue
        if c == "'":
            text, i = _single_quoted(body, i)
            parts.append(text)
            end = i
            quoted_parts += 1
            continue
        if c == "$" and body.startswith("${", i):
            text, i = _dollar_curly(body, i)
        else:
            j = i
            while j < n and body[j] not in " \t;\"'=" and not body.startswith("${", j):
                j += 1
            text, i = body[i:j], j
        parts.append(text)
        other_parts += 1
        end = i
    value = "".join(parts)
    if other_parts == 1 and not quoted_parts and value.lower() in _BOOLEANS:
        value = _BOOLEANS[value.lower()]
    return value, end, quoted_parts == 1 and not other_parts and end > start


def _section(body, i):
    """``body[i] == '['`` -> (name, index after the ``]``)."""
    parts = []
    j = i + 1
    n = len(body)
    while j < n:
        c = body[j]
        if c == "]":
            return "".join(parts), j + 1
        if c == ";":
            raise _Error("';' inside a section name (FPM: syntax error); quote the name")
        if c == '"':
            text, j = _double_quoted(body, j)
        elif c == "'":
            text, j = _single_quoted(body, j)
        elif c == "$" and body.startswith("${", j):
            text, j = _dollar_curly(body, j)
        elif c == "\\" and j + 1 < n:
            text, j = body[j:j + 2], j + 2
        else:
            text, j = c, j + 1
        parts.append(text)
    raise _Error("section header without ']' (FPM: syntax error)")


def _line(body, base):
    """One physical line -> its record (offsets relative to the file: ``base`` is the line's start)."""
    i = _skip(body, 0)
    rec = {"indent": body[:i]}
    if i >= len(body):
        rec["kind"] = "blank"
        return rec
    c = body[i]
    if c == ";":
        rec["kind"] = "comment"
        return rec
    try:
        if c == "[":
            name, j = _section(body, i)
            k = _skip(body, j)
            if k < len(body) and body[k] != ";":
                raise _Error("text after the section header (FPM: value is NULL); make it a ';' comment")
            rec.update(kind="section", name=name)
            return rec
        j = i
        while j < len(body) and body[j] not in _LABEL_STOP:
            j += 1
        name = body[i:j].strip(_SPACE)
        if not name:
            raise _Error("a line that is neither a section, a 'name = value' nor a ';' comment")
        key_end = i + len(body[i:j].rstrip(_SPACE))
        if j < len(body) and body[j] == "[":
            k = _skip(body, j + 1)
            offset = []
            while k < len(body) and body[k] != "]":
                if body[k] == '"':
                    text, k = _double_quoted(body, k)
                elif body[k] == "'":
                    text, k = _single_quoted(body, k)
                elif body[k] in "\n;":
                    raise _Error("array key without ']' (FPM: syntax error)")
                else:
                    text, k = body[k], k + 1
                offset.append(text)
            if k >= len(body):
                raise _Error("array key without ']' (FPM: syntax error)")
            name = "%s[%s]" % (name, "".join(offset))
            j = key_end = k + 1
        k = _skip(body, j)
        if k >= len(body) or body[k] != "=":
            if name.startswith("#"):
                raise _Error("'#' does not start a comment for php-fpm (FPM: value is NULL); use ';'")
            raise _Error("%s has no '=' (FPM: value is NULL)" % name)
        v = _skip(body, k + 1)
        value, end, quoted = _value(body, v)
        if name.startswith("#"):
            raise _Error("'#' does not start a comment for php-fpm (FPM: unknown entry '%s'); use ';'" % name)
    except _Error as exc:
        rec.update(kind="error", error=str(exc))
        return rec
    rec.update(kind="directive", key=name, value=value, quoted=quoted,
               key_start=base + i, key_end=base + key_end, value_start=base + v, value_end=base + end,
               written=body[v:end])
    return rec


def scan(text, section="global"):
    """Every physical line of an FPM ini file as php-fpm reads it, in order.

    Each record: ``line`` (1-based), ``start``/``end`` (offsets of its body in ``text``), ``eol``,
    ``indent``, ``section`` (the section the line belongs to; ``section`` is where the file starts,
    as an included file continues the section that included it) and ``kind``:

    - ``blank``, ``comment``;
    - ``section``: ``name`` as FPM takes it;
    - ``directive``: ``key`` (``pm.max_children``, ``env[PATH]``), ``value`` (as FPM gets it, before
      ``$pool``), ``written`` (the value's text as written, quotes included), ``quoted`` (the value is
      one quoted string), offsets ``key_start``/``key_end``/``value_start``/``value_end``;
    - ``error``: ``error``, a line FPM refuses, and why.
    """
    records = []
    skip = len(text) - len(text.lstrip(u"\ufeff"))
    for number, (start, body, eol) in enumerate(physical_lines(text), 1):
        lead = skip if start == 0 else 0
        rec = _line(body[lead:], start + lead)
        if rec["kind"] == "section":
            section = rec["name"]
        rec.update(line=number, start=start + lead, end=start + len(body), eol=eol, section=section)
        records.append(rec)
    return records


def same_key(a, b):
    """FPM compares directive and section names case-insensitively (strcasecmp); an array key exactly."""
    def norm(key):
        base, bracket, rest = key.partition("[")
        return base.lower() + bracket + rest
    return norm(a) == norm(b)
