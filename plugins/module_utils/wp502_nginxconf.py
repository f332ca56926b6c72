# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""nginx configuration text, read the way nginx reads it: the one lexer of the evidence and the editor.

:func:`tokens` follows ngx_conf_read_token, :func:`parse` ngx_conf_parse's statements and blocks,
keeping every token's offsets (``wp502_edit`` changes a value in place with them); :func:`tree` is
the same parse as plain ``(name, args, children)`` for readers (``wp502_frontend``), with each
argument's value as nginx gets it (:func:`word_value`: quotes removed, ``\\"``, ``\\'``, ``\\\\``,
``\\t``, ``\\r``, ``\\n`` escapes read, any other ``\\`` kept, as in ``\\.php$``).

What it follows: words end at spaces, line breaks, ``;`` or ``{``; ``}`` closes a block only where a
word could start, so ``${document_root}`` is one word (``$`` then ``{`` is a variable, not a block);
``#`` starts a comment only where a word could start (``a#b`` is one word); a quoted word must be
followed by a space, ``;``, ``{`` or ``)`` (``if ($x = "a") {``); CR is a space. Text nginx would
refuse (unbalanced braces, an unterminated quote, a statement without ``;``) raises ``ValueError``.

Standard library only; runs on targets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

_ESCAPES = {"\"": "\"", "'": "'", "\\": "\\", "t": "\t", "r": "\r", "n": "\n"}


def tokens(text):
    """nginx's lexer (ngx_conf_read_token): [(kind, start, end, line)], kind "word", ";", "{" or "}".

    Words are separated by spaces, tabs and line breaks and end at ``;`` or ``{``; a ``}`` ends a
    block only where a word could start. ``#`` starts a comment only where a word could start (so
    ``a#b`` is one word). Quoted words run to the matching quote, ``\\`` escaping the next character
    (also outside quotes); ``${`` inside a word does not open a block. Comments are dropped.
    """
    tokens = []
    n = len(text)
    i = 0
    line = 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if c in " \t\r":
            i += 1
            continue
        if c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c in ";{}":
            tokens.append((c, i, i + 1, line))
            i += 1
            continue
        start, start_line = i, line
        if c in "\"'":
            i += 1
            while i < n and text[i] != c:
                if text[i] == "\\":
                    i += 1
                if i < n and text[i] == "\n":
                    line += 1
                i += 1
            if i >= n:
                raise ValueError("nginx: unterminated quoted string starting on line %d" % start_line)
            i += 1
            if i < n and text[i] not in " \t\r\n;{)":
                raise ValueError("nginx: unexpected %r after a quoted string on line %d" % (text[i], line))
        else:
            variable = False
            while i < n:
                c = text[i]
                if c == "{" and variable:
                    i += 1
                    continue
                variable = False
                if c == "\\":
                    if i + 1 < n and text[i + 1] == "\n":
                        line += 1
                    i += 2
                    continue
                if c == "$":
                    variable = True
                    i += 1
                    continue
                if c in " \t\r\n;{":
                    break
                i += 1
            i = min(i, n)
        tokens.append(("word", start, i, start_line))
    return tokens


def parse(text):
    """Statements as nested lists of dicts: name, line, words (tokens), term (token), block (list or None)."""
    root = []
    stack = [root]
    words = []
    for token in tokens(text):
        kind = token[0]
        if kind == "word":
            words.append(token)
            continue
        if kind == "}":
            if words:
                raise ValueError("nginx: unexpected \"}\" on line %d, expecting \";\"" % token[3])
            if len(stack) == 1:
                raise ValueError("nginx: unexpected \"}\" on line %d" % token[3])
            stack.pop()
            continue
        if not words:
            raise ValueError("nginx: unexpected %r on line %d" % (kind, token[3]))
        name = words[0]
        stmt = {"name": text[name[1]:name[2]], "line": name[3], "words": words, "term": token,
                "block": [] if kind == "{" else None}
        stack[-1].append(stmt)
        if kind == "{":
            stack.append(stmt["block"])
        words = []
    if words:
        raise ValueError("nginx: unexpected end of file, expecting \";\" after line %d" % words[-1][3])
    if len(stack) > 1:
        raise ValueError("nginx: unexpected end of file, expecting \"}\"")
    return root


def word_value(raw):
    """A word as written -> its value as nginx gets it (ngx_conf_read_token's copy loop)."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1]
    if "\\" not in raw:
        return raw
    out = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw) and raw[i + 1] in _ESCAPES:
            out.append(_ESCAPES[raw[i + 1]])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def tree(text):
    """``[(name, [argument values], children or None)]``: :func:`parse` for readers."""
    def plain(block):
        return [(text[s["words"][0][1]:s["words"][0][2]],
                 [word_value(text[w[1]:w[2]]) for w in s["words"][1:]],
                 plain(s["block"]) if s["block"] is not None else None) for s in block]
    return plain(parse(text))
