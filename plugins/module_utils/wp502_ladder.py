# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""Decisions of the emergency ladder, as pure functions (standard library only).

:func:`plan_ladder` orders the rungs for the failing sites of a host, from each one's top cause;
:func:`known_culprit_matches` tells which plugins proved guilty elsewhere a site's evidence points to;
:func:`judge` tells, from every site's answer before and after, whether the host healed and which site broke.

:func:`find_culprits` finds the plugins to leave out by bisection, given a ``probe(active) -> bool``
that activates exactly ``active`` (in order) and tells whether the site healed. For one culprit among
n plugins it needs at most ceil(log2 n) + 1 probes (the seed's batches of five need about n/5 + 5).
"""

from __future__ import absolute_import, division, print_function

import math

from ansible.module_utils.wp502_verdict import HOST_RUNGS, RUNGS

__metaclass__ = type

# Every rung of the emergency ladder, in ladder order (a rung is one tasks file plus its entry here and in
# wp502_verdict.RUNGS for the causes it helps).
LADDER = ("reload_fpm", "restart_fpm", "restart_db", "plugins", "pool_limits", "frontend", "bom")


def probe_budget(n, culprits=1):
    """Probes bisection needs for ``culprits`` culprits among n plugins: ceil(log2 n) + 1 each."""
    if n <= 0:
        return 0
    return culprits * (math.ceil(math.log(n, 2)) + 1) if n > 1 else culprits


def find_culprits(plugins, probe, max_probes=None):
    """The plugins to leave out so that the site works with every other one active.

    Assumes the site is broken with all of ``plugins`` active and healthy with none (the ladder
    checked both). Finds the first culprit by bisecting on prefixes of the list (the longest
    prefix that still works), keeps everything before it, and repeats on the rest; a pair of
    plugins that only break together names the later one. Returns ``{culprits, probes, trail,
    complete}``; ``complete`` is false when ``max_probes`` ran out (culprits found so far are kept).
    """
    plugins = list(plugins)
    trail = []
    culprits = []
    good = []  # active and known to work together
    rest = plugins
    budget = max_probes if max_probes is not None else 10 * probe_budget(len(plugins), max(1, len(plugins)))

    def ask(active):
        healthy = bool(probe(list(active)))
        trail.append({"active": len(active), "healthy": healthy})
        return healthy

    first = True
    while rest:
        # Everything that is left, on top of what works: does it heal? (Known broken the first time.)
        if not first:
            if len(trail) >= budget:
                return {"culprits": culprits, "probes": len(trail), "trail": trail, "complete": False}
            if ask(good + rest):
                good += rest
                rest = []
                break
        first = False
        lo, hi = 0, len(rest)  # good + rest[:lo] works, good + rest[:hi] breaks
        while hi - lo > 1:
            if len(trail) >= budget:
                return {"culprits": culprits, "probes": len(trail), "trail": trail, "complete": False}
            mid = (lo + hi) // 2
            if ask(good + rest[:mid]):
                lo = mid
            else:
                hi = mid
        culprits.append(rest[hi - 1])
        good += rest[:hi - 1]
        rest = rest[hi:]
    # Confirm that everything kept works together, unless the last probe already showed it.
    confirmed = bool(trail) and trail[-1]["healthy"] and trail[-1]["active"] == len(good)
    if not confirmed and len(trail) < budget:
        confirmed = ask(good)
    return {"culprits": culprits, "probes": len(trail), "trail": trail, "complete": bool(confirmed)}


def _top(site):
    verdict = site.get("verdict") or []
    if verdict:
        cause, rungs = verdict[0].get("cause"), list(verdict[0].get("rungs") if "rungs" in verdict[0]
                                                     else RUNGS.get(verdict[0].get("cause"), []))
    else:
        cause = site.get("top_cause")
        rungs = list(RUNGS.get(cause, []))
    # A plugin proved guilty on another host that this site's own evidence points to (not only active here):
    # the plugins rung, when the cause allows it, comes first (one probe heals the site, or it is put back).
    if "plugins" in rungs and any(m.get("strong") for m in site.get("known_culprits") or []):
        rungs = ["plugins"] + [r for r in rungs if r != "plugins"]
    return cause, rungs


def known_culprit_matches(site, known):
    """The plugins proved guilty on other hosts (``known``: records of the wp502_known_culprits lookup,
    ``{plugin, host, site, run_id, at, cause, signatures}``) that are active on ``site``, each with why its
    evidence points to it: ``[{plugin, reasons, strong, from: [{host, site, run_id, at}]}]``, strong ones first.

    Active is required (nothing else can be taken out). ``strong``: more than active, i.e. the site's logs name
    the plugin (its ``suspects``: slowlog, error-log paths) or show a 502-class signature the culprit's site
    showed (``signatures``). A site whose database cannot be read has no active plugin: nothing matches.
    """
    wp = site.get("wordpress") or {}
    active = set(p.get("slug") for p in wp.get("plugins") or [] if p.get("active") is True and p.get("slug"))
    suspects = dict((s.get("slug"), s) for s in site.get("suspects") or [] if s.get("type") == "plugin")
    signatures = set(site.get("signatures") or [])
    matches, order = {}, []
    for record in known or []:
        plugin = (record or {}).get("plugin")
        if not plugin or plugin not in active:
            continue
        m = matches.get(plugin)
        if m is None:
            m = matches[plugin] = {"plugin": plugin, "shared": set(), "from": []}
            order.append(plugin)
        m["shared"] |= signatures & set(record.get("signatures") or [])
        if len(m["from"]) < 5:
            m["from"].append(dict((k, record.get(k)) for k in ("host", "site", "run_id", "at")))
    out = []
    for plugin in order:
        m = matches[plugin]
        reasons = ["active here"]
        named = suspects.get(plugin)
        if named:
            sources = sorted((named.get("sources") or {}).keys())
            reasons.append("named by this site's %s" % (" and ".join(sources) if sources else "logs"))
        if m["shared"]:
            reasons.append("the same signature here (%s)" % ", ".join(sorted(m["shared"])))
        out.append({"plugin": plugin, "reasons": reasons, "strong": len(reasons) > 1, "from": m["from"]})
    return sorted(out, key=lambda m: (not m["strong"], -len(m["reasons"])))


def plan_ladder(sites, enabled=None, every=False):
    """The rungs to climb for a host's failing sites:
    ``[{"rung", "sites": [ids], "cause", "scope": "host"|"site", "services"?}]``.

    Built from each failing site's TOP cause's rungs only (its verdict's first entry, or RUNGS[top_cause]).
    A host rung (HOST_RUNGS: reload_fpm, restart_fpm, restart_db) is one item listing every site it serves,
    with the FPM services of those sites under ``services`` for the FPM rungs; a site rung (plugins, bom,
    pool_limits, frontend) is one item per site. ``enabled`` (rung names) drops the others. ``every``: after its
    top cause's rungs, each failing site also gets every other rung of LADDER, in ladder order (the emergency's
    wp502_emergency_ignore_verdict).

    Order: each site's rungs keep their cause's order (RUNGS), except that a site with a strong known culprit
    (``known_culprits``, :func:`known_culprit_matches`) takes its plugins rung first; across sites, earlier steps come first (all
    first steps, then all second steps...), host rungs before site rungs at the same step, then sites in the
    order given; a shared host rung takes the place of its earliest use. Deterministic for the same input.
    """
    allowed = None if enabled is None else set(enabled)
    items = {}  # key -> item
    rank = {}  # key -> (step, host first, site order, rung order within the site)
    chains = []
    for order, site in enumerate(s for s in sites or [] if s and s.get("failing")):
        cause, rungs = _top(site)
        if every:
            rungs = rungs + [r for r in LADDER if r not in rungs]
        chain = []
        for step, rung in enumerate(r for r in rungs if allowed is None or r in allowed):
            host = rung in HOST_RUNGS
            key = ("host", rung) if host else ("site", rung, site["id"])
            item = items.get(key)
            if item is None:
                item = items[key] = {"rung": rung, "sites": [], "cause": cause, "scope": "host" if host else "site"}
                rank[key] = (step, 0 if host else 1, order, len(chain))
            else:
                rank[key] = min(rank[key], (step, 0 if host else 1, order, len(chain)))
            if site["id"] not in item["sites"]:
                item["sites"].append(site["id"])
            if host and rung != "restart_db":
                services = item.setdefault("services", [])
                services.extend(s for s in site.get("fpm_services") or [] if s not in services)
            chain.append(key)
        chains.append(chain)
    # A stable topological order: every chain's order holds; ties broken by rank.
    after = dict((k, set()) for k in items)
    before_count = dict((k, 0) for k in items)
    for chain in chains:
        for i in range(1, len(chain)):
            a, b = chain[i - 1], chain[i]
            if b not in after[a]:
                after[a].add(b)
                before_count[b] += 1
    ready = sorted((k for k in items if before_count[k] == 0), key=lambda k: rank[k])
    ordered = []
    while ready:
        key = ready.pop(0)
        ordered.append(key)
        for nxt in after[key]:
            before_count[nxt] -= 1
            if before_count[nxt] == 0:
                ready.append(nxt)
        ready.sort(key=lambda k: rank[k])
    # Chains that contradict each other (not possible with today's RUNGS) keep the rank order.
    ordered += sorted((k for k in items if k not in ordered), key=lambda k: rank[k])
    return [items[k] for k in ordered]


def judge(before, after):
    """Did the host heal? ``before`` / ``after`` map site id -> answering (bool).

    Returns ``{healed, answering, failing, fixed, broke}`` (id lists in the order of ``before``, then sites
    only seen after): ``fixed`` failed before and answers now, ``broke`` answered before and fails now (a site
    missing from ``after`` fails). ``healed``: every site that failed answers now and every site that
    answered still does.
    """
    before = dict(before or {})
    after = dict(after or {})
    ids = list(before) + [i for i in after if i not in before]
    now = dict((i, bool(after.get(i))) for i in ids)
    answering = [i for i in ids if now[i]]
    failing = [i for i in ids if not now[i]]
    fixed = [i for i in ids if i in before and not before[i] and now[i]]
    broke = [i for i in ids if i in before and before[i] and not now[i]]
    healed = all(now[i] for i in before if not before[i]) and not broke
    return {"healed": healed, "answering": answering, "failing": failing, "fixed": fixed, "broke": broke}


def failing_at_origin(sites):
    """The ids of the sites (``wp502_evidence``'s ``sites``) that did not answer at their origin: the ladder's
    starting point, and what makes the emergency take the host. A site whose probe could not run (``http.
    origin_healthy`` None) counts as failing, as the ladder counts it; a host with no site has none."""
    return [s.get("id") for s in sites or [] if ((s.get("http") or {}).get("origin_healthy")) is not True]


def climbs(plan, failing, rungs=None):
    """Whether the emergency would climb a rung for the sites in ``failing``: a step of ``plan`` (``plan_ladder``'s
    items) serves one of them with a rung of ``rungs`` (the rungs switched on and chosen by tags; None: any).
    The emergency's ladder for those sites (the ``wp502_ladder_for`` filter) is then not empty; the evidence takes
    the host in its round trip only then, so that a run that can change nothing never holds it."""
    failing = set(failing or [])
    return any(set(item.get("sites") or []) & failing and (rungs is None or item.get("rung") in rungs)
               for item in plan or [])
