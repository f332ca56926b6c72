# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""Controller-side selection of the emergency ladder from the evidence's plan.

The plan itself (which rungs a site's top cause allows, in which order, and which rungs serve several
sites at once) is decided on the host by ``wp502_ladder.plan_ladder`` and returned by ``wp502_evidence``
as ``plan``. This filter only keeps what this run climbs: the steps of the sites that fail now, and
the rungs switched on and selected by --tags/--skip-tags.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: wp502_ladder_for
short_description: The steps of a ladder plan that serve the sites failing now
description:
  - Keeps the steps of O(_input) (C(wp502_evidence)'s C(plan)) that serve at least one site of O(failing), each
    with C(sites) narrowed to those sites, in the plan's order; with O(rungs), only steps of those rungs.
  - A failing site that no step serves (it answered when the evidence asked, and fails now) gets the steps of its
    own plan (O(sites)[].O(key)) after them; a host rung already in the ladder serves it too.
  - Each step gets C(step), a journal step name unique within the run (C(plugins-2)), so that one step can be
    rolled back alone.
positional: failing, rungs, sites, key
options:
  _input:
    description: The plan, a list of C({rung, sites, cause, scope}).
    type: list
    elements: dict
    required: true
  failing:
    description: Ids of the sites that fail now.
    type: list
    elements: str
    required: true
  rungs:
    description: The rungs that may be climbed (all when omitted).
    type: list
    elements: str
  sites:
    description: The evidence's sites, each with its own plan.
    type: list
    elements: dict
  key:
    description: Which of a site's plans to use (C(plan), or C(plan_every) for every rung).
    type: str
    default: plan
"""


def wp502_ladder_for(plan, failing, rungs=None, sites=None, key="plan"):
    """The plan's steps for the sites in ``failing`` (narrowed to them), of the rungs in ``rungs``.

    A failing site no step serves (it answered when the evidence asked, and fails now) gets the steps
    of its own plan (``sites[i][key]``) after them: a host rung already in the ladder serves it too."""
    failing = list(failing or [])
    steps = []
    for item in plan or []:
        served = [s for s in item.get("sites") or [] if s in failing]
        if served:
            steps.append(dict(item, sites=served))
    covered = set(s for step in steps for s in step["sites"])
    for site in sites or []:
        if site.get("id") not in failing or site.get("id") in covered:
            continue
        for item in site.get(key) or []:
            same = next((st for st in steps if item.get("scope") == "host" and st.get("scope") == "host"
                         and st.get("rung") == item.get("rung")), None)
            if same is not None:
                same["sites"] = same["sites"] + [site["id"]]
            else:
                steps.append(dict(item, sites=[site["id"]]))
    chosen = [step for step in steps if rungs is None or step.get("rung") in rungs]
    for n, step in enumerate(chosen, 1):
        step["step"] = "%s-%d" % (step.get("rung"), n)
    return chosen


class FilterModule:
    def filters(self):
        return {"wp502_ladder_for": wp502_ladder_for}
