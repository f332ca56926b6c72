"""Every external command has a deadline: wp502_host.deadline_runner, on real processes."""

from __future__ import annotations

import subprocess

import pytest
from ansible.module_utils.wp502_host import CommandTimeoutError, deadline_runner, which


def _run_command(argv, environ_update=None):
    proc = subprocess.run(argv, capture_output=True, text=True, env=None, check=False)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("timeout_bin", [which("timeout"), ""], ids=["coreutils-timeout", "subprocess"])
def test_a_command_that_finishes_returns_its_output(timeout_bin):
    run = deadline_runner(_run_command, timeout_bin=timeout_bin)
    assert run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10) == (3, "out\n", "err\n")


@pytest.mark.parametrize("timeout_bin", [which("timeout"), ""], ids=["coreutils-timeout", "subprocess"])
def test_a_hung_command_is_an_error_naming_it(timeout_bin):
    run = deadline_runner(_run_command, timeout_bin=timeout_bin)
    with pytest.raises(CommandTimeoutError, match=r"`sleep 30` did not finish within 1 s"):
        run(["sleep", "30"], timeout=0.2)


def test_the_default_deadline_applies_when_none_is_asked():
    seen = []

    def fake(argv, environ_update=None):
        seen.append(argv)
        return 0, "", ""

    deadline_runner(fake, timeout_bin="/usr/bin/timeout", default=7)(["nginx", "-T"])
    assert seen == [["/usr/bin/timeout", "-k", "5", "7", "nginx", "-T"]]
