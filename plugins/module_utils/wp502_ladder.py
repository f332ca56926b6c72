# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""Decisions of the emergency ladder, as pure functions (standard library only).

:func:`find_culprits` finds the plugins to leave out by bisection, given a ``probe(active) -> bool``
that activates exactly ``active`` (in order) and tells whether the site healed. For one culprit among
n plugins it needs at most ceil(log2 n) + 1 probes (the seed's batches of five need about n/5 + 5).
"""

from __future__ import absolute_import, division, print_function

import math

__metaclass__ = type


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
