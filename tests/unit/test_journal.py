"""wp502_journal: the lock, the journal written before each change, and rollback byte for byte."""

from __future__ import annotations

import json
import os
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
