"""The wp502_run module: one emergency run per host, storm control, and rollback through Ansible."""

from __future__ import annotations

import json
import os

import pytest
import wp502_journal
import wp502_run as mod


def test_lock_refuse_release_and_storm_control(tmp_path, run_module):
    state = str(tmp_path)
    first = run_module(mod, state="locked", run_id="r1", state_dir=state)
    assert first["_rc"] == 0 and first["changed"] and first["lock"]["run_id"] == "r1"
    second = run_module(mod, state="locked", run_id="r2", state_dir=state)
    assert second["_rc"] == 1 and "run r1 holds this host" in second["msg"]
    assert run_module(mod, state="unlocked", run_id="r1", state_dir=state)["changed"]
    storm = run_module(mod, state="locked", run_id="r2", state_dir=state)
    assert storm["_rc"] == 1 and "remediation storm" in storm["msg"]
    forced = run_module(mod, state="locked", run_id="r2", state_dir=state, force=True)
    assert forced["_rc"] == 0 and forced["lock"]["run_id"] == "r2"
    calm = run_module(mod, state="locked", run_id="r3", state_dir=state, storm_minutes=0)
    assert calm["_rc"] == 1  # storm control off, but r2 is alive


def test_a_run_that_changed_nothing_does_not_arm_storm_control(tmp_path, run_module):
    state = str(tmp_path)
    assert run_module(mod, state="locked", run_id="r1", state_dir=state)["_rc"] == 0
    assert run_module(mod, state="unlocked", run_id="r1", state_dir=state, storm=False)["changed"]
    assert not (tmp_path / "last_end").exists()
    assert run_module(mod, state="locked", run_id="r2", state_dir=state)["_rc"] == 0  # not refused as a storm


def test_check_mode_writes_nothing(tmp_path, run_module):
    out = run_module(mod, state="locked", run_id="r1", state_dir=str(tmp_path), _ansible_check_mode=True)
    assert out["_rc"] == 0 and out["changed"]
    assert not (tmp_path / "lock").exists()


def test_rollback_of_one_step_then_of_the_last_run(tmp_path, run_module):
    conf = tmp_path / "www.conf"
    conf.write_bytes(b"pm.max_children = 5\n")
    journal = wp502_journal.Journal("r9", str(tmp_path / "state"))
    journal.acquire()
    journal.intend_value("plugins", "active_plugins", "613a303a7b7d")  # no database recorded: cannot go back
    seq = journal.intend_file("pool_limits", str(conf))
    conf.write_bytes(b"pm.max_children = 50\n")
    journal.done(seq)
    preview = run_module(mod, state="rolled_back", state_dir=str(tmp_path / "state"), _ansible_check_mode=True)
    assert preview["changed"] and len(preview["undone"]) == 2 and conf.read_bytes() == b"pm.max_children = 50\n"
    assert preview["touched"] == ["plugins", "fpm"]
    assert preview["restored_values"] == [{"name": "active_plugins", "before": "613a303a7b7d", "where": {}}]
    assert "values" not in preview  # renamed: ansible-core 2.21 refuses a return key named values
    out = run_module(mod, state="rolled_back", step="pool_limits", state_dir=str(tmp_path / "state"))
    assert out["run_id"] == "r9" and out["changed"] and [e["step"] for e in out["undone"]] == ["pool_limits"]
    assert conf.read_bytes() == b"pm.max_children = 5\n"
    again = run_module(mod, state="rolled_back", step="pool_limits", state_dir=str(tmp_path / "state"))
    assert not again["changed"]
    rest = run_module(mod, state="rolled_back", state_dir=str(tmp_path / "state"))
    assert rest["_rc"] == 1 and "active_plugins has no database to go back to" in rest["msg"]
    assert "run it again" in rest["msg"]


def test_rollback_refuses_while_a_step_of_the_run_still_works(tmp_path, run_module):
    journal = wp502_journal.Journal("r10", str(tmp_path))
    journal.acquire()
    journal.heartbeat(worker=os.getpid())  # this test's own python process stands for the step
    out = run_module(mod, state="rolled_back", run_id="r10", state_dir=str(tmp_path))
    assert out["_rc"] == 1 and f"still working on this host (pid {os.getpid()})" in out["msg"]
    journal.heartbeat()
    assert run_module(mod, state="rolled_back", run_id="r10", state_dir=str(tmp_path))["_rc"] == 0


@pytest.mark.parametrize(("args", "message"), [
    ({"state": "locked"}, "state is locked but all of the following are missing: run_id"),
    ({"state": "locked", "run_id": "../etc"}, "must be letters"),
    ({"state": "rolled_back"}, "no run to roll back"),
])
def test_bad_input(tmp_path, run_module, args, message):
    out = run_module(mod, state_dir=str(tmp_path), **args)
    assert out["_rc"] == 1 and message in out["msg"]


def test_a_refusal_names_the_run_holding_the_host_its_origin_and_what_to_do(tmp_path, run_module):
    state = str(tmp_path)
    holder = "20261201T213005-wp1-3f9a2c"
    owner = {"controller": "ops1", "user": "alice", "pid": 4242, "host": "wp1"}
    assert run_module(mod, state="locked", run_id=holder, state_dir=state, owner=owner)["_rc"] == 0
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    for check in (True, False):
        out = run_module(mod, state="locked", run_id="20261201T213005-wp1-9e01b7", state_dir=state,
                         owner={"controller": "ops2", "user": "bob", "host": "wp1"}, _ansible_check_mode=check)
        assert out["_rc"] == 1 and out["failed"]
        assert out["msg"].startswith(f"run {holder} holds this host: taken 20")
        assert "from controller ops1 as alice (pid 4242); last heartbeat 20" in out["msg"]
        assert "-e wp502_emergency_force=true" in out["msg"]
        assert f"ansible-playbook playbooks/rollback-502.yml -l wp1 -e wp502_run_id={holder}" in out["msg"]
        assert out["lock"]["run_id"] == holder and out["lock"]["owner"] == owner
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before  # nothing left behind


def test_the_owner_comes_from_the_environment_when_the_caller_does_not_say(tmp_path, run_module, monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "192.0.2.7 51234 192.0.2.10 22")
    monkeypatch.setenv("SUDO_USER", "carol")
    out = run_module(mod, state="locked", run_id="r1", state_dir=str(tmp_path / "a"))
    assert out["lock"]["owner"] == {"controller": "192.0.2.7", "user": "carol"}
    out = run_module(mod, state="locked", run_id="r1", state_dir=str(tmp_path / "b"), owner={"controller": "ops1"})
    assert out["lock"]["owner"] == {"controller": "ops1", "user": "carol"}
    clash = run_module(mod, state="locked", run_id="r1", state_dir=str(tmp_path / "b"), owner={"controller": "ops9"})
    assert clash["_rc"] == 1 and "two runs were given the same run id" in clash["msg"]


@pytest.fixture
def origin():
    """A WordPress stand-in on 127.0.0.1: / answers 200."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_a_reload_asks_the_sites_in_the_same_round_trip_as_wp502_probe_would(origin, run_module):
    probe = {"sites": [{"id": "a", "host": "a.test", "port": origin}], "answering": [], "expect": ["a"],
             "paths": ["/"], "cookie_paths": []}
    out = run_module(mod, state="reloaded", services=[], probe=probe)
    assert out["_rc"] == 0, out
    assert out["probe"]["healthy"] and out["probe"]["tries"] == 1
    assert out["probe"]["judgement"] == {"healed": True, "answering": ["a"], "failing": [], "fixed": ["a"], "broke": []}
    assert out["probe"]["sites"]["a"]["origin"]["/"]["status"] == 200
    # In check mode nothing was reloaded, so nothing is asked.
    assert "probe" not in run_module(mod, state="reloaded", services=[], probe=probe, _ansible_check_mode=True)
    bad = run_module(mod, state="reloaded", services=[], probe=dict(probe, answering=["zz"]))
    assert bad["_rc"] == 1 and "probe: answering names sites that are not in sites: zz" in bad["msg"]


def _release_args(state_dir, run_id="r1", port=1, **run):
    """A restart or reload's probe of one site, "a", that failed before, with the run so far as the role passes it."""
    probe = {"sites": [{"id": "a", "host": "a.test", "port": port}], "answering": [], "expect": ["a"],
             "paths": ["/"], "cookie_paths": [], "deadline": 1}
    so_far = {"run_id": run_id, "host": "wp1", "state_dir": state_dir, "check_mode": False, "locked": True,
              "refused": "", "unreachable": "", "top_cause": "fpm_down",
              "verdict": [{"cause": "fpm_down", "next_step": "start PHP-FPM"}], "stopped": "", "healed": False,
              "rungs": [], "sites": [{"id": "a", "names": ["a.test"], "top_cause": "fpm_down", "signatures": ["connect_refused"]}],
              "targets": probe["sites"], "baseline": {"a": {"origin": {"/": {"status": 502}}}},
              "site_probes": {"a": {"origin": {"/": {"status": 502}}}}, "answering_start": [], "answering": []}
    so_far.update(run)
    release = {"run": so_far, "rung": "restart_fpm", "elapsed": 0.25,
               "step": {"step": "restart_fpm-1", "sites": ["a"], "cause": "fpm_down", "rung": "restart_fpm"}}
    return probe, release


def test_a_restart_that_heals_every_site_ends_the_run_in_its_round_trip(tmp_path, run_module, monkeypatch, origin):
    state = str(tmp_path / "state")
    assert run_module(mod, state="locked", run_id="r1", state_dir=state)["_rc"] == 0
    systemctl = tmp_path / "systemctl"
    systemctl.write_text('#!/bin/sh\ncase "$1" in show) printf "LoadState=loaded\\nActiveState=failed\\n";; esac\nexit 0\n')
    systemctl.chmod(0o755)
    monkeypatch.setattr(mod, "which", lambda *names: str(systemctl) if "systemctl" in names else None)
    probe, release = _release_args(state, port=origin)
    out = run_module(mod, state="restarted", services=["php8.2-fpm"], probe=probe, release=release)
    assert out["_rc"] == 0, out
    assert out["released"]["released"] is True
    kept = json.loads((tmp_path / "state" / "runs" / "r1" / "result.json").read_text())
    assert kept == out["released"]["result"]
    assert (kept["state"], kept["ok"], kept["line"]) == ("healed", True, "healed 1 of 1 failing site: a by restart_fpm")
    assert kept["healed"] and kept["healed_by"] == "restart_fpm" and kept["failing"] == [] and kept["next_step"] == ""
    assert kept["journal"] == state + "/runs/r1"
    assert kept["rollback"] == "ansible-playbook playbooks/rollback-502.yml -l wp1 -e wp502_run_id=r1"
    rung = kept["rungs"][-1]
    assert (rung["rung"], rung["step"], rung["healed"], rung["fixed"], rung["changed"], rung["origin"]) == (
        "restart_fpm", "restart_fpm-1", True, ["a"], True, [200])
    assert rung["seconds"] >= 0.25  # the controller's part of the step, then this round trip
    assert [(s["site"], s["before"], s["after"], s["state"]) for s in kept["sites"]] == [("a", "502", "200", "healed")]
    # The host is free, and storm control counts the run (it restarted a unit).
    assert not (tmp_path / "state" / "lock").exists()
    assert json.loads((tmp_path / "state" / "last_end").read_text())["run_id"] == "r1"


def test_a_probe_that_does_not_heal_leaves_the_run_to_the_controller(tmp_path, run_module):
    state = str(tmp_path)
    assert run_module(mod, state="locked", run_id="r1", state_dir=state)["_rc"] == 0
    probe, release = _release_args(state)  # nobody answers on port 1
    out = run_module(mod, state="reloaded", services=[], probe=probe, release=release)
    assert out["_rc"] == 0 and out["probe"]["judgement"]["healed"] is False
    assert "released" not in out and out["note"] == "nothing was running to reload"
    assert json.loads((tmp_path / "lock").read_text())["run_id"] == "r1"
    assert not (tmp_path / "runs" / "r1" / "result.json").exists()


@pytest.mark.parametrize("holder", [None, "r2"])
def test_a_heal_releases_only_a_lock_this_run_holds(tmp_path, run_module, origin, holder):
    state = str(tmp_path)
    if holder:
        assert run_module(mod, state="locked", run_id=holder, state_dir=state)["_rc"] == 0
    probe, release = _release_args(state, port=origin, locked=holder is not None)
    out = run_module(mod, state="reloaded", services=[], probe=probe, release=release)
    assert out["_rc"] == 0 and out["probe"]["judgement"]["healed"] is True
    assert out["released"] == {"released": False, "result": None}
    assert not (tmp_path / "runs" / "r1").exists()
    if holder:
        assert json.loads((tmp_path / "lock").read_text())["run_id"] == holder  # another run's lock stays
    assert not (tmp_path / "last_end").exists()


def test_check_mode_never_ends_the_run(tmp_path, run_module, origin):
    state = str(tmp_path)
    assert run_module(mod, state="locked", run_id="r1", state_dir=state)["_rc"] == 0
    probe, release = _release_args(state, port=origin)
    out = run_module(mod, state="reloaded", services=[], probe=probe, release=release, _ansible_check_mode=True)
    assert out["_rc"] == 0 and "probe" not in out and "released" not in out
    assert json.loads((tmp_path / "lock").read_text())["run_id"] == "r1"


def test_unlocked_keeps_the_result_of_a_run_that_changed_nothing(tmp_path, run_module):
    state = str(tmp_path)
    assert run_module(mod, state="locked", run_id="r1", state_dir=state)["_rc"] == 0
    out = run_module(mod, state="unlocked", run_id="r1", state_dir=state, storm=False, result={"line": "stopped: healthy"})
    assert out["changed"] and not (tmp_path / "lock").exists() and not (tmp_path / "last_end").exists()
    assert json.loads((tmp_path / "runs" / "r1" / "result.json").read_text()) == {"line": "stopped: healthy"}
