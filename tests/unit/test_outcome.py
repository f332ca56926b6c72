"""wp502_outcome: the rung record and the run's result, worked out once for the host (wp502_run's release) and
the controller (the role's filters), and the outcome line every surface prints."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import wp502_outcome as out

ROOT = Path(__file__).resolve().parents[2]


def asked(statuses, judgement=None):
    """What wp502_probe (or wp502_run's probe) returns for sites ``{id: [status, ...]}``."""
    paths = ["/", "/wp-login.php"]
    sites = {sid: {"origin": dict(zip(paths[:len(got)], [{"status": s} for s in got], strict=True))}
             for sid, got in statuses.items()}
    return {"sites": sites, "judgement": judgement} if judgement is not None else {"sites": sites}


STEP = {"step": "plugins-2", "sites": ["a", "b"], "cause": "crashing_worker", "rung": "plugins", "scope": "site"}


def test_a_rung_is_recorded_from_what_the_sites_answered():
    answered = asked({"a": [200, 200], "b": [502, None]},
                     {"healed": False, "fixed": ["a"], "broke": [], "failing": ["b"], "answering": ["a"]})
    rec = out.rung_record("plugins", STEP, answered, seconds=1.23456, note="  took out x \n",
                          detail={"culprits": ["x"], "changed": False})
    assert rec == {"rung": "plugins", "step": "plugins-2", "sites": ["a", "b"], "cause": "crashing_worker",
                   "healed": False, "fixed": ["a"], "broke": [], "failing": ["b"], "failed": False, "rolled_back": False,
                   "changed": False, "planned": False, "seconds": 1.23, "origin": [200, 200, 502, None],
                   "note": "took out x", "culprits": ["x"]}


@pytest.mark.parametrize("answered", [None, {"skipped": True, "changed": False}, {}])
def test_a_rung_the_sites_were_not_asked_after_did_not_heal(answered):
    rec = out.rung_record("restart_fpm", {"step": "restart_fpm-1", "sites": ["a"]}, answered, failed=True)
    assert (rec["healed"], rec["fixed"], rec["origin"], rec["failed"], rec["cause"]) == (False, [], [], True, None)


def test_in_check_mode_a_rung_is_planned_and_changed_nothing():
    rec = out.rung_record("bom", {"step": "bom-1", "sites": ["a"]}, None, check_mode=True, note="strip 2 files")
    assert rec["planned"] is True and rec["changed"] is False and rec["note"] == "strip 2 files"


def run(**given):
    base = {"run_id": "20261201T213005-wp1-3f9a2c", "host": "wp1", "state_dir": "/var/lib/wp502", "finished_at": "T",
            "check_mode": False, "locked": True, "top_cause": "crashing_worker",
            "verdict": [{"cause": "crashing_worker", "next_step": "read the PHP-FPM log"}, {}, {}, {}],
            "sites": [{"id": "a", "top_cause": "crashing_worker"}, {"id": "b", "top_cause": "healthy"}],
            "baseline": {"a": {"origin": {"/": {"status": 502}}}, "b": {"origin": {"/": {"status": 200}}}},
            "answering_start": ["b"]}
    base.update(given)
    base.setdefault("site_probes", base["baseline"])
    return base


def test_a_healed_run_names_the_rung_the_culprits_and_how_to_undo_it():
    rungs = [{"rung": "restart_fpm", "healed": False, "fixed": [], "sites": ["a"], "rolled_back": False},
             {"rung": "plugins", "healed": False, "fixed": ["a"], "sites": ["a"], "culprits": ["bad"], "rolled_back": True},
             {"rung": "plugins", "healed": True, "fixed": ["a"], "sites": ["a"], "culprits": ["bad", "worse"],
              "rolled_back": False}]
    result = out.run_result(run(healed=True, rungs=rungs, answering=["a", "b"],
                                site_probes={"a": {"origin": {"/": {"status": 200}}}, "b": {"origin": {"/": {"status": 200}}}}))
    assert (result["healed"], result["healed_by"], result["culprits"], result["failing"]) == (True, "plugins", ["bad", "worse"], [])
    assert result["journal"] == "/var/lib/wp502/runs/20261201T213005-wp1-3f9a2c"
    assert result["rollback"] == "ansible-playbook playbooks/rollback-502.yml -l wp1 -e wp502_run_id=20261201T213005-wp1-3f9a2c"
    assert result["next_step"] == "" and len(result["verdict"]) == 3 and result["finished_at"] == "T"
    assert (result["state"], result["ok"]) == ("healed", True)
    assert result["line"] == "healed 1 of 1 failing site: a by plugins (culprits bad, worse)"
    assert [(s["site"], s["state"], s["before"], s["after"]) for s in result["sites"]] == [
        ("a", "healed", "502", "200"), ("b", "healthy", "200", "200")]
    # The run's culprits: each once, from every rung that fixed a site and was kept.
    twice = [*rungs[:2], dict(rungs[2], culprits=["worse"]), dict(rungs[2], culprits=["bad", "worse"])]
    assert out.run_result(run(healed=True, rungs=twice, answering=["a", "b"]))["culprits"] == ["worse", "bad"]


@pytest.mark.parametrize(("given", "state", "next_step"), [
    ({"refused": "run r0 holds this host", "locked": False}, "refused", "nothing was changed on the host: run r0 holds this host"),
    ({"unreachable": "ssh: connect refused", "locked": False, "sites": []}, "unreachable",
     "reach the host (SSH, become) and run again"),
    ({"check_mode": True, "rungs": [{"rung": "restart_fpm", "planned": True, "sites": ["a"]}]}, "planned",
     "run without --check to climb the rungs above"),
    ({"rungs": [{"rung": "restart_fpm", "healed": False, "fixed": []}]}, "not_healed", "read the PHP-FPM log"),
    ({"verdict": [], "rungs": [{"rung": "restart_fpm"}, {"rung": "plugins"}]}, "not_healed",
     "the ladder did not heal it (restart_fpm, plugins): read the evidence of the top causes and act by hand"),
    ({"verdict": [], "stopped": "no rung applies to unknown (a)"}, "stopped",
     "the ladder did not heal it (no rung was climbed): read the evidence of the top causes and act by hand"),
])
def test_a_run_left_broken_says_what_to_do_next(given, state, next_step):
    result = out.run_result(run(answering=["b"], **given))
    assert (result["state"], result["ok"], result["next_step"]) == (state, False, next_step)
    assert result["failing"] == (["a"] if result["sites"] else [])
    held = given.get("locked", True) and not given.get("check_mode")
    assert (result["journal"] is not None, result["rollback"] is not None) == (held, held)


def test_finished_at_is_utc_without_an_offset():
    stamp = out.run_result(run(finished_at=None))["finished_at"]
    assert len(stamp) >= 19 and stamp[10] == "T" and "+" not in stamp


def test_the_filters_and_the_module_share_one_file():
    spec = importlib.util.spec_from_file_location("wp502_report_filters", ROOT / "plugins" / "filter" / "wp502_report.py")
    rep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rep)
    assert Path(rep._OUTCOME.__file__).resolve() == ROOT / "plugins" / "module_utils" / "wp502_outcome.py"
    given = run(healed=True, answering=["a", "b"], rungs=[{"rung": "restart_fpm", "healed": True, "fixed": ["a"]}])
    assert rep.wp502_emergency_run_result(given) == out.run_result(given)
    assert rep.wp502_emergency_rung(None, "bom", {"step": "bom-1"}) == out.rung_record("bom", {"step": "bom-1"}, None)
