#!/usr/bin/env python3
"""Benchmark the emergency ladder: probes to find a culprit, heal time per fault on the lab, and the
fpm_down heal against a bare restart plus one probe, measured in the same run.

    bench_emergency.py [--runs 3] [--faults fpm_down,segfault,...] [--out docs/benchmarks.md]

Bisection is measured on every culprit position among 8 to 64 plugins, against the seed's
batches of five. The lab part runs one nginx target (prefix wp502-bench-em, 127.0.0.1 ports), fresh
for each fault (so that the evidence holds that incident only), induces the fault with the lab role,
times `ansible-playbook playbooks/emergency-502.yml`, and removes the target. Writes the
"## Emergency ladder" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Before any module_utils: makes them importable as ansible.module_utils.wp502_* (the name they import each other by).
importlib.import_module("tests.conftest")
import labctl  # noqa: E402
from wp502_ladder import find_culprits  # noqa: E402

FAULTS = ["fpm_down", "segfault", "invalid_header", "too_big_header", "upstream_timeout", "slow_db", "bom", "max_children"]


def seed_batches(plugins, probe, size=5):
    """The seed's way: deactivate batches of five until the site heals, then bring the last batch
    back one at a time."""
    probes, out = 0, []
    for i in range(0, len(plugins), size):
        out += plugins[i:i + size]
        probes += 1
        if probe([p for p in plugins if p not in out]):
            break
    for p in plugins[i:i + size]:
        probes += 1
        if not probe([x for x in plugins if x not in out or x == p]):
            break
    return probes


def bisection_rows():
    rows = []
    for n in (8, 16, 32, 64):
        plugins = [f"p{i}" for i in range(n)]
        ours, seed = [], []
        for culprit in plugins:
            def probe(active, culprit=culprit):
                return culprit not in active
            found = find_culprits(plugins, probe)
            assert found["culprits"] == [culprit]
            ours.append(found["probes"])
            seed.append(seed_batches(plugins, probe))
        rows.append((n, max(ours), sum(ours) / n, max(seed), sum(seed) / n, math.ceil(math.log2(n)) + 1))
    return rows


def playbook(inventory, playbook_path, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    start = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook_path), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    return time.perf_counter() - start, proc


def write_section(out, runs, bisect, heal, bare, ours):
    """Replace the "## Emergency ladder" section of docs/benchmarks.md."""
    lines = [
        "", "## Emergency ladder", "",
        f"Measured by `make bench-emergency` (`bench/bench_emergency.py --runs {runs}`) on {time.strftime('%Y-%m-%d')}: "
        "one nginx lab target, each fault induced for real by the lab role, then the whole `ansible-playbook "
        "playbooks/emergency-502.yml` timed from the controller over SSH (process start-up, evidence, lock, rungs "
        "and probes, the summary play).", "",
        "| what | baseline | wp502 | ratio | goal |", "| --- | --- | --- | --- | --- |",
        f"| fpm_down healed, best of {runs} | bare `systemctl restart` + one probe (a 2-task playbook): {min(bare):.1f} s "
        f"| emergency-502.yml: {min(ours):.1f} s | {min(ours) / min(bare):.2f}x | target <= 1.5x |",
    ]
    for n, worst, mean, seed_worst, seed_mean, bound in bisect:
        goal = "target <= 6" if n == 32 else f"bound ceil(log2 n)+1 = {bound}"
        lines.append(f"| probes to find one culprit among {n} plugins (every position) | seed's batches of five: worst "
                     f"{seed_worst}, mean {seed_mean:.1f} | bisection: worst {worst}, mean {mean:.1f} | "
                     f"{worst / seed_worst:.2f}x (worst) | {goal} |")
    lines += ["", "The plugins rung sends one more probe before bisecting, with every plugin out: it tells whether the "
              "plugins are the cause at all (if not, everything goes back after that single probe).", "",
              "| fault | time to heal (whole run) | healed by | outcome |", "| --- | --- | --- | --- |"]
    for fault, seconds, cause, outcome in heal:
        rung = re.search(r"healed by (\S+)|healed \d+ of \d+ failing sites?: .*? by (\w+)", outcome)
        lines.append(f"| {fault} | {seconds:.1f} s | {(rung.group(1) or rung.group(2)) if rung else '-'} | {cause}; {outcome} |")
    section = "\n".join(lines) + "\n"
    print(section)
    text = out.read_text() if out.exists() else "# Benchmarks\n"
    text = re.sub(r"\n## Emergency ladder\n.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip("\n") + "\n" + section
    out.write_text(text)


def main(argv=None) -> int:  # noqa: PLR0915 - one sequence of lab steps, read top to bottom
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    bisect = bisection_rows()
    prefix = "wp502-bench-em"
    target = labctl.plan_fleet(1, 0, prefix, 30980, 32980)[0]
    labctl.build(["nginx"])
    key = labctl.ensure_ssh_key()
    heal, bare, ours = [], [], []

    def fresh():
        labctl.docker("rm", "-f", target["container"], check=False)
        labctl.start_target(target, prefix, key.with_suffix(".pub").read_text())
        labctl.wait_ready(target, 300)

    try:
        fresh()
        with tempfile.TemporaryDirectory() as tmp:
            inv = Path(tmp) / "hosts.json"
            host = {"ansible_host": "127.0.0.1", "ansible_port": target["ssh_port"], "ansible_ssh_private_key_file": str(key),
                    "wp502_lab_http_port": target["http_port"], "wp502_lab_container": target["container"],
                    "wp502_lab_frontend": "nginx"}
            inv.write_text(json.dumps({"all": {"children": {"wp502_lab": {"hosts": {"bench": host}},
                                                            "wordpress": {"hosts": {"bench": {}}}}}}))
            (Path(tmp) / "group_vars").symlink_to(ROOT / "inventories" / "lab" / "group_vars")
            reports = Path(tmp) / "reports"
            emergency = [ROOT / "playbooks" / "emergency-502.yml", "-e", "wp502_emergency_storm_minutes=0",
                         "-e", f"wp502_report_dir={reports}", "-e", "wp502_emergency_known_culprit_minutes=0"]

            def last_result():
                """The host's result in the newest results.json: (top cause, outcome line)."""
                newest = max(reports.glob("emergency-*/results.json"), key=lambda p: p.stat().st_mtime)
                result = json.loads(newest.read_text())["bench"]
                return result.get("top_cause") or "?", result.get("line") or "?"

            def brk(fault):
                _t, proc = playbook(inv, ROOT / "playbooks" / "lab-break.yml", "-e", f"wp502_lab_fault={fault}")
                assert proc.returncode == 0, proc.stdout[-3000:]

            for n, fault in enumerate(f for f in args.faults.split(",") if f):
                if n:
                    fresh()
                brk(fault)
                seconds, proc = playbook(inv, *emergency)
                cause, line = last_result()
                heal.append((fault, seconds, cause, line))
                print(f"{fault}: {seconds:.1f} s, {heal[-1][3]}", flush=True)
            fresh()
            for _ in range(args.runs):
                brk("fpm_down")
                seconds, proc = playbook(inv, ROOT / "bench" / "playbooks" / "bare-restart.yml")
                assert proc.returncode == 0, proc.stdout[-3000:]
                bare.append(seconds)
                brk("fpm_down")
                seconds, proc = playbook(inv, *emergency)
                cause, line = last_result()
                assert line.startswith("healed") and line.endswith("by restart_fpm"), line + proc.stdout[-3000:]
                ours.append(seconds)
    finally:
        labctl.docker("rm", "-f", target["container"], check=False)

    write_section(Path(args.out), args.runs, bisect, heal, bare, ours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
