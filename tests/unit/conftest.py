"""The module harness: run a module's main() as Ansible does (args in, JSON out), as community.general does."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args


@pytest.fixture
def run_module(capsys):
    """run_module(module, **args) -> the module's JSON result, with its exit code under "_rc"."""

    def run(module, **args):
        with patch_module_args(args), pytest.raises(SystemExit) as exc:
            module.main()
        out = json.loads(capsys.readouterr().out)
        out["_rc"] = exc.value.code
        return out

    return run
