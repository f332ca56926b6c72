"""Shared helpers for wp502's tests."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# lab/labctl.py is a script, not a package: make it importable for the lab tests.
sys.path.insert(0, str(ROOT / "lab"))
