"""The wp502_write_report action plugin through ansible-playbook on the controller: nested files,
check mode still writes, odd names refused with a clear message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def play(tmp_path, files, *args):
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "write", "wp502_write_report": {"dir": str(tmp_path / "out" / "run1"), "files": files}}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(book), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_files_are_written_with_their_directories_even_in_check_mode(tmp_path):
    proc = play(tmp_path, {"report.html": "<p>ok</p>", "hosts/web1.json": '{"a": 1}'}, "--check")
    assert proc.returncode == 0, proc.stdout[-2000:]
    out = tmp_path / "out" / "run1"
    assert (out / "report.html").read_text() == "<p>ok</p>" and json.loads((out / "hosts" / "web1.json").read_text()) == {"a": 1}
    assert not [p for p in out.rglob(".wp502-*")]  # no temporary file left behind


def test_names_outside_the_directory_are_refused(tmp_path):
    proc = play(tmp_path, {"../escape.txt": "x"})
    assert proc.returncode != 0 and "must be relative paths inside dir" in proc.stdout
    assert not (tmp_path / "out" / "escape.txt").exists()
