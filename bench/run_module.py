#!/usr/bin/env python3
"""Run the real wp502_log_scan module once, the way Ansible does (args in, JSON out), for benchmarks.

    run_module.py '{"path": ["/var/log/nginx/error.log"], "since": "all"}'

Prints the module's JSON; the bench measures this process's time and peak RSS.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "plugins" / "module_utils"), str(ROOT / "plugins" / "modules")]

import wp502_logscan  # noqa: E402

sys.modules["ansible.module_utils.wp502_logscan"] = wp502_logscan

import wp502_log_scan  # noqa: E402
from ansible.module_utils.testing import patch_module_args  # noqa: E402

with patch_module_args(json.loads(sys.argv[1])):
    wp502_log_scan.main()
