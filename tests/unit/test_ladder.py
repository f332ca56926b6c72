"""wp502_ladder: bisection finds the culprit plugins within its probe budget."""

from __future__ import annotations

import itertools
import math

import pytest
import wp502_ladder as lad


def site(culprits, together=()):
    """A probe: broken when any culprit is active, or when every plugin of `together` is."""
    def probe(active):
        active = set(active)
        if active & set(culprits):
            return False
        return not (together and set(together) <= active)
    return probe


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 20, 40])
def test_one_culprit_anywhere_within_log2_plus_one(n):
    plugins = [f"p{i}" for i in range(n)]
    budget = math.ceil(math.log2(n)) + 1 if n > 1 else 1
    assert lad.probe_budget(n) == budget
    for culprit in plugins:
        res = lad.find_culprits(plugins, site([culprit]))
        assert res["culprits"] == [culprit]
        assert res["complete"]
        assert res["probes"] <= budget, (n, culprit, res["trail"])


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(range(8), 2)))
def test_two_independent_culprits(a, b):
    plugins = [f"p{i}" for i in range(8)]
    res = lad.find_culprits(plugins, site([plugins[a], plugins[b]]))
    assert res["culprits"] == [plugins[a], plugins[b]]
    assert res["complete"] and res["probes"] <= lad.probe_budget(8, 2)


def test_a_pair_that_breaks_only_together_names_the_later_one():
    plugins = ["cache", "seo", "shop", "forms"]
    res = lad.find_culprits(plugins, site([], together=("seo", "forms")))
    assert res["culprits"] == ["forms"]
    assert res["complete"]


def test_every_plugin_kept_is_active_in_the_final_probe():
    plugins = [f"p{i}" for i in range(10)]
    seen = []

    def probe(active):
        seen.append(active)
        return "p6" not in active

    res = lad.find_culprits(plugins, probe)
    assert res["culprits"] == ["p6"]
    assert seen[-1] == [p for p in plugins if p != "p6"]


@pytest.mark.parametrize("limit", [1, 3, 6])
def test_the_probe_limit_holds_even_on_a_flapping_site(limit):
    calls = itertools.count()
    res = lad.find_culprits([f"p{i}" for i in range(16)], lambda active: next(calls) % 2 == 0, max_probes=limit)
    assert res["probes"] <= limit


def test_running_out_of_probes_is_reported():
    res = lad.find_culprits([f"p{i}" for i in range(16)], site(["p9"]), max_probes=3)
    assert not res["complete"] and res["probes"] == 3
