"""wp502_journal: the lock, the journal written before each change, and rollback byte for byte."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest
import wp502_journal as j


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def test_one_run_at_a_time_and_stale_locks_are_recovered(tmp_path):
    clock = Clock()
    first = j.Journal("run-1", str(tmp_path), stale_after=600, now=clock)
    assert first.acquire() == {"acquired": True, "recovered": None}
    second = j.Journal("run-2", str(tmp_path), stale_after=600, now=clock)
    with pytest.raises(j.LockedError, match="run run-1 holds this host"):
        second.acquire()
    assert first.acquire()["acquired"]  # the holder may take it again
    clock.t += 601  # run-1 died: no heartbeat for longer than stale_after
    got = second.acquire()
    assert got["recovered"]["run_id"] == "run-1"
    assert j.last_run(str(tmp_path)) == "run-2"
    assert not first.release() and second.release()
    assert not os.path.exists(tmp_path / "lock")


def test_force_takes_a_live_lock(tmp_path):
    j.Journal("a", str(tmp_path)).acquire()
    assert j.Journal("b", str(tmp_path)).acquire(force=True)["recovered"]["run_id"] == "a"


def test_heartbeat_keeps_a_long_run_alive(tmp_path):
    clock = Clock()
    run = j.Journal("long", str(tmp_path), stale_after=60, now=clock)
    run.acquire()
    clock.t += 50
    run.heartbeat()
    clock.t += 50
    with pytest.raises(j.LockedError):
        j.Journal("other", str(tmp_path), stale_after=60, now=clock).acquire()


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "."])
def test_run_ids_are_plain_names(tmp_path, bad):
    with pytest.raises(ValueError):
        j.Journal(bad, str(tmp_path))


def test_file_changes_roll_back_byte_for_byte(tmp_path):
    conf = tmp_path / "www.conf"
    original = b"[www]\npm.max_children = 5\n\xef\xbb\xbf odd bytes \x00 kept\n"
    conf.write_bytes(original)
    os.chmod(conf, 0o640)
    new_file = tmp_path / "added.conf"
    run = j.Journal("r", str(tmp_path / "state"))
    seq = run.intend_file("pool_limits", str(conf))
    conf.write_bytes(b"[www]\npm.max_children = 40\n")
    os.chmod(conf, 0o644)
    run.done(seq)
    seq2 = run.intend_file("pool_limits", str(new_file))
    new_file.write_text("x")
    run.done(seq2)
    undone = run.rollback()
    assert [e["seq"] for e in undone] == [2, 1]
    assert conf.read_bytes() == original
    assert oct(os.stat(conf).st_mode & 0o777) == oct(0o640)
    assert not new_file.exists()
    assert run.rollback() == []  # twice is harmless


def test_a_run_killed_between_intent_and_done_still_rolls_back(tmp_path):
    conf = tmp_path / "www.conf"
    conf.write_bytes(b"before\n")
    run = j.Journal("killed", str(tmp_path / "state"))
    run.intend_file("pool_limits", str(conf))
    conf.write_bytes(b"half-writ")  # the change happened, "done" never got written
    with open(run.path, "ab") as fh:
        fh.write(b'{"seq": 2, "op": "fi')  # and the process died mid-line
    later = j.Journal("killed", str(tmp_path / "state"))  # rollback-502.yml, another process
    later.rollback()
    assert conf.read_bytes() == b"before\n"


def test_renames_and_values(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "slow").mkdir()
    run = j.Journal("p", str(tmp_path / "state"))
    s1 = run.intend_value("plugins", "active_plugins", 'a:1:{i:0;s:14:"slow/slow.php";}')
    s2 = run.intend_rename("plugins", str(plugins / "slow"), str(tmp_path / "plugins-off-slow"))
    os.rename(plugins / "slow", tmp_path / "plugins-off-slow")
    run.done(s2)
    run.done(s1)
    restored = {}
    with pytest.raises(ValueError, match="restore_value"):
        j.Journal("p", str(tmp_path / "state")).rollback()
    run.rollback(restore_value=lambda name, before, where: restored.update({name: before}))
    assert (plugins / "slow").is_dir()
    assert restored == {"active_plugins": 'a:1:{i:0;s:14:"slow/slow.php";}'}
    states = [json.loads(line)["state"] for line in Path(run.path).read_text().splitlines()]
    assert states.count("undone") == 2


# ---- the lock: one run per host, atomically, and a refusal that says who holds it (issue #10) ----------------------

T0 = 1796160605.0  # 2026-12-01T21:30:05Z
SAME_SECOND = ("20261201T213005-wp1-3f9a2c", "20261201T213005-wp1-9e01b7")


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))


def _contend(barrier, results, state, run_id, owner, stale_after):
    journal = j.Journal(run_id, state, stale_after=stale_after)
    barrier.wait()
    try:
        journal.acquire(owner=owner)
        results.put((run_id, "won", ""))
    except j.LockedError as exc:
        results.put((run_id, "refused", str(exc)))
    except Exception as exc:  # reported to the test, which fails on it
        results.put((run_id, "error", repr(exc)))


def _race(state, contenders, stale_after=900):
    """Start every contender in its own process, release them together, and return each outcome."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(len(contenders)), ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(barrier, results, state, run_id, owner, stale_after))
             for run_id, owner in contenders]
    for proc in procs:
        proc.start()
    outcome = {}
    for _proc in procs:
        run_id, what, msg = results.get(timeout=60)
        outcome[run_id] = (what, msg)
    for proc in procs:
        proc.join(timeout=30)
    return outcome


@pytest.mark.parametrize("attempt", range(5))
def test_two_runs_started_in_the_same_second_one_wins_the_other_is_told_who(tmp_path, attempt):
    state = str(tmp_path)
    owners = {SAME_SECOND[0]: {"controller": "ops1", "user": "alice", "pid": 101, "host": "wp1"},
              SAME_SECOND[1]: {"controller": "ops2", "user": "bob", "pid": 202, "host": "wp1"}}
    outcome = _race(state, list(owners.items()))
    won = [r for r, (what, _msg) in outcome.items() if what == "won"]
    refused = [r for r, (what, _msg) in outcome.items() if what == "refused"]
    assert len(won) == 1 and len(refused) == 1, outcome
    winner, loser = won[0], refused[0]
    held = json.loads((tmp_path / "lock").read_text())
    assert held["run_id"] == winner and held["owner"] == owners[winner]
    msg = outcome[loser][1]
    origin = owners[winner]
    assert msg.startswith(f"run {winner} holds this host: taken {held['started_utc']} (")
    assert f"from controller {origin['controller']} as {origin['user']} (pid {origin['pid']})" in msg
    assert "last heartbeat " in msg and "-e wp502_emergency_force=true" in msg
    assert f"ansible-playbook playbooks/rollback-502.yml -l wp1 -e wp502_run_id={winner}" in msg
    # the refused run left nothing: only the winner's run directory exists
    assert os.listdir(tmp_path / "runs") == [winner] and j.last_run(state) == winner


def test_two_runs_taking_over_the_same_dead_lock_exactly_one_wins(tmp_path, monkeypatch):
    state = str(tmp_path)
    dead = {"run_id": "20261201T200000-wp1-dead00", "token": "0" * 16, "pid": 1, "owner": {"controller": "gone"},
            "started": time.time() - 7200, "heartbeat": time.time() - 3600}
    (tmp_path / "lock").write_text(json.dumps(dead))
    # Widen the window between "the lock is stale" and "the new lock is written": a takeover that is
    # not atomic lets every contender win here.
    real_write = j._write_atomic

    def slow_write(path, data, mode=0o600):
        time.sleep(0.3)
        real_write(path, data, mode)

    monkeypatch.setattr(j, "_write_atomic", slow_write)
    contenders = [f"20261201T213005-wp1-{n:06x}" for n in range(4)]
    outcome = _race(state, [(r, {"controller": f"ops{n}"}) for n, r in enumerate(contenders)])
    won = [r for r, (what, _msg) in outcome.items() if what == "won"]
    assert len(won) == 1, outcome
    assert all(what == "refused" and msg.startswith(f"run {won[0]} holds this host")
               for r, (what, msg) in outcome.items() if r != won[0]), outcome
    assert json.loads((tmp_path / "lock").read_text())["run_id"] == won[0]
    assert os.listdir(tmp_path / "runs") == won


def test_a_refused_run_leaves_nothing_behind(tmp_path):
    clock = Clock(T0)
    j.Journal("holder", str(tmp_path), now=clock).acquire(owner={"controller": "ops1"})
    before = _tree(tmp_path)
    clock.t += 30
    refused = j.Journal("late", str(tmp_path), now=clock)
    with pytest.raises(j.LockedError) as exc:
        refused.acquire(owner={"controller": "ops2"})
    assert exc.value.holder["run_id"] == "holder"
    assert refused.would_refuse() == str(exc.value)  # check mode says the same, writing nothing
    assert _tree(tmp_path) == before and not os.path.exists(refused.run_dir)


def test_the_refusal_says_who_since_when_from_where_and_what_to_do(tmp_path):
    clock = Clock(T0)
    j.Journal(SAME_SECOND[0], str(tmp_path), stale_after=900, now=clock).acquire(
        owner={"controller": "ops1.example.net", "user": "alice", "pid": 31337, "host": "wp1"})
    clock.t += 252
    j.Journal(SAME_SECOND[0], str(tmp_path), stale_after=900, now=clock).heartbeat()
    clock.t += 27
    with pytest.raises(j.LockedError) as exc:
        j.Journal(SAME_SECOND[1], str(tmp_path), stale_after=900, now=clock).acquire(owner={"host": "wp1"})
    assert str(exc.value) == (
        "run 20261201T213005-wp1-3f9a2c holds this host: taken 2026-12-01T21:30:05Z (4m39s ago) from controller "
        "ops1.example.net as alice (pid 31337); last heartbeat 2026-12-01T21:34:17Z (27s ago), counted dead after "
        "15m00s without one (in 14m33s). Wait for it to end; or, after checking that run is gone (no ansible-playbook "
        "of it left on ops1.example.net), run again with -e wp502_emergency_force=true (module option force=true); to "
        "undo what it changed: ansible-playbook playbooks/rollback-502.yml -l wp1 -e wp502_run_id=20261201T213005-wp1-3f9a2c")


def test_a_lock_without_owner_still_names_its_run(tmp_path):
    clock = Clock(T0)
    (tmp_path / "lock").write_text(json.dumps({"run_id": "old-style", "pid": 7, "started": T0, "heartbeat": T0}))
    msg = j.Journal("new", str(tmp_path), now=clock).would_refuse()
    assert msg.startswith("run old-style holds this host: taken 2026-12-01T21:30:05Z (0s ago) from an unknown "
                          "controller (no owner recorded)") and "-l HOST -e wp502_run_id=old-style" in msg


def test_the_lock_records_its_run_and_origin_and_a_new_token_per_take(tmp_path):
    clock = Clock(T0)
    first = j.Journal("a", str(tmp_path), stale_after=60, now=clock)
    first.acquire(owner={"controller": "ops1", "user": "alice", "pid": 5, "host": None})
    held = first.read_lock()
    assert held["owner"] == {"controller": "ops1", "user": "alice", "pid": 5}  # empty keys are left out
    assert (held["run_id"], held["pid"], held["started_utc"]) == ("a", os.getpid(), "2026-12-01T21:30:05Z")
    assert len(held["token"]) == 16 and oct(os.stat(tmp_path / "lock").st_mode & 0o777) == "0o600"
    clock.t += 10
    first.heartbeat()
    assert first.read_lock()["token"] == held["token"] and first.read_lock()["heartbeat"] == T0 + 10
    clock.t += 61
    got = j.Journal("b", str(tmp_path), stale_after=60, now=clock).acquire()
    assert got["recovered"]["token"] == held["token"] and first.read_lock()["token"] != held["token"]
    assert not first.holds_lock() and not first.release()
    first.heartbeat()  # a dead run's late heartbeat does not touch the new holder's lock
    assert first.read_lock()["run_id"] == "b" and first.read_lock()["heartbeat"] == T0 + 71


def test_the_same_run_id_from_another_controller_is_not_ours(tmp_path):
    j.Journal("r-1", str(tmp_path)).acquire(owner={"controller": "ops1", "user": "alice"})
    again = j.Journal("r-1", str(tmp_path))
    assert again.acquire(owner={"controller": "ops1", "user": "alice"}) == {"acquired": True, "recovered": None}
    assert again.acquire() == {"acquired": True, "recovered": None}  # nothing to tell them apart: a retried task
    with pytest.raises(j.LockedError, match="run id r-1 already holds this host from controller ops1 as alice, "
                                            "and this run comes from controller ops2 as alice: two runs"):
        again.acquire(owner={"controller": "ops2", "user": "alice"}, force=True)


def test_the_owner_from_the_environment():
    assert j.owner_from_env({"SSH_CONNECTION": "192.0.2.7 51234 192.0.2.10 22", "SUDO_USER": "alice"}) == \
        {"controller": "192.0.2.7", "user": "alice"}
    assert j.owner_from_env({}) == {}


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.9, "59s"), (60, "1m00s"), (279, "4m39s"),
                                               (7380, "2h03m"), (273600, "3d04h"), (-5, "0s")])
def test_ages_read_as_an_operator_reads_them(seconds, text):
    assert j.ago(seconds) == text


def _debian_site(tmp_path):
    (tmp_path / "sites-available").mkdir()
    (tmp_path / "sites-enabled").mkdir()
    real = tmp_path / "sites-available" / "wordpress"
    real.write_bytes(b"server {\r\n    fastcgi_read_timeout 15s;\r\n}\r\n")
    real.chmod(0o640)
    link = tmp_path / "sites-enabled" / "wordpress"
    link.symlink_to("../sites-available/wordpress")
    return link, real


def test_a_symlink_is_recorded_with_its_target_and_the_real_files_metadata(tmp_path):
    link, real = _debian_site(tmp_path)
    run = j.Journal("r", str(tmp_path / "state"))
    run.intend_file("frontend", str(link))
    (entry,) = run.entries()
    st = real.stat()
    assert entry["path"] == str(link) and entry["existed"]
    meta = entry["meta"]
    assert (meta["type"], meta["link"], meta["real"]) == ("symlink", "../sites-available/wordpress", str(real))
    assert (meta["mode"], meta["uid"], meta["gid"]) == (0o640, st.st_uid, st.st_gid)
    assert Path(entry["backup"]).read_bytes() == real.read_bytes()


@pytest.mark.parametrize("damage", ["content", "link_replaced_by_a_file", "link_elsewhere"])
def test_rollback_restores_bytes_into_the_real_file_and_the_same_link(tmp_path, damage):
    link, real = _debian_site(tmp_path)
    original = real.read_bytes()
    run = j.Journal("r", str(tmp_path / "state"))
    run.intend_file("frontend", str(link))
    if damage == "content":
        real.write_bytes(b"edited through the link\n")
        real.chmod(0o666)
    elif damage == "link_replaced_by_a_file":  # what wp502 did before it wrote through links
        link.unlink()
        link.write_bytes(b"edited copy\n")
    else:
        link.unlink()
        link.symlink_to("/etc/hostname")
    run.rollback()
    assert os.path.islink(link) and os.readlink(link) == "../sites-available/wordpress"
    assert real.read_bytes() == original and oct(real.stat().st_mode & 0o777) == oct(0o640)
    assert sorted(os.listdir(link.parent)) == ["wordpress"] and sorted(os.listdir(real.parent)) == ["wordpress"]


def test_a_regular_file_replaced_by_a_symlink_becomes_a_file_again(tmp_path):
    conf = tmp_path / "www.conf"
    conf.write_bytes(b"[www]\n")
    run = j.Journal("r", str(tmp_path / "state"))
    run.intend_file("pool_limits", str(conf))
    assert run.entries()[0]["meta"]["type"] == "file"
    conf.unlink()
    conf.symlink_to(tmp_path / "elsewhere.conf")
    run.rollback()
    assert not os.path.islink(conf) and conf.read_bytes() == b"[www]\n"


def test_a_dangling_symlink_comes_back_dangling(tmp_path):
    link = tmp_path / "wordpress"
    link.symlink_to("../sites-available/gone")
    run = j.Journal("r", str(tmp_path / "state"))
    run.intend_file("frontend", str(link))
    link.unlink()
    link.write_bytes(b"x")
    run.rollback()
    assert os.path.islink(link) and os.readlink(link) == "../sites-available/gone"


def test_an_entry_from_before_file_types_were_recorded_still_restores(tmp_path):
    conf = tmp_path / "www.conf"
    conf.write_bytes(b"new\n")
    backup = tmp_path / "backup"
    backup.write_bytes(b"old\n")
    j._restore_file(str(backup), str(conf), {"mode": 0o600, "uid": -1, "gid": -1})
    assert conf.read_bytes() == b"old\n" and oct(conf.stat().st_mode & 0o777) == oct(0o600)


def test_the_selinux_context_is_recorded_and_put_back_when_the_file_has_one(tmp_path, monkeypatch):
    conf = tmp_path / "www.conf"
    conf.write_bytes(b"[www]\n")
    label = b"system_u:object_r:httpd_config_t:s0\x00"
    seen = {}
    monkeypatch.setattr(j.os, "getxattr", lambda path, name: label if name == "security.selinux" else b"", raising=False)
    monkeypatch.setattr(j.os, "setxattr", lambda path, name, value: seen.update({name: value}), raising=False)
    run = j.Journal("r", str(tmp_path / "state"))
    run.intend_file("pool_limits", str(conf))
    assert run.entries()[0]["meta"]["selinux"] == label.decode("latin-1")
    run.rollback()
    assert seen == {"security.selinux": label}


def test_take_host_locks_refuses_a_second_run_and_names_the_holder(tmp_path):
    clock = Clock()
    got = j.take_host("run-1", str(tmp_path), owner={"controller": "ops1", "user": "alice", "host": "wp1"},
                      environ={}, now=clock)
    assert got["changed"] and "msg" not in got and got["lock"]["run_id"] == "run-1"
    assert got["lock"]["owner"] == {"controller": "ops1", "user": "alice", "host": "wp1"}
    other = j.take_host("run-2", str(tmp_path), environ={}, now=clock)
    assert not other["changed"] and "run run-1 holds this host" in other["msg"] and other["lock"]["run_id"] == "run-1"
    assert j.Journal("run-1", str(tmp_path)).read_lock()["run_id"] == "run-1"  # the refusal changed nothing


def test_take_host_refuses_a_storm_unless_forced(tmp_path):
    clock = Clock()
    (tmp_path / "last_end").write_text(json.dumps({"run_id": "run-0", "at": clock.t - 120}))
    got = j.take_host("run-1", str(tmp_path), storm_minutes=10, environ={}, now=clock)
    assert "remediation storm" in got["msg"] and "2m00s ago" in got["msg"] and not os.path.exists(tmp_path / "lock")
    assert "msg" not in j.take_host("run-1", str(tmp_path), storm_minutes=10, force=True, environ={}, now=clock)
    assert "msg" not in j.take_host("run-2", str(tmp_path / "other"), storm_minutes=0, environ={}, now=clock)


def test_take_host_in_check_mode_only_says_whether_it_could(tmp_path):
    clock = Clock()
    could = j.take_host("run-1", str(tmp_path), check_mode=True, environ={}, now=clock)
    assert could["changed"] and "msg" not in could and could["lock"] is None
    assert not os.path.exists(tmp_path / "lock")
    j.take_host("run-1", str(tmp_path), environ={}, now=clock)
    refused = j.take_host("run-2", str(tmp_path), check_mode=True, environ={}, now=clock)
    assert "run run-1 holds this host" in refused["msg"]


@pytest.mark.parametrize("run_id", ["", None, "../etc", "a b"])
def test_take_host_refuses_an_odd_run_id_before_touching_anything(tmp_path, run_id):
    got = j.take_host(run_id, str(tmp_path / "state"), environ={})
    assert "run_id" in got["msg"] and not (tmp_path / "state").exists()
