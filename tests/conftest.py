"""Shared helpers for wp502's tests."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# lab/labctl.py is a script, not a package: make it importable for the lab tests.
sys.path.insert(0, str(ROOT / "lab"))
# module_utils are plain modules: importable on their own, and under the name Ansible gives them.
sys.path.insert(0, str(ROOT / "plugins" / "module_utils"))
sys.path.insert(0, str(ROOT / "plugins" / "modules"))

import wp502_logscan  # noqa: E402

sys.modules.setdefault("ansible.module_utils.wp502_logscan", wp502_logscan)
