"""The wp502 command on a real target: progress as the run goes, the table at the end, and an exit
status that says what is left broken."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def wp502(target, *args):
    cmd = [str(Path(sys.executable).parent / "wp502"), *args, "-i", str(target.inventory)]
    return subprocess.run(cmd, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=600, check=False)


def test_audit_then_emergency_from_the_command_line(nginx_target, tmp_path):
    nginx_target.break_("fpm_down")
    audit = wp502(nginx_target, "audit", "-e", "wp502_audit_hosts=wp502_lab", "-e", f"wp502_report_dir={tmp_path}")
    assert audit.returncode == 1, audit.stdout[-3000:] + audit.stderr[-2000:]  # a host has a cause of 502s
    assert any(line.startswith("[") and nginx_target.name in line and "ok" in line for line in audit.stdout.splitlines())
    assert f"{nginx_target.name:<14} {'/var/www/wordpress':<24} {'fpm_down':<18} 502s: run the emergency" in audit.stdout

    heal = wp502(nginx_target, "emergency", "-l", nginx_target.name, "-e", "wp502_emergency_hosts=wp502_lab",
                 "-e", f"wp502_report_dir={tmp_path}")
    assert heal.returncode == 0, heal.stdout[-3000:] + heal.stderr[-2000:]
    progress = [line for line in heal.stdout.splitlines() if line.startswith("[")]
    assert any("Restart PHP-FPM" in line and "changed" in line for line in progress)  # streamed as it went
    assert any(line.endswith(f"{nginx_target.name}: healed 1 of 1 failing site: /var/www/wordpress by restart_fpm")
               for line in progress)
    table = heal.stdout.rstrip().split("\n\n")[-1]
    assert nginx_target.name in table and "healed by restart_fpm" in table and "restart_fpm (" in table
    assert nginx_target.get("/") == 200

    again = wp502(nginx_target, "audit", "-e", "wp502_audit_hosts=wp502_lab", "-e", f"wp502_report_dir={tmp_path}")
    assert again.returncode == 0, again.stdout[-3000:]
