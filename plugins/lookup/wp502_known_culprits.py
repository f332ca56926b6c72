# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""The plugins the emergency proved guilty on other hosts: in this run, and in the runs of the last minutes
whose results the controller kept (reports/emergency-*/results.json)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: wp502_known_culprits
short_description: Plugins an emergency run proved guilty on other hosts, this run and recent ones
description:
  - Reads the results of emergency runs and returns one record per plugin that healed a site when taken out
    (a site whose state is C(healed) and whose C(culprits) name it), newest first.
  - The results are the O(results) given (this run's hosts, from C(hostvars)) and the C(results.json) of the
    C(emergency-*) directories under each term (a report directory) written in the last O(minutes).
  - A results file that cannot be read or parsed is skipped with a warning naming it (the emergency goes on
    without it), never an error.
  - The emergency gives the records to C(wp502_evidence) (its C(known_culprits) option), which keeps those active on a
    site and says why its evidence points to them; the plugins rung takes them out first, alone.
options:
  _terms:
    description: Report directories (C(wp502_report_dir)); a missing one holds no results.
    type: list
    elements: path
  results:
    description: Results of this run, each host name with its C(wp502_emergency_result).
    type: dict
    default: {}
  minutes:
    description: How old a results file may be (by its modification time); 0 reads no file.
    type: int
    default: 120
  limit:
    description: Read at most this many results files, the newest.
    type: int
    default: 20
"""

EXAMPLES = r"""
- name: What other hosts proved
  ansible.builtin.set_fact:
    known: "{{ lookup('wp502_known_culprits', playbook_dir ~ '/../reports', minutes=60,
                      results=dict(done | map(attribute='inventory_hostname') | zip(done | map(attribute='wp502_emergency_result')))) }}"
"""

RETURN = r"""
_list:
  description: Records, newest first, at most one per plugin and host.
  type: list
  elements: dict
  contains:
    plugin:
      description: The plugin (its directory under wp-content/plugins, or its file for a single-file plugin).
      type: str
    host:
      description: The host where taking it out healed a site.
      type: str
    site:
      description: That site.
      type: str
    run_id:
      description: The run that proved it.
      type: str
    at:
      description: When that run finished (ISO 8601), or the time in its run id.
      type: str
    cause:
      description: The site's top cause there.
      type: str
    signatures:
      description: The 502-class log signatures of that site there.
      type: list
      elements: str
"""

import datetime
import glob
import json
import os
import time

from ansible.plugins.lookup import LookupBase


def _at(result):
    if result.get("finished_at"):
        return str(result["finished_at"])
    run_id = str(result.get("run_id") or "")
    try:
        when = datetime.datetime.strptime(run_id[:15], "%Y%m%dT%H%M%S").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return ""
    return when.isoformat()


def culprit_records(results):
    """``{host: result}`` -> records (see RETURN), in the order of ``results``: one per plugin, host and site."""
    records, seen = [], set()
    for host, result in (results or {}).items():
        if not isinstance(result, dict):
            continue
        sites = result.get("sites") or []
        healed = [s for s in sites if isinstance(s, dict) and s.get("state") == "healed" and s.get("culprits")]
        if not sites and result.get("healed") and result.get("culprits"):
            healed = [{"site": None, "culprits": result["culprits"], "top_cause": result.get("top_cause")}]
        for site in healed:
            for plugin in site.get("culprits") or []:
                key = (plugin, host, site.get("site"))
                if not plugin or key in seen:
                    continue
                seen.add(key)
                records.append({"plugin": str(plugin), "host": str(host), "site": site.get("site"),
                                "run_id": result.get("run_id"), "at": _at(result), "cause": site.get("top_cause"),
                                "signatures": list(site.get("signatures") or [])})
    return records


def recent_results(dirs, minutes, limit, now=None):
    """The results.json of emergency runs under ``dirs`` modified in the last ``minutes``, newest first:
    ``([{host: result}], [problems])``."""
    now = time.time() if now is None else now
    if minutes <= 0 or limit <= 0:
        return [], []
    found = []
    for d in dirs or []:
        for path in glob.glob(os.path.join(glob.escape(str(d)), "emergency-*", "results.json")):
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            if now - mtime <= minutes * 60:
                found.append((mtime, path))
    out, problems = [], []
    for _mtime, path in sorted(found, reverse=True)[:limit]:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            problems.append("%s: %s" % (path, exc))
            continue
        if isinstance(data, dict):
            out.append(dict((h, (r or {}).get("result", r) if isinstance(r, dict) else r) for h, r in data.items()))
    return out, problems


def known_culprits(dirs, results, minutes, limit, warn=None):
    """What the lookup returns: this run's records first, then those of the recent results files, each
    (plugin, host, site) once; ``warn(text)`` hears of each results file that could not be read."""
    records = culprit_records(results)
    batches, problems = recent_results(dirs, minutes, limit)
    for problem in problems:
        if warn:
            warn("wp502_known_culprits: skipped %s" % problem)
    seen = set((r["plugin"], r["host"], r["site"]) for r in records)
    for batch in batches:
        for r in culprit_records(batch):
            key = (r["plugin"], r["host"], r["site"])
            if key not in seen:
                seen.add(key)
                records.append(r)
    return records


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        minutes, limit = self.get_option("minutes"), self.get_option("limit")
        if minutes < 0 or limit < 0:
            from ansible.errors import AnsibleLookupError  # noqa: PLC0415 - controller only (see tests/unit/test_known_culprits.py)

            raise AnsibleLookupError("wp502_known_culprits: minutes and limit must be 0 or more")
        return [known_culprits(terms, self.get_option("results"), minutes, limit, warn=self._display.warning)]
