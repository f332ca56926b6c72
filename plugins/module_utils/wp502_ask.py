# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""Ask every site of a host after a change, and judge it (standard library only).

:func:`targets_from` checks the sites the playbooks pass (``wp502_evidence``'s ``probe.targets``) and
turns them into what :func:`wp502_http.probe_sites` takes; :func:`ask_sites` asks them all at once, with
retries until the change has healed (:func:`wp502_ladder.judge`) or the retries run out.

One place for both ``wp502_probe`` (its own round trip) and ``wp502_run`` (a rung's restart or reload
and its probe in one round trip), so that "the rung healed" means the same thing whichever asks.
"""

from __future__ import absolute_import, division, print_function

import re
import time

from ansible.module_utils.wp502_http import healthy, probe_sites
from ansible.module_utils.wp502_ladder import judge

__metaclass__ = type

URL = re.compile(r"^https?://[^/\s]+")


def probe_options():
    """The options that say how sites are asked: ``wp502_probe``'s, and ``wp502_run``'s ``probe`` suboptions
    (with ``sites``), so that both modules take the same ones with the same defaults."""
    return dict(
        paths=dict(type="list", elements="str", default=["/", "/wp-login.php"]),
        deadline=dict(type="float", default=5),
        accept=dict(type="list", elements="int", default=[200]),
        cookie_paths=dict(type="list", elements="str", default=["/wp-login.php"]),
        retries=dict(type="int", default=0),
        delay=dict(type="float", default=2),
        answering=dict(type="list", elements="str"),
        expect=dict(type="list", elements="str"),
    )


def check_limits(deadline, retries, delay, paths):
    """What is wrong with a probe's bounds (empty when nothing): the deadline 0-120 s, retries and delay 0-60,
    paths that start with /."""
    if not 0 < deadline <= 120:
        return "deadline must be between 0 and 120 seconds, not %s" % deadline
    if not 0 <= retries <= 60 or not 0 <= delay <= 60:
        return "retries and delay must be between 0 and 60"
    bad = [path for path in paths if not path.startswith("/")]
    if bad or not paths:
        return "paths must start with /: %s" % ", ".join(bad or ["(none given)"])
    return ""


def targets_from(sites):
    """The sites to ask, as ``probe_sites`` takes them; raises ValueError saying which entry is wrong."""
    targets, seen = [], set()
    for site in sites:
        sid = site.get("id")
        if not isinstance(sid, str) or not sid or sid in seen:
            raise ValueError("every site needs a unique id, not %r" % (sid,))
        seen.add(sid)
        port = site.get("port") or 80
        scheme = site.get("scheme") or "http"
        url = site.get("url")
        if not isinstance(port, int) or not 0 < port < 65536 or scheme not in ("http", "https"):
            raise ValueError("site %s: port must be 1..65535 and scheme http or https, not %r/%r" % (sid, port, scheme))
        if url and not URL.match(str(url)):
            raise ValueError("site %s: url must be an http:// or https:// URL, not %r" % (sid, url))
        targets.append({"id": sid, "host": site.get("probe_host") or site.get("host") or "localhost", "port": port,
                        "scheme": scheme, "url": url or None})
    return targets


def ask_sites(sites, deadline, accept=(200,), cookie_paths=(), paths=("/", "/wp-login.php"), retries=0, delay=2.0,
              answering=None, expect=None, sleep=time.sleep, probe=probe_sites):
    """Every site at once; with ``answering`` (the ids that answered before the change), retried until the
    judgement says healed, or, with ``expect``, until those sites answer and none of ``answering`` fails.

    Returns what ``wp502_probe`` returns with ``sites``: ``{"healthy", "sites": {id: {..., "healthy"}}, "tries",
    "failing", "not_asked", "seconds", "judgement"?}``. Raises ValueError on a bad site or id.
    """
    wrong = check_limits(deadline, retries, delay, paths)
    if wrong:
        raise ValueError(wrong)
    targets = targets_from(sites)
    ids = [t["id"] for t in targets]
    before = None
    if answering is not None:
        unknown = sorted(set(answering) - set(ids))
        if unknown:
            raise ValueError("answering names sites that are not in sites: %s" % ", ".join(unknown))
        before = dict((sid, sid in answering) for sid in ids)
    if expect is not None:
        unknown = sorted(set(expect) - set(ids))
        if unknown or before is None:
            raise ValueError("expect needs answering, and only names sites in sites (not: %s)" % ", ".join(unknown))
        expect = list(expect)
    tries = 0
    while True:
        tries += 1
        got = probe(targets, deadline, cookie_paths=cookie_paths, paths=paths)
        answers = {}
        for sid in ids:
            entry = dict(got["sites"].get(sid) or {"origin": {}})
            entry["healthy"] = healthy(entry.get("origin") or {}, deadline, accept=accept, cookie_paths=cookie_paths)
            entry.pop("origin_healthy", None)
            answers[sid] = entry
        after = dict((sid, answers[sid]["healthy"]) for sid in ids)
        verdict = judge(before, after) if before is not None else None
        if verdict is None:
            done = all(after.values())
        elif expect is not None:
            done = verdict["healed"] or (not verdict["broke"] and all(after[sid] for sid in expect))
        else:
            done = verdict["healed"]
        if done or tries > retries:
            break
        sleep(delay)
    result = {"changed": False, "healthy": all(after.values()) and bool(ids), "sites": answers, "tries": tries,
              "failing": [sid for sid in ids if not after[sid]], "not_asked": got.get("skipped") or [],
              "seconds": got.get("seconds")}
    if verdict is not None:
        result["judgement"] = verdict
    return result
