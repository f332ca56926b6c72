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

A fleet's per-host evidence is not passed through a template: ``hosts`` names the hosts, and the
action writes ``hosts/HOST.json`` from each one's ``wp502_evidence_result`` itself (the text
``to_nice_json`` would give, serialised once, by the standard library's encoder), one host at a
time. With ``summary`` (wp502_fleet_summary's) it also returns ``console``: the bounded summary for
the console, whatever the fleet's size (``console_text``).

    - wp502_write_report:
        dir: /path/to/reports/audit-20261124T020000Z
        hosts: "{{ wp502_report_hosts }}"
        summary: "{{ summary }}"
        console_limit: 20
        files:
          report.html: "{{ summary | wp502_report_html }}"

Returns ``dir``, ``written`` (the paths) and, with ``summary``, ``console`` (lines).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.plugins.filter.core import to_nice_json

# The options and what the action returns are documented in plugins/modules/wp502_write_report.py (ansible-doc
# wp502.wp502.wp502_write_report), the module file a collection's action plugin needs for its documentation.

# Groups named on the console (the largest; summary.json and report.html hold them all).
CONSOLE_GROUPS = 5
# Hosts named per group on the console.
CONSOLE_GROUP_HOSTS = 5
# What a host without evidence is written as.
NO_EVIDENCE = {"collected": False}


@functools.cache
def _report_filters():
    """plugins/filter/wp502_report.py, for its status labels (the words every surface uses), how a host's evidence
    is read and where a listing of hosts is cut (the decisions every surface shares)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "filter", "wp502_report.py")
    spec = importlib.util.spec_from_file_location("wp502_report_filters", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nice_json(data):
    """``to_nice_json``'s text (its tagless profile: keys sorted, 4 spaces, ASCII) from the standard library's encoder,
    which gives the same text for JSON's types (and their tagged subclasses) in a third to a half of the time:
    the per-host part of writing a fleet's report. A value the standard library cannot encode (a set, a date,
    a vaulted string) goes through to_nice_json itself, which converts it or fails as before."""
    try:
        return json.dumps(data, indent=4, sort_keys=True, separators=(",", ": "))
    except (TypeError, ValueError):
        return to_nice_json(data)


def _more(shown, total):
    return [" and %d more" % (total - shown)] if total > shown else []


def console_text(summary, report, limit=None, title="wp502 fleet audit", when=""):
    """The audit on the console in a bounded number of lines, whatever the fleet's size: the counts by status
    and by cause, the largest groups (CONSOLE_GROUPS, CONSOLE_GROUP_HOSTS hosts each), the unhealthy hosts up to
    ``limit`` with their cause ("and N more"; cut where every listing of hosts is, wp502_bounded; None: its
    BOUNDED_HOSTS), and where the report is. A list of lines."""
    filters = _report_filters()
    labels = getattr(filters, "_STATUS_LABEL", {})
    limit = filters.BOUNDED_HOSTS if limit is None else limit
    statuses = summary.get("statuses") or {}
    counts = ", ".join("%d %s" % (n, labels.get(s, s)) for s, n in sorted(statuses.items(), key=lambda x: (-x[1], x[0])))
    lines = ["%s%s: %d hosts%s" % (title, ", " + when if when else "", summary.get("hosts", 0), ": " + counts if counts else "")]
    causes = summary.get("causes") or {}
    lines.append("Causes: " + (", ".join("%s %d" % (c, n) for c, n in causes.items()) or "none"))
    groups = summary.get("groups") or []
    if groups:
        lines.append("Largest groups (%d in all):" % len(groups))
        for g in groups[:CONSOLE_GROUPS]:
            hosts = g.get("hosts") or []
            key = g.get("key") or {}
            lines.append("  %d hosts share the %s %s: %s%s" % (
                len(hosts), key.get("kind"), key.get("value"), ", ".join(hosts[:CONSOLE_GROUP_HOSTS]),
                "".join(_more(CONSOLE_GROUP_HOSTS, len(hosts)))))
        lines += ["  and %d more groups" % (len(groups) - CONSOLE_GROUPS)] if len(groups) > CONSOLE_GROUPS else []
    unhealthy = list(summary.get("unhealthy") or [])
    shown, more = filters.wp502_bounded(unhealthy, limit)
    named = set(shown)
    rows = dict((r.get("host"), r) for r in summary.get("rows") or [] if r.get("host") in named)
    if unhealthy:
        lines.append("Unhealthy hosts (%d):" % len(unhealthy))
        for host in shown:
            row = rows.get(host) or {}
            lines.append("  %s: %s%s" % (host, row.get("top_cause") or "-", " (site %s)" % row["site"] if row.get("site") else ""))
        lines += ["  and %d more (summary.json lists them all)" % more] if more else []
    else:
        lines.append("Unhealthy hosts: none")
    lines.append("Report: " + report)
    return lines


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("dir", "files", "hosts", "summary", "console_limit", "title", "generated"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        directory = self._task.args.get("dir")
        files = self._task.args.get("files") or {}
        hosts = self._task.args.get("hosts") or []
        summary = self._task.args.get("summary")
        if not directory or not isinstance(files, dict) or not isinstance(hosts, list) or not (files or hosts):
            raise AnsibleActionFail("wp502_write_report needs dir and files (a dict of file name to text) or hosts")
        if summary is not None and not isinstance(summary, dict):
            raise AnsibleActionFail("summary must be the fleet summary (a dict), not %s" % type(summary).__name__)
        bad = [name for name in [*files, *("hosts/%s.json" % h for h in hosts)]
               if not name or name.startswith("/") or any(part in ("", ".", "..") for part in str(name).split("/"))]
        if bad:
            raise AnsibleActionFail("file names must be relative paths inside dir, not %s" % ", ".join(map(repr, bad)))
        directory = os.path.abspath(os.path.expanduser(str(directory)))
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            written = []
            hostvars = (task_vars or {}).get("hostvars") or {}
            evidence_of = _report_filters().wp502_host_evidence
            for host in hosts:
                # One host's evidence at a time: read (as the summary read it, not templated), serialised once, written, let go.
                evidence = evidence_of(hostvars, host)
                written.append(self._write(directory, "hosts/%s.json" % host, _nice_json(evidence or NO_EVIDENCE)))
            for name, text in files.items():
                written.append(self._write(directory, name, text))
        except OSError as exc:
            raise AnsibleActionFail("cannot write the report under %s: %s" % (directory, exc)) from exc
        result.update(changed=True, dir=directory, written=written)
        if summary is not None:
            try:
                limit = int(self._task.args.get("console_limit", _report_filters().BOUNDED_HOSTS))
            except (TypeError, ValueError) as exc:
                raise AnsibleActionFail("console_limit must be a number of hosts: %s" % exc) from exc
            result["console"] = console_text(summary, os.path.join(directory, "report.html"), limit,
                                             str(self._task.args.get("title") or "wp502 fleet audit"),
                                             str(self._task.args.get("generated") or ""))
        return result

    @staticmethod
    def _write(directory, name, text):
        """One file, atomically: a temporary file beside it, then a rename."""
        target = os.path.join(directory, name)
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(prefix=".wp502-", dir=os.path.dirname(target))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("" if text is None else str(text))
            os.chmod(tmp_path, 0o644)
            os.rename(tmp_path, target)
        except OSError:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
            raise
        return target
