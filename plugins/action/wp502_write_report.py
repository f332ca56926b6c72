# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""wp502_write_report: write a report's files on the controller, in the controller's own process.

A report is the controller's business: writing it with ansible.builtin.copy costs a module run
(a Python start-up and a checksum round) per file, seconds at the end of an emergency run. This
action plugin writes the files itself, each atomically (temporary file, then rename), and never
touches the target. It writes in check mode too: the report of a --check run is what shows the
plan.

    - wp502_write_report:
        dir: /path/to/reports/emergency-20261124T020000Z
        files:
          results.json: "{{ results | to_nice_json }}"
          report.html: "{{ results | wp502_emergency_html }}"

Returns ``dir`` and ``written`` (the paths).
"""

from __future__ import annotations

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

DOCUMENTATION = r"""
---
action: wp502_write_report
short_description: Write a report's files on the controller (no module run, check mode included)
options:
  dir:
    description: Directory to create (with its parents) and write into.
    type: path
    required: true
  files:
    description: File names (no directories) and their text.
    type: dict
    required: true
"""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("dir", "files"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        directory = self._task.args.get("dir")
        files = self._task.args.get("files")
        if not directory or not isinstance(files, dict) or not files:
            raise AnsibleActionFail("wp502_write_report needs dir and files (a dict of file name to text)")
        bad = [name for name in files
               if not name or name.startswith("/") or any(part in ("", ".", "..") for part in str(name).split("/"))]
        if bad:
            raise AnsibleActionFail("file names must be relative paths inside dir, not %s" % ", ".join(map(repr, bad)))
        directory = os.path.abspath(os.path.expanduser(str(directory)))
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            written = []
            for name, text in files.items():
                target = os.path.join(directory, name)
                os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
                fd, tmp_path = tempfile.mkstemp(prefix=".wp502-", dir=os.path.dirname(target))
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write("" if text is None else str(text))
                os.chmod(tmp_path, 0o644)
                os.rename(tmp_path, target)
                written.append(target)
        except OSError as exc:
            raise AnsibleActionFail("cannot write the report under %s: %s" % (directory, exc)) from exc
        result.update(changed=True, dir=directory, written=written)
        return result
