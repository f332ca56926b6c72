"""wp502_ask: the sites asked after a change (wp502_probe, and wp502_run's probe after a restart or reload),
and wp502_ladder.failing_at_origin, which makes the emergency take a host in the evidence's round trip."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import wp502_ask as ask
import wp502_ladder

SITES = [{"id": "a", "host": "a.test", "port": 80}, {"id": "b", "probe_host": "b.internal", "host": "b.test",
                                                     "port": 8080, "scheme": "https", "url": "https://b.test"}]


class Answers:
    """A stand-in for wp502_http.probe_sites that answers each try from a script: try n -> {id: status}."""

    def __init__(self, *tries):
        self.tries = list(tries)
        self.asked = []

    def __call__(self, targets, deadline, cookie_paths=(), paths=()):
        self.asked.append([t["host"] for t in targets])
        codes = self.tries[min(len(self.asked), len(self.tries)) - 1]
        return {"sites": {sid: {"origin": {p: {"status": code, "elapsed": 0.01, "cookie": True} for p in paths}}
                          for sid, code in codes.items()}, "skipped": [], "seconds": 0.02}


def run(answers, **kw):
    slept = []
    got = ask.ask_sites(SITES, 5, paths=("/",), sleep=slept.append, probe=answers, **kw)
    return got, slept


def test_targets_take_the_probe_host_and_keep_port_scheme_and_url():
    assert ask.targets_from(SITES) == [
        {"id": "a", "host": "a.test", "port": 80, "scheme": "http", "url": None},
        {"id": "b", "host": "b.internal", "port": 8080, "scheme": "https", "url": "https://b.test"}]


@pytest.mark.parametrize(("sites", "message"), [
    ([{"id": "a"}, {"id": "a"}], "unique id"),
    ([{"host": "x"}], "unique id"),
    ([{"id": "a", "port": 70000}], "port must be"),
    ([{"id": "a", "scheme": "ftp"}], "scheme http or https"),
    ([{"id": "a", "url": "ftp://x"}], "url must be"),
])
def test_a_bad_site_is_refused_with_what_is_wrong(sites, message):
    with pytest.raises(ValueError, match=message):
        ask.ask_sites(sites, 5, probe=Answers({}))


@pytest.mark.parametrize(("kw", "message"), [
    ({"deadline": 0}, "deadline"), ({"deadline": 121}, "deadline"), ({"retries": 61}, "retries"),
    ({"delay": -1}, "delay"), ({"paths": ("wp-login.php",)}, "paths must start with /"), ({"paths": ()}, "none given"),
])
def test_bounds_are_checked_before_anything_is_asked(kw, message):
    answers = Answers({"a": 200, "b": 200})
    args = dict({"deadline": 5, "paths": ("/",)}, **kw)
    with pytest.raises(ValueError, match=message):
        ask.ask_sites(SITES, args.pop("deadline"), probe=answers, **args)
    assert answers.asked == []


def test_retried_until_the_change_healed_every_failing_site():
    answers = Answers({"a": 502, "b": 200}, {"a": 502, "b": 200}, {"a": 200, "b": 200})
    got, slept = run(answers, answering=["b"], retries=3, delay=2)
    assert got["tries"] == 3 and slept == [2, 2]
    assert got["healthy"] and got["failing"] == []
    assert got["judgement"] == {"healed": True, "answering": ["a", "b"], "failing": [], "fixed": ["a"], "broke": []}
    assert answers.asked[0] == ["a.test", "b.internal"]


def test_retries_run_out_and_say_which_site_still_fails():
    got, slept = run(Answers({"a": 502, "b": 200}), answering=["b"], retries=2, delay=1)
    assert got["tries"] == 3 and slept == [1, 1]
    assert not got["healthy"] and got["failing"] == ["a"] and not got["judgement"]["healed"]


def test_with_expect_a_step_for_one_site_does_not_wait_on_another_it_cannot_heal():
    got, slept = run(Answers({"a": 200, "b": 502}), answering=[], expect=["a"], retries=3)
    assert got["tries"] == 1 and slept == []
    assert got["judgement"]["fixed"] == ["a"] and not got["judgement"]["healed"]


def test_a_site_that_answered_and_fails_now_is_broken_by_the_change():
    got, _slept = run(Answers({"a": 200, "b": 502}), answering=["a", "b"], expect=[], retries=0)
    assert got["judgement"]["broke"] == ["b"] and not got["judgement"]["healed"]


@pytest.mark.parametrize(("kw", "message"), [
    ({"answering": ["zz"]}, "answering names sites"), ({"expect": ["a"]}, "expect needs answering"),
    ({"answering": [], "expect": ["zz"]}, "not: zz"),
])
def test_unknown_ids_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        run(Answers({"a": 200, "b": 200}), **kw)


def test_without_answering_healthy_means_every_site_answers():
    got, _slept = run(Answers({"a": 200, "b": 200}))
    assert got["healthy"] and "judgement" not in got


@pytest.mark.parametrize(("sites", "failing"), [
    ([], []),
    ([{"id": "a", "http": {"origin_healthy": True}}], []),
    ([{"id": "a", "http": {"origin_healthy": True}}, {"id": "b", "http": {"origin_healthy": False}}], ["b"]),
    ([{"id": "a", "http": {"origin_healthy": None}}], ["a"]),  # the probe could not run: not known to answer
    ([{"id": "a"}], ["a"]),
])
def test_failing_at_origin(sites, failing):
    assert wp502_ladder.failing_at_origin(sites) == failing


PLAN = [{"rung": "restart_fpm", "sites": ["a", "b"], "cause": "fpm_down", "scope": "host"},
        {"rung": "plugins", "sites": ["b"], "cause": "crashing_worker", "scope": "site"},
        {"rung": "bom", "sites": ["c"], "cause": "bom", "scope": "site"}]


@pytest.mark.parametrize("failing", [[], ["a"], ["b"], ["c"], ["a", "c"], ["d"]])
@pytest.mark.parametrize("rungs", [None, [], ["plugins"], ["bom"], ["restart_fpm", "bom"], ["frontend"]])
def test_climbs_exactly_when_the_emergency_ladder_for_those_sites_is_not_empty(failing, rungs):
    # The controller filter the playbook decides its ladder with.
    spec = importlib.util.spec_from_file_location("wp502_steps_filter", Path(__file__).resolve().parents[2] / "plugins"
                                                  / "filter" / "wp502_steps.py")
    steps = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(steps)
    ladder = steps.wp502_ladder_for(PLAN, failing, rungs)
    assert wp502_ladder.climbs(PLAN, failing, rungs) is bool(ladder)
