"""Every external command has a deadline: wp502_host.deadline_runner, on real processes."""

from __future__ import annotations

import subprocess

import pytest
from ansible.module_utils.wp502_host import CommandTimeoutError, deadline_runner, which


def _run_command(argv, environ_update=None):
    proc = subprocess.run(argv, capture_output=True, text=True, env=None, check=False)
    return proc.returncode, proc.stdout, proc.stderr


# The modules' runner is deadline_runner() (subprocess under coreutils' timeout); a run_command given
# (AnsibleModule's signature) replaces subprocess under timeout.
RUNNERS = [(None, which("timeout")), (_run_command, which("timeout")), (None, "")]
RUNNER_IDS = ["subprocess-under-timeout", "run_command-under-timeout", "subprocess-alone"]


@pytest.mark.parametrize(("run_command", "timeout_bin"), RUNNERS, ids=RUNNER_IDS)
def test_a_command_that_finishes_returns_its_output(run_command, timeout_bin):
    run = deadline_runner(run_command, timeout_bin=timeout_bin)
    assert run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10) == (3, "out\n", "err\n")


@pytest.mark.parametrize(("run_command", "timeout_bin"), RUNNERS, ids=RUNNER_IDS)
def test_a_hung_command_is_an_error_naming_it(run_command, timeout_bin):
    run = deadline_runner(run_command, timeout_bin=timeout_bin)
    with pytest.raises(CommandTimeoutError, match=r"`sleep 30` did not finish within 1 s"):
        run(["sleep", "30"], timeout=0.2)


def test_the_environment_asked_for_reaches_the_command_over_the_modules_own():
    run = deadline_runner(timeout_bin=which("timeout"))
    assert run(["sh", "-c", 'echo "$WP502_T:$PATH"'], env={"WP502_T": "x"})[1].startswith("x:/")


def test_a_timeout_that_hangs_itself_is_stopped_by_the_backstop(tmp_path, monkeypatch):
    """coreutils' timeout kills at the deadline; should it hang, subprocess's own deadline (BACKSTOP_SECONDS later) ends it."""
    monkeypatch.setitem(deadline_runner.__globals__, "BACKSTOP_SECONDS", 0)
    stuck = tmp_path / "timeout"
    stuck.write_text("#!/bin/sh\nexec sleep 30\n")
    stuck.chmod(0o755)
    run = deadline_runner(timeout_bin=str(stuck))
    with pytest.raises(CommandTimeoutError, match=r"`true` did not finish within 1 s"):
        run(["true"], timeout=-9)  # (a deadline of at least 1 s)


def test_the_default_deadline_applies_when_none_is_asked():
    seen = []

    def fake(argv, environ_update=None):
        seen.append(argv)
        return 0, "", ""

    deadline_runner(fake, timeout_bin="/usr/bin/timeout", default=7)(["nginx", "-T"])
    assert seen == [["/usr/bin/timeout", "-k", "5", "7", "nginx", "-T"]]
