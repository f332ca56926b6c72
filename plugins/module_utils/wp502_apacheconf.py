# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""Apache httpd configuration text, read the way httpd reads it: the one line reader of the evidence
(``wp502_frontend.parse_apache``) and the editor (``wp502_edit.set_apache_directives``).

httpd (ap_cfg_getline) joins a line ending in ``\\`` with the next one, and takes ``#`` as a comment
only as the first character of a (logical) line after spaces: ``#`` elsewhere is part of the line.
CRLF line ends are read as LF. Standard library only; runs on targets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def split_lines(text):
    """Physical lines with their endings, split on LF only: ``"a\\r\\nb"`` -> ``["a\\r\\n", "b"]``."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def body_eol(line):
    """``"x = 1\\r\\n"`` -> ``("x = 1", "\\r\\n")``."""
    if line.endswith("\r\n"):
        return line[:-2], "\r\n"
    if line.endswith("\n"):
        return line[:-1], "\n"
    return line, ""


def logical_lines(text):
    """Logical lines: physical lines joined at a ``\\`` before the line break, as httpd reads them.

    Each is a dict: line (1-based, of its first physical line), text (joined, without the
    backslashes), offsets (the original offset of each character of text), end (offset after its
    last physical line's body) and eol.
    """
    logical = []
    current = None
    pos = 0
    for number, raw in enumerate(split_lines(text), 1):
        body, eol = body_eol(raw)
        continued = bool(eol) and body.endswith("\\") and not body.endswith("\\\\")
        piece = body[:-1] if continued else body
        if current is None:
            current = {"line": number, "text": "", "offsets": []}
        current["text"] += piece
        current["offsets"].extend(range(pos, pos + len(piece)))
        current["end"] = pos + len(body)
        current["eol"] = eol
        if not continued:
            logical.append(current)
            current = None
        pos += len(raw)
    if current is not None:
        logical.append(current)
    return logical


def is_comment(text):
    """A logical line httpd skips: empty, or ``#`` as its first non-space character."""
    stripped = text.strip()
    return not stripped or stripped.startswith("#")
