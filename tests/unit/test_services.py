"""wp502_services and wp502_run state=restarted|reloaded: systemd units restarted or reloaded in one round trip,
a start limit cleared once, and the addresses they serve waited for."""

from __future__ import annotations

import socket
import stat

import pytest
import wp502_run as mod
import wp502_services as sv


class Systemctl:
    """Answers systemctl as systemd would for a few units: ``units`` maps a unit to its ActiveState (absent:
    not-found); ``refuse`` is how many starts the start limit refuses; records every verb and unit."""

    def __init__(self, units, refuse=0, result="start-limit-hit", hang=()):
        self.units = dict(units)
        self.refuse = refuse
        self.result = result
        self.hang = set(hang)
        self.results = {}
        self.calls = []

    def __call__(self, argv, env=None, timeout=None):  # noqa: PLR0911 - one answer per systemctl verb
        verb, unit = argv[1], argv[-1]
        if verb != "show":
            self.calls.append(f"{verb} {unit}")
        if unit in self.hang and verb != "show":
            raise sv.CommandTimeoutError(f"`systemctl {verb} {unit}` did not finish within {timeout} s (killed)")
        if verb == "show":
            if unit not in self.units:
                return 0, "LoadState=not-found\nActiveState=inactive\nSubState=dead\nResult=success\n", ""
            active = self.units[unit]
            return 0, (f"LoadState=loaded\nActiveState={active}\nSubState={'running' if active == 'active' else active}\n"
                       f"Result={self.results.get(unit, 'success')}\n"), ""
        if verb == "reset-failed":
            self.results.pop(unit, None)
            return 0, "", ""
        if verb in ("restart", "start"):
            if self.refuse:
                self.refuse -= 1
                self.units[unit], self.results[unit] = "failed", self.result
                return 1, "", f"Job for {unit}.service failed because the control process exited with error code.\n"
            self.units[unit] = "active"
            return 0, "", ""
        if verb == "reload":
            return (0, "", "") if self.units.get(unit) == "active" else (1, "", f"{unit} is not active, cannot reload.\n")
        return 1, "", f"unknown verb {verb}"


def units(systemctl, names):
    cautions = []
    return sv.Units(systemctl, "systemctl", names, [], cautions, now=iter(range(10 ** 6)).__next__), cautions


def test_a_restart_goes_through_once():
    systemctl = Systemctl({"php8.4-fpm": "failed"})
    u, cautions = units(systemctl, ["php8.4-fpm"])
    entry = u.act("php8.4-fpm", "restart")
    assert entry["ok"] and entry["action"] == "restart" and entry["was"] == "failed" and not entry["msg"]
    assert systemctl.calls == ["restart php8.4-fpm"] and not cautions


def test_the_start_limit_is_cleared_once_and_the_caution_says_so():
    systemctl = Systemctl({"mariadb": "failed"}, refuse=1)
    u, cautions = units(systemctl, ["mariadb"])
    entry = u.act("mariadb", "restart")
    assert entry["ok"], entry
    assert systemctl.calls == ["restart mariadb", "reset-failed mariadb", "restart mariadb"]
    assert len(cautions) == 1 and "start-limit-hit" in cautions[0] and "reset-failed mariadb" in cautions[0]


def test_a_unit_refused_twice_fails_naming_it_and_why():
    systemctl = Systemctl({"php8.2-fpm": "failed"}, refuse=2)
    u, _cautions = units(systemctl, ["php8.2-fpm"])
    entry = u.act("php8.2-fpm", "restart")
    assert not entry["ok"]
    assert "systemctl restart php8.2-fpm` failed: php8.2-fpm is failed/failed (Result=start-limit-hit" in entry["msg"]
    assert systemctl.calls == ["restart php8.2-fpm", "reset-failed php8.2-fpm", "restart php8.2-fpm"]


def test_another_failure_is_not_retried():
    systemctl = Systemctl({"php8.2-fpm": "failed"}, refuse=1, result="exit-code")
    u, cautions = units(systemctl, ["php8.2-fpm"])
    entry = u.act("php8.2-fpm", "restart")
    assert not entry["ok"] and "Result=exit-code: the service exited with an error" in entry["msg"]
    assert systemctl.calls == ["restart php8.2-fpm"] and not cautions


def test_a_reload_of_a_unit_that_is_not_running_starts_it():
    systemctl = Systemctl({"php8.2-fpm": "active", "php8.4-fpm": "inactive"})
    u, _cautions = units(systemctl, [])
    assert u.act("php8.2-fpm", "reload")["action"] == "reload"
    started = u.act("php8.4-fpm", "reload")
    assert started["ok"] and started["action"] == "start"
    assert systemctl.calls == ["reload php8.2-fpm", "start php8.4-fpm"]


def test_a_unit_that_does_not_exist_fails_without_a_systemctl_action():
    systemctl = Systemctl({})
    u, _cautions = units(systemctl, [])
    entry = u.act("php7.4-fpm", "restart")
    assert not entry["ok"] and "no such unit" in entry["msg"] and systemctl.calls == []


def test_check_mode_says_what_it_would_do_and_does_nothing():
    systemctl = Systemctl({"php8.2-fpm": "inactive"})
    u, _cautions = units(systemctl, [])
    entry = u.act("php8.2-fpm", "reload", check_mode=True)
    assert entry["ok"] and entry["msg"] == "would start php8.2-fpm (it is inactive)" and systemctl.calls == []


def test_a_unit_past_its_deadline_fails_and_says_so():
    systemctl = Systemctl({"php8.2-fpm": "active"}, hang=["php8.2-fpm"])
    u, _cautions = units(systemctl, [])
    entry = u.act("php8.2-fpm", "restart")
    assert not entry["ok"] and entry["timed_out"] and "timed out: `systemctl restart php8.2-fpm` did not finish within" in entry["msg"]


def test_waiting_for_sockets_and_ports(tmp_path):
    sock_path = tmp_path / "php.sock"
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    closed = free.getsockname()[1]
    free.close()
    try:
        clock = iter(range(0, 1000, 1)).__next__
        seen = []

        def sleep(_s):
            seen.append(1)
            if len(seen) == 2:  # the socket appears while we wait
                sock_path.write_text("")

        wildcard = "0.0.0.0"  # noqa: S104 - a pool listening on every address, asked on the loopback
        targets = [{"path": str(sock_path)}, {"host": wildcard, "port": server.getsockname()[1]},
                   {"host": "127.0.0.1", "port": closed}]
        out = sv.wait_listening(targets, timeout=5, clock=clock, sleep=sleep)
    finally:
        server.close()
    assert [t["ready"] for t in out] == [True, True, False]
    assert out[0]["path"] == str(sock_path) and 2 <= len(seen) <= 5  # bounded: stops at the timeout


def fake_systemctl(tmp_path, body):
    """A systemctl on PATH for the module test: a shell script answering as systemd would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "systemctl"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/calls\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


@pytest.fixture
def on_path(monkeypatch):
    """The module finds systemctl in the system's binary directories (wp502_host.which): here, the fake one."""
    def put(bin_dir):
        monkeypatch.setattr(mod, "which", lambda *names: str(bin_dir / names[0]) if "systemctl" in names else None)
    return put


def test_the_module_restarts_every_unit_in_one_call_and_waits(tmp_path, run_module, on_path):
    on_path(fake_systemctl(tmp_path, 'case "$1" in show) printf "LoadState=loaded\\nActiveState=failed\\n";; esac; exit 0'))
    (tmp_path / "fpm.sock").write_text("")
    out = run_module(mod, state="restarted", services=["php8.2-fpm", "php8.4-fpm"],
                     wait_for=[{"path": str(tmp_path / "fpm.sock")}], wait_timeout=1)
    assert out["_rc"] == 0 and out["changed"], out
    assert [(s["name"], s["action"], s["ok"]) for s in out["services"]] == [("php8.2-fpm", "restart", True),
                                                                            ("php8.4-fpm", "restart", True)]
    assert out["waited"] == [{"path": str(tmp_path / "fpm.sock"), "ready": True}]
    calls = [c for c in (tmp_path / "calls").read_text().splitlines() if not c.startswith("show")]
    assert calls == ["restart php8.2-fpm", "restart php8.4-fpm"]


def test_the_module_fails_naming_the_unit_that_did_not_come_back(tmp_path, run_module, on_path):
    on_path(fake_systemctl(tmp_path, 'case "$1" in show) printf "LoadState=loaded\\nActiveState=failed\\nResult=exit-code\\n"; '
                                     'exit 0;; restart) echo "Job failed" >&2; exit 1;; esac; exit 0'))
    out = run_module(mod, state="restarted", services=["mariadb"])
    assert out["_rc"] == 1 and "systemctl restart mariadb` failed: mariadb is failed/? (Result=exit-code" in out["msg"], out
    assert out["services"][0]["ok"] is False


def test_the_module_refuses_a_wait_target_without_an_address(run_module):
    out = run_module(mod, state="reloaded", services=["nginx"], wait_for=[{"host": "127.0.0.1"}])
    assert out["_rc"] == 1 and "needs a path, or a host and a port" in out["msg"]
