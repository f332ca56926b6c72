"""Every command the evidence and the rollback run has a deadline, and a hung one is named (issue #10 item 9).

Fake runners that raise CommandTimeoutError check what the collector makes of a timeout; real
``sleep`` processes under wp502_host.deadline_runner check that the modules' adapters really pass
the deadline on (they used to drop it).
"""

from __future__ import annotations

import binascii
import subprocess
import sys
import time

import pytest
import wp502_collect as ev
import wp502_evidence
import wp502_journal
import wp502_run

# tests/conftest.py can load a module_util twice (as NAME and as ansible.module_utils.NAME), each with
# its own classes: take the exception and the runner from the module the code under test uses.
_host = ev.which.__globals__
CommandTimeoutError, deadline_runner, describe = _host["CommandTimeoutError"], _host["deadline_runner"], _host["describe"]

BINARIES = {"nginx": "/usr/sbin/nginx", "systemctl": "/usr/bin/systemctl", "mariadb": "/usr/bin/mariadb",
            "journalctl": "/usr/bin/journalctl", "dmesg": "/usr/bin/dmesg"}


def _which(*names):
    return next((BINARIES[n] for n in names if n in BINARIES), None)


class FakeRun:
    """Records (command, timeout) of every call; ``hang`` names the commands that outlive their deadline."""

    def __init__(self, hang=()):
        self.hang = hang
        self.calls = []
        self.error = CommandTimeoutError

    def __call__(self, argv, env=None, timeout=None):
        self.calls.append((argv[0].rsplit("/", 1)[-1], timeout))
        if any(h in describe(argv) for h in self.hang):
            raise self.error(f"`{describe(argv)}` did not finish within {timeout} s (killed)")
        return 1, "", "not here"


def _collector(run, monkeypatch):
    monkeypatch.setattr(ev.Collector, "_which", staticmethod(_which))
    return ev.Collector(run, since_epoch=time.time() - 3600, probe=False, db=True)


CFG = {"db_name": "wordpress", "db_user": "wp", "db_host": "localhost", "table_prefix": "wp_"}


def test_every_command_of_the_evidence_asks_for_a_deadline(monkeypatch):
    run = FakeRun()
    c = _collector(run, monkeypatch)
    c.frontend()
    c.database(CFG, "s3cret", "wp_")
    c.oom()
    deadlines = dict(run.calls)
    assert set(deadlines) == {"systemctl", "nginx", "mariadb", "journalctl", "dmesg"}
    assert all(isinstance(t, (int, float)) and 0 < t <= 30 for t in deadlines.values()), deadlines
    assert deadlines["nginx"] == 20 and deadlines["systemctl"] == 15 and deadlines["mariadb"] == 20


def test_a_hung_nginx_is_one_error_naming_it_and_the_evidence_goes_on(monkeypatch):
    c = _collector(FakeRun(hang=["nginx -T"]), monkeypatch)
    front = c.frontend()
    assert "nginx" not in front and front["kind"] == "nginx"
    assert c.errors == ["timeout: `/usr/sbin/nginx -T` timed out: no answer within 20 s, killed"]


def test_a_hung_database_is_named_without_its_password_or_its_whole_query(monkeypatch):
    c = _collector(FakeRun(hang=["mariadb"]), monkeypatch)
    c.secrets.append("s3cret")
    db = c.database(CFG, "s3cret", "wp_")
    assert db["reachable"] is False and "timed out: no answer within 20 s, killed" in db["error"]
    (error,) = c.errors
    assert error.startswith("timeout: `/usr/bin/mariadb --batch --skip-column-names --connect-timeout=5 -u wp")
    assert "wordpress -e SELECT '##active', option_value FROM wp_options WHERE option...` timed out" in error
    assert error.endswith("timed out: no answer within 20 s, killed") and "s3cret" not in error


def test_a_command_that_cannot_run_is_still_not_a_crash(monkeypatch):
    def broken(argv, env=None, timeout=None):
        raise OSError(2, "No such file or directory")

    c = _collector(broken, monkeypatch)
    assert c._cmd(["nginx", "-T"], timeout=5) == (127, "", "[Errno 2] No such file or directory")


def _run_command(argv, environ_update=None, check_rc=False):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def test_a_real_hung_command_is_killed_at_its_deadline_and_named(monkeypatch):
    c = _collector(deadline_runner(_run_command), monkeypatch)
    started = time.monotonic()
    assert c._cmd(["sleep", "30"], timeout=1)[0] == ev.TIMED_OUT_RC
    assert time.monotonic() - started < 10
    assert c.errors == ["timeout: `sleep 30` timed out: no answer within 1 s, killed"]


def test_wp502_evidence_passes_each_deadline_to_the_host(monkeypatch, run_module):
    """The module's runner is deadline_runner(module.run_command): a real `sleep` outliving its deadline is killed."""
    seen = {}

    class Probe:
        def __init__(self, run, since, **_kwargs):
            self.run = run

        def collect(self):
            started = time.monotonic()
            try:
                self.run(["sleep", "30"], timeout=1)
            except timed_out as exc:
                seen["error"] = str(exc)
            seen["seconds"] = time.monotonic() - started
            return {"errors": [seen.get("error")]}

    monkeypatch.setattr(wp502_evidence, "Collector", Probe)
    timed_out = wp502_evidence.deadline_runner.__globals__["CommandTimeoutError"]
    out = run_module(wp502_evidence, low_priority=False)
    assert out["_rc"] == 0 and seen["error"] == "`sleep 30` did not finish within 1 s (killed)"
    assert seen["seconds"] < 10


def test_the_evidence_runs_its_commands_without_ansibles_run_command(monkeypatch, run_module):
    """AnsibleModule.run_command polls its pipes in select(1) and can sleep a whole second after a command has
    exited (wp502_host._spawn): the modules run commands through subprocess under coreutils' timeout instead."""
    seen = {}

    class Probe:
        def __init__(self, run, since, **_kwargs):
            self.run = run

        def collect(self):
            seen["out"] = self.run(["sh", "-c", "echo answered"], timeout=5)
            return {"errors": []}

    def refuse(*_args, **_kwargs):
        raise AssertionError("AnsibleModule.run_command was called")

    monkeypatch.setattr(wp502_evidence, "Collector", Probe)
    monkeypatch.setattr(wp502_evidence.AnsibleModule, "run_command", refuse)
    out = run_module(wp502_evidence, low_priority=False)
    assert out["_rc"] == 0 and seen["out"] == (0, "answered\n", "")


def test_the_plugin_lists_database_calls_have_a_deadline():
    wpdb = wp502_run.WordPressDB.__init__.__globals__
    run = FakeRun(hang=["HEX(option_value)"])
    run.error = wpdb["CommandTimeoutError"]
    db = wpdb["WordPressDB"](run, "/usr/bin/mariadb", CFG, "s3cret")
    with pytest.raises(wpdb["DBError"], match=r"^mariadb did not answer within 30 s \(killed\) to: SELECT HEX"):
        db.get("active_plugins")
    assert run.calls == [("mariadb", 30)]


def test_a_rollback_whose_database_hangs_stops_naming_it(tmp_path, monkeypatch, run_module):
    """wp502_run writes active_plugins back through deadline_runner(module.run_command): a client that hangs is
    killed at the deadline and the rollback says so (and can be run again)."""
    client = tmp_path / "mariadb"
    client.write_text("#!/bin/sh\nexec sleep 30\n")
    client.chmod(0o755)
    config = tmp_path / "wp-config.php"
    config.write_text("<?php\ndefine('DB_NAME', 'wordpress');\ndefine('DB_USER', 'wp');\n"
                      "define('DB_PASSWORD', 's3cret');\ndefine('DB_HOST', 'localhost');\n$table_prefix = 'wp_';\n")
    journal = wp502_journal.Journal("r-db", str(tmp_path / "state"))
    journal.acquire()
    journal.intend_value("plugins", "active_plugins", binascii.hexlify(b"a:0:{}").decode(),
                         where={"encoding": "hex", "config": str(config), "list": "active_plugins"})
    monkeypatch.setattr(wp502_run, "which", lambda *names: str(client))
    monkeypatch.setattr(wp502_run.WordPressDB, "timeout", 1)
    # (the deadline_runner whose CommandTimeoutError is the one WordPressDB catches: see _host above)
    timed_out = wp502_run.WordPressDB.__init__.__globals__["CommandTimeoutError"]
    host = next(m for m in list(sys.modules.values())
                if getattr(m, "CommandTimeoutError", None) is timed_out and hasattr(m, "deadline_runner"))
    monkeypatch.setattr(wp502_run, "deadline_runner", host.deadline_runner)
    started = time.monotonic()
    out = run_module(wp502_run, state="rolled_back", state_dir=str(tmp_path / "state"))
    assert time.monotonic() - started < 10
    assert out["_rc"] == 1
    assert out["msg"].startswith("rollback of r-db stopped: mariadb did not answer within 1 s (killed) to: UPDATE wp_options")
    assert "run it again" in out["msg"] and "s3cret" not in out["msg"]


def _show_block(unit, loaded=True):
    """What `systemctl show -p Id -p ActiveState -p SubState -p MainPID -p LoadState UNIT` prints (systemd 252):
    Debian's mariadb.service has the aliases mysql.service and mysqld.service, so those answer as mariadb."""
    real = {"mysql": "mariadb", "mysqld": "mariadb"}.get(unit, unit)
    if not loaded:
        return f"MainPID=0\nId={unit}.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead"
    return f"MainPID=4{len(real)}\nId={real}.service\nLoadState=loaded\nActiveState=active\nSubState=running"


def test_systemd_is_asked_once_for_every_unit_the_evidence_reads(monkeypatch):
    asked = []

    def run(argv, env=None, timeout=None):
        assert argv[:2] == ["systemctl", "show"]
        units = [a for a in argv[2:] if not a.startswith("-") and "=" not in a and a[0].islower()
                 and a not in ("Id", "ActiveState", "SubState", "MainPID", "LoadState")]
        asked.append(units)
        return 0, "\n\n".join(_show_block(u, loaded=u not in ("apache2", "httpd")) for u in units) + "\n", ""

    monkeypatch.setattr(ev.Collector, "_which", staticmethod(lambda *names: "/usr/bin/" + names[0]))
    c = ev.Collector(run, since_epoch=time.time() - 3600, probe=False, db=False)
    assert c.unit_states(["php8.2-fpm", "php8.4-fpm"]) == {
        "php8.2-fpm": {"active": "active", "sub": "running", "main_pid": 410},
        "php8.4-fpm": {"active": "active", "sub": "running", "main_pid": 410}}
    assert c.unit_states(["nginx", "apache2", "httpd"]) == {"nginx": {"active": "active", "sub": "running", "main_pid": 45}}
    # the aliases answer as the unit they name, as one systemctl call per unit said before
    assert c.unit_states(list(ev.DB_UNITS)) == {"mariadb": {"active": "active", "sub": "running", "main_pid": 47}}
    assert c.unit_states(["mysql"]) == {"mariadb": {"active": "active", "sub": "running", "main_pid": 47}}
    assert asked == [["php8.2-fpm", "php8.4-fpm", *ev.HOST_UNITS]]  # one command for all of them
    assert c.unit_states(["php7.4-fpm"]) == {"php7.4-fpm": {"active": "active", "sub": "running", "main_pid": 410}}
    assert asked[1] == ["php7.4-fpm"]  # a unit not asked yet is asked on its own


def test_a_failed_systemctl_gives_no_state_rather_than_a_wrong_one(monkeypatch):
    monkeypatch.setattr(ev.Collector, "_which", staticmethod(lambda *names: "/usr/bin/" + names[0]))
    c = ev.Collector(lambda argv, env=None, timeout=None: (1, "MainPID=1\nId=x.service\n", "Failed to connect to bus"),
                     since_epoch=time.time() - 3600, probe=False, db=False)
    assert c.unit_states(["php8.2-fpm"]) == {} and c.unit_states(list(ev.DB_UNITS)) == {}
