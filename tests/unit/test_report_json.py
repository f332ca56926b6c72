"""hosts/HOST.json: the report action serialises each host's evidence once, with the standard library's encoder, and
must write the very text Ansible's to_nice_json wrote before (the merge keeps each file as its audit wrote it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run in a child Python: importing an action plugin here would set up ansible's controller state in this process
# (see test_action_write_report.py's _Console).
_CODE = """
import datetime, importlib.util, json, sys
from pathlib import Path
from ansible.plugins.filter.core import to_nice_json
from ansible.template import trust_as_template
spec = importlib.util.spec_from_file_location("wp502_write_report", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
values = [json.loads(p.read_text()) for p in sorted(Path(sys.argv[2]).glob("*.json"))]
values += [
    {"é": "café ☕ \\u2028", "b": [0.1, 1e-07, 1e16, -0.0, 3, True, None, [], {}], "a": {"z": 1, "y": [{"x": ""}]}},
    {"tuple": (1, "two"), 5: "an int key", "tagged": trust_as_template("{{ not rendered }}")},
    {"set": {1}, "when": datetime.datetime(2026, 12, 2, 3, 4, 5)},  # what the standard library cannot encode
]
print(json.dumps([[m._nice_json(v), to_nice_json(v)] for v in values]))
"""


def test_each_host_file_is_the_text_to_nice_json_gives():
    proc = subprocess.run([sys.executable, "-c", _CODE, str(ROOT / "plugins" / "action" / "wp502_write_report.py"),
                           str(ROOT / "bench" / "fixtures" / "lab-evidence")],
                          capture_output=True, text=True, timeout=60, check=True)
    pairs = json.loads(proc.stdout)
    assert len(pairs) == 6
    for ours, ansible in pairs:
        assert ours == ansible
    assert '"when": "2026-12-02T03:04:05"' in pairs[-1][0]  # through to_nice_json itself
