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


# ---- plan_ladder and judge: sites, not hosts ----------------------------------------------------------

def failing(site_id, cause, pools=("www",), services=("php8.2-fpm",), fail=True):
    import wp502_verdict as v
    return {"id": site_id, "failing": fail, "top_cause": cause, "pools": list(pools), "fpm_services": list(services),
            "verdict": [{"cause": cause, "confidence": 0.9, "rungs": list(v.RUNGS[cause])}]}


def test_fpm_down_on_a_shared_pool_is_one_restart_for_both_sites():
    plan = lad.plan_ladder([failing("a.test", "fpm_down"), failing("b.test", "fpm_down")])
    assert plan == [{"rung": "restart_fpm", "sites": ["a.test", "b.test"], "cause": "fpm_down", "scope": "host",
                     "services": ["php8.2-fpm"]}]


def test_only_failing_sites_and_only_their_top_cause():
    sites = [failing("a.test", "slow_plugin"), failing("b.test", "pool_saturated", fail=False)]
    # b answers: nothing for it; a's verdict may list other causes, only the top one's rungs are climbed
    sites[0]["verdict"].append({"cause": "crashing_worker", "confidence": 0.5, "rungs": ["restart_fpm", "plugins"]})
    assert lad.plan_ladder(sites) == [{"rung": "plugins", "sites": ["a.test"], "cause": "slow_plugin", "scope": "site"}]


def test_two_sites_broken_two_ways_keep_their_order_and_share_host_rungs():
    sites = [failing("a.test", "pool_saturated", pools=["a"]), failing("b.test", "mysql_down"),
             failing("c.test", "crashing_worker", pools=["c"], services=["php7.4-fpm"])]
    plan = lad.plan_ladder(sites)
    steps = [(p["rung"], p["sites"]) for p in plan]
    # first steps first (host rungs before site rungs), then second steps...; restart_fpm waits for a's reload
    assert steps == [("reload_fpm", ["a.test"]), ("restart_db", ["b.test"]), ("restart_fpm", ["a.test", "c.test"]),
                     ("plugins", ["c.test"]), ("plugins", ["a.test"]), ("pool_limits", ["a.test"])]
    restart = next(p for p in plan if p["rung"] == "restart_fpm")
    assert restart["services"] == ["php8.2-fpm", "php7.4-fpm"] and restart["scope"] == "host"
    assert "services" not in next(p for p in plan if p["rung"] == "restart_db")
    # every site's rungs keep the order of its cause
    for site in sites:
        mine = [p["rung"] for p in plan if site["id"] in p["sites"]]
        assert mine == site["verdict"][0]["rungs"]
    assert lad.plan_ladder(sites) == plan  # deterministic


def test_enabled_filters_rungs_and_causes_without_rungs_add_nothing():
    sites = [failing("a.test", "pool_saturated"), failing("b.test", "socket_mismatch"), failing("c.test", "cdn_only")]
    plan = lad.plan_ladder(sites, enabled=["restart_fpm", "pool_limits"])
    assert [(p["rung"], p["sites"]) for p in plan] == [("restart_fpm", ["a.test"]), ("pool_limits", ["a.test"])]
    assert lad.plan_ladder([]) == []


def test_a_site_without_a_verdict_list_uses_its_top_cause():
    assert lad.plan_ladder([{"id": "a", "failing": True, "top_cause": "bom"}]) == [
        {"rung": "bom", "sites": ["a"], "cause": "bom", "scope": "site"}]


@pytest.mark.parametrize(("before", "after", "expected"), [
    ({"a": False, "b": True}, {"a": True, "b": True},
     {"healed": True, "answering": ["a", "b"], "failing": [], "fixed": ["a"], "broke": []}),
    # the rung healed a and broke b: not healed
    ({"a": False, "b": True}, {"a": True, "b": False},
     {"healed": False, "answering": ["a"], "failing": ["b"], "fixed": ["a"], "broke": ["b"]}),
    # one of two failing sites still fails
    ({"a": False, "b": False, "c": True}, {"a": True, "b": False, "c": True},
     {"healed": False, "answering": ["a", "c"], "failing": ["b"], "fixed": ["a"], "broke": []}),
    # a site that is not probed any more counts as failing
    ({"a": False, "b": True}, {"a": True},
     {"healed": False, "answering": ["a"], "failing": ["b"], "fixed": ["a"], "broke": ["b"]}),
    ({"a": True}, {"a": True}, {"healed": True, "answering": ["a"], "failing": [], "fixed": [], "broke": []}),
])
def test_judge(before, after, expected):
    assert lad.judge(before, after) == expected


def test_every_puts_the_rest_of_the_ladder_after_the_top_causes_rungs():
    """wp502_emergency_ignore_verdict: the verdict's rungs first, then every other rung, in ladder order."""
    sites = [{"id": "a", "failing": True, "top_cause": "bom", "fpm_services": ["php8.2-fpm"]},
             {"id": "b", "failing": False, "top_cause": "healthy"}]
    plan = lad.plan_ladder(sites, every=True)
    assert [item["rung"] for item in plan] == ["bom", "reload_fpm", "restart_fpm", "restart_db", "plugins", "pool_limits",
                                               "frontend"]
    assert all(item["sites"] == ["a"] for item in plan)
    assert sorted(item["rung"] for item in plan) == sorted(lad.LADDER)
    assert [item["rung"] for item in lad.plan_ladder(sites)] == ["bom"]
