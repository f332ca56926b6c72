# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""What an emergency run did, worked out in one place for the host and the controller.

- ``rung_record``: a rung as the run records it, from what the sites answered after it.
- ``run_result``: the run's result (what ``result.json`` on the host, results.json, the console, AWX's
  set_stats and the webhook hold), with its outcome (``state``, ``ok``, ``line``: ``emergency_outcome``).
- ``site_results``, ``emergency_sites``: each site's before, after, the step that healed it, its state.

The role's tasks call these through filters (plugins/filter/wp502_steps.py, wp502_report.py); ``wp502_run``
calls them when a restart or reload heals every site, to keep the result and release the host in the same
round trip. Standard library only (it runs on the targets too), Python 3.8+.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime


def _probe_statuses(probe):
    """``"502"``, or ``"200, 502"`` when the paths disagree, ``"no answer"`` without a status."""
    got = [str((p or {}).get("status") or "no answer") for p in ((probe or {}).get("origin") or {}).values()]
    return ", ".join(sorted(set(got), key=got.index)) if got else "not asked"


def site_brief(site):
    """What the run's result keeps of a site of the evidence (what ``site_results`` reads), so that the run's
    state passed to a module stays small on a host with many sites."""
    site = site or {}
    http = site.get("http") or {}
    return {"id": site.get("id"), "names": site.get("names") or [site.get("id")], "top_cause": site.get("top_cause"),
            "signatures": list(site.get("signatures") or []), "http": {"cdn": http.get("cdn"), "ray_id": http.get("ray_id")}}


def site_results(sites, start, latest, answering_start, answering_now, rungs):
    """Each site of a host after an emergency run: ``{site, before, after, answering_before,
    answering_after, top_cause, signatures, healed_by, culprits, state}`` (+ ``cdn``, ``ray_id`` for ``cdn_only``).

    ``state``: ``healed`` (failed, answers now), ``healthy`` (answered, still does), ``not_healed``
    (failed, still fails), ``broke`` (answered, fails now), ``cdn_only`` (the origin answers, only the
    public URL fails). ``healed_by`` is the first step after which the site answered and that was
    not undone; ``culprits`` the plugins that step left out for it."""
    out = []
    for site in sites or []:
        sid = site.get("id")
        before, after = sid in (answering_start or []), sid in (answering_now or [])
        entry = {"site": sid, "names": site.get("names") or [sid], "top_cause": site.get("top_cause"),
                 # what its logs showed (a later host's known-culprit match compares signatures)
                 "signatures": list(site.get("signatures") or []),
                 "before": _probe_statuses((start or {}).get(sid)), "after": _probe_statuses((latest or {}).get(sid)),
                 "answering_before": before, "answering_after": after, "healed_by": None, "culprits": []}
        if not before and after:
            for rung in rungs or []:
                if sid in (rung.get("fixed") or []) and not rung.get("rolled_back"):
                    entry["healed_by"] = rung.get("rung")
                    entry["culprits"] = list(rung.get("culprits") or []) if sid in (rung.get("sites") or []) else []
                    break
        if before and not after:
            entry["state"] = "broke"
        elif not before:
            entry["state"] = "healed" if after else "not_healed"
        elif site.get("top_cause") == "cdn_only":
            entry["state"] = "cdn_only"
            http = site.get("http") or {}
            entry["cdn"], entry["ray_id"] = http.get("cdn"), http.get("ray_id")
        else:
            entry["state"] = "healthy"
        out.append(entry)
    return out


_SITE_ORDER = ("broke", "not_healed", "cdn_only", "planned", "healed", "healthy")


def _answer(value):
    """A probe's answer as the outcome words say it: "502", or "no answer"."""
    return "no answer" if value in (None, "", 0, "0") else str(value)


def _plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def _culprits(names):
    names = [str(n) for n in names or []]
    if not names:
        return ""
    return " (culprit%s %s)" % ("s" if len(names) > 1 else "", ", ".join(names))


def _site_rungs(result, site_id, broke=False):
    """The rungs climbed for a site: those naming it (``sites``), or every rung when rungs do not say;
    for a site that broke, the rungs that broke it (``broke``) when they say. A rung undone says so."""
    rungs = [x for x in result.get("rungs") or [] if isinstance(x, dict)]
    if broke and any(site_id in (x.get("broke") or []) for x in rungs):
        rungs = [x for x in rungs if site_id in (x.get("broke") or [])]
    else:
        rungs = [x for x in rungs if "sites" not in x or site_id in (x.get("sites") or [])]
    return ["%s%s" % (x.get("rung"), " (rolled back)" if x.get("rolled_back") else "") for x in rungs]


def emergency_sites(result):
    """Each site of an emergency result (``result.sites``) with its decided outcome: ``state`` (healed,
    healthy, not_healed, broke, cdn_only, planned), ``ok`` and a ``line`` naming what happened to it.
    The answers decide, not the words given: a site that answered before and fails now broke, a site
    that failed before and answers now healed, whatever its ``state`` said. An empty list without
    ``sites``."""
    result = result or {}
    out = []
    for given in result.get("sites") or []:
        if not isinstance(given, dict):
            continue
        site = dict(given)
        sid = str(site.get("site") or site.get("id") or "-")
        before, after = site.get("answering_before"), site.get("answering_after")
        if before is None or after is None:
            state = site.get("state") or "not_healed"
        elif site.get("state") == "cdn_only":
            state = "cdn_only"
        elif before and not after:
            state = "broke"
        elif before:
            state = "healthy"
        elif after:
            state = "healed"
        else:
            state = "not_healed"
        if state == "not_healed" and result.get("check_mode"):
            state = "planned"
        rungs = _site_rungs(result, sid, broke=state == "broke")
        if state == "healed":
            line = "%s by %s%s" % (sid, site.get("healed_by"), _culprits(site.get("culprits"))) if site.get("healed_by") \
                else "%s answers %s now" % (sid, _answer(site.get("after")))
        elif state == "healthy":
            line = "%s answers %s" % (sid, _answer(site.get("after") or site.get("before")))
        elif state == "broke":
            line = "%s answered %s before, %s now%s" % (sid, _answer(site.get("before")), _answer(site.get("after")),
                                                        " after " + ", ".join(rungs) if rungs else "")
        elif state == "cdn_only":
            line = "%s fails only through %s%s" % (sid, site.get("cdn") or "its CDN",
                                                   " (Ray ID %s)" % site["ray_id"] if site.get("ray_id") else "")
        elif state == "planned":
            line = "%s fails (%s); would climb %s" % (sid, _answer(site.get("before")), ", ".join(rungs) or "no rung")
        else:
            now = _answer(site.get("after") or site.get("before"))
            line = "%s %s%s" % (sid, "still answers " + now if now[:1].isdigit() else "still fails (%s)" % now,
                                " after " + ", ".join(rungs) if rungs else " (no rung climbed)")
        site.update(site=sid, state=state, ok=state in ("healed", "healthy"), line=line)
        out.append(site)
    return out


def emergency_outcome(result):
    """What happened to a host in an emergency run, decided in one place for every surface (console,
    report, webhook, the wp502 command, the run's exit status): ``{"state", "ok", "line"}``.

    ``ok`` is true only when nothing is left broken on the host. With ``sites`` (issue #11): every
    site that failed before answers now and every site that answered before still does; the line
    names the sites ("healed 2 of 2 failing sites: siteb.test by plugins (culprit x), sitec.test by
    restart_db"). Without ``sites``: it was healed (the probe after a rung answered) or its origin
    already answered. A host refused, unreachable, not healed, with a site that broke or fails only
    through its CDN, or only planned for (check mode), is not ok.
    """
    result = result or {}
    if result.get("unreachable") or result.get("refused") or not result.get("sites"):
        return _host_outcome(result)
    sites = emergency_sites(result)
    by = dict((state, [s for s in sites if s["state"] == state]) for state in _SITE_ORDER)
    failing_before = [s for s in sites if s["state"] in ("healed", "not_healed", "planned")]
    parts = []
    stopped = result.get("stopped") or ""
    if by["not_healed"]:
        why = " (stopped: %s)" % stopped if stopped not in ("", "healthy", "cdn_only") else ""
        parts.append("not healed%s: %s" % (why, "; ".join(s["line"] for s in by["not_healed"])))
    if by["broke"]:
        parts.append("broke: %s" % "; ".join(s["line"] for s in by["broke"]))
    if by["planned"]:
        parts.append("check mode: nothing changed; %s" % "; ".join(s["line"] for s in by["planned"]))
    if by["cdn_only"]:
        parts.append("cdn_only: %s" % "; ".join(s["line"] for s in by["cdn_only"]))
    if by["healed"]:
        parts.append("healed %d of %s: %s" % (len(by["healed"]), _plural(len(failing_before), "failing site"),
                                              ", ".join(s["line"] for s in by["healed"])))
    state = next(st for st in _SITE_ORDER if by[st])
    if state == "not_healed" and stopped not in ("", "healthy", "cdn_only"):
        state = "stopped"
    if state == "healthy":
        return {"state": "healthy", "ok": True, "line": "stopped: healthy (%s answer%s)" % (
            _plural(len(sites), "site"), "s" if len(sites) == 1 else "")}
    ok = state == "healed"
    line = "; ".join(parts)
    if not ok and state not in ("cdn_only", "planned") and result.get("next_step"):
        line += "; next: %s" % result["next_step"]
    return {"state": state, "ok": ok, "line": line}


def _host_outcome(result):
    """The outcome of a result without ``sites`` (one probed site per host, as before issue #11)."""
    cause = result.get("top_cause") or "unknown"
    stopped = result.get("stopped") or ""
    if result.get("unreachable"):
        return {"state": "unreachable", "ok": False, "line": "unreachable: %s" % result["unreachable"]}
    if result.get("refused"):
        return {"state": "refused", "ok": False, "line": "refused: %s" % result["refused"]}
    if result.get("healed_by") and result.get("healed", True):
        culprits = result.get("culprits") or []
        return {"state": "healed", "ok": True, "line": "%s, healed by %s%s" % (
            cause, result["healed_by"], " (culprit: %s)" % ", ".join(culprits) if culprits else "")}
    if stopped == "healthy":
        return {"state": "healthy", "ok": True, "line": "%s, stopped: healthy (the origin answers; nothing changed)" % cause}
    if stopped == "cdn_only":
        return {"state": "cdn_only", "ok": False, "line": "%s, stopped: cdn_only (the origin answers; the CDN fails: %s)" % (
            cause, result.get("next_step") or "check the CDN")}
    if result.get("check_mode"):
        return {"state": "planned", "ok": False, "line": "%s, check mode: nothing changed, the site still fails; would climb %s" % (
            cause, ", ".join(r.get("rung", "?") for r in result.get("rungs") or []) or "no rung")}
    if stopped:
        return {"state": "stopped", "ok": False, "line": "%s, NOT healed, stopped: %s; next: %s" % (
            cause, stopped, result.get("next_step") or "see the evidence")}
    return {"state": "not_healed", "ok": False, "line": "%s, NOT healed; next: %s" % (cause, result.get("next_step") or "see the evidence")}


def emergency_line(result):
    """One line for an emergency run's outcome on a host (notifications, summaries)."""
    return emergency_outcome(result)["line"]


def _unique(items):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def rung_record(rung, step, answered, failed=False, changed=True, check_mode=False, seconds=0.0, note="", detail=None):
    """One rung as the run records it: ``rung`` (its name), ``step`` (the ladder's step: ``step``, ``sites``,
    ``cause``), ``answered`` (what the sites answered after it: wp502_probe's result, or wp502_run's ``probe``;
    ``None`` or a skipped result when they were not asked), whether it could not finish (``failed``), whether
    it changed anything (``changed``; nothing changes in ``check_mode``), how long it took and its note.
    ``detail``: the rung's own keys (``culprits``, ...), added last. ``healed`` is the probe's judgement
    (wp502_ladder.judge: every site that failed answers and every site that answered still does)."""
    answered = answered or {}
    judged = answered.get("judgement") or {}
    step = step or {}
    origin = []
    for site in (answered.get("sites") or {}).values():
        origin += [(probe or {}).get("status") for probe in ((site or {}).get("origin") or {}).values()]
    record = {
        "rung": rung,
        "step": step.get("step"),
        "sites": list(step.get("sites") or []),
        "cause": step.get("cause"),
        "healed": bool(judged.get("healed", False)),
        "fixed": list(judged.get("fixed") or []),
        "broke": list(judged.get("broke") or []),
        "failing": list(judged.get("failing") or []),
        "failed": bool(failed),
        "rolled_back": False,
        "changed": bool(changed) and not check_mode,
        "planned": bool(check_mode),
        "seconds": round(float(seconds or 0), 2),
        "origin": origin,
        "note": (note or "").strip(),
    }
    record.update(detail or {})
    return record


def _next_step(run, rungs, healed):
    """What to do next, in the run's words ('' once healed)."""
    if healed:
        return ""
    if run.get("refused"):
        return "nothing was changed on the host: %s" % run["refused"]
    if run.get("unreachable"):
        return "reach the host (SSH, become) and run again"
    if run.get("check_mode") and rungs:
        return "run without --check to climb the rungs above"
    verdict = run.get("verdict") or [{}]
    first = verdict[0] if isinstance(verdict[0], dict) else {}
    if "next_step" in first:
        return first["next_step"]
    return "the ladder did not heal it (%s): read the evidence of the top causes and act by hand" % (
        ", ".join(str(r.get("rung")) for r in rungs) or "no rung was climbed")


def finished_at():
    """When a run ended, as the role writes it: UTC, ISO 8601 without an offset."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).isoformat()


def run_result(run):
    """An emergency run's result on one host, with its outcome (``state``, ``ok``, ``line``).

    ``run``: ``run_id``, ``host`` (its inventory name), ``state_dir``, ``finished_at``, ``check_mode``,
    ``locked`` (the run holds the host), ``refused``, ``unreachable``, ``top_cause``, ``verdict`` (the
    evidence's), ``stopped``, ``healed``, ``rungs`` (every rung recorded), ``sites`` (the evidence's),
    ``targets`` (where each site is asked), ``baseline`` (each site's answers before), ``site_probes``
    (its latest answers), ``answering_start`` and ``answering`` (the ids answering before and now)."""
    run = run or {}
    rungs = [r for r in run.get("rungs") or [] if isinstance(r, dict)]
    healed = bool(run.get("healed"))
    answering = list(run.get("answering") or [])
    sites = run.get("sites") or []
    held = bool(run.get("locked")) and not run.get("check_mode") and bool(run.get("run_id"))
    result = {
        "run_id": run.get("run_id"),
        "finished_at": run.get("finished_at") or finished_at(),
        "check_mode": bool(run.get("check_mode")),
        "locked": bool(run.get("locked")),
        "refused": run.get("refused") or "",
        "unreachable": run.get("unreachable") or "",
        "top_cause": run.get("top_cause"),
        "verdict": list(run.get("verdict") or [])[:3],
        "stopped": run.get("stopped") or "",
        "healed": healed,
        "healed_by": next((r.get("rung") for r in rungs if r.get("healed")), None),
        "failing": _unique(s.get("id") for s in sites if s.get("id") not in answering),
        # Where each site is asked, kept on the host with the result: rollback-502.yml asks every site after undoing.
        "targets": list(run.get("targets") or []),
        "rungs": rungs,
        # Every site of the host: before, after, the step that healed it and its culprits.
        "sites": site_results(sites, run.get("baseline") or {}, run.get("site_probes") or {},
                              run.get("answering_start") or [], answering, rungs),
        "culprits": _unique(c for r in rungs if not r.get("rolled_back") and r.get("fixed")
                            for c in r.get("culprits") or []),
        # Whenever the run held the host: its journal holds whatever it changed, a rung cut short included.
        "journal": "%s/runs/%s" % (run.get("state_dir"), run["run_id"]) if held else None,
        "rollback": "ansible-playbook playbooks/rollback-502.yml -l %s -e wp502_run_id=%s" % (
            run.get("host"), run["run_id"]) if held else None,
        "next_step": _next_step(run, rungs, healed),
    }
    result.update(emergency_outcome(result))
    return result
