#!/usr/bin/env python3
"""Benchmark the wp502_report role at two fleet sizes (100 and 1000 hosts by default), no target needed.

    bench_report.py [--small 100] [--big 1000] [--runs 2] [--out docs/benchmarks.md]

The hosts are the evidence of the three lab hosts (bench/fixtures/lab-evidence/, written by a lab
audit) repeated under new names, given as host variables of an inventory; one play on localhost runs
the report role over them, as audit-502.yml's report play does. The time is the role's tasks only
(from ansible-runner's events: the include's start to the last task's end), best of --runs; inventory loading is not in it. The ratio
big / small is written to the "Fleet report" section of docs/benchmarks.md (the other sections stay).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import ansible_runner

ROOT = Path(__file__).resolve().parent.parent
EVIDENCE = ROOT / "bench" / "fixtures" / "lab-evidence"


def fleet(n: int) -> dict:
    """An inventory of n hosts (local connection), each with one lab host's evidence."""
    lab = [json.loads(p.read_text()) for p in sorted(EVIDENCE.glob("*.json"))]
    hosts = {f"web{i:05d}": {"wp502_evidence_result": lab[i % len(lab)]} for i in range(n)}
    return {"all": {"children": {"fleet": {"hosts": hosts}},
                    "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}


def measure(n: int, tmp: Path) -> tuple[float, int, dict]:
    """Seconds the report role's tasks take for n hosts, the report's size in bytes, and seconds per task."""
    private = tmp / f"n{n}"
    shutil.rmtree(private, ignore_errors=True)
    (private / "inventory").mkdir(parents=True)
    (private / "project").mkdir()
    (private / "inventory" / "hosts.json").write_text(json.dumps(fleet(n)))
    reports = private / "reports"
    (private / "project" / "report.yml").write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "Write the fleet report", "ansible.builtin.include_role": {"name": str(ROOT / "roles" / "wp502_report")},
             "vars": {"wp502_report_hosts": "{{ groups['fleet'] }}", "wp502_report_dir": str(reports),
                      "wp502_report_set_stats": False}}]}]))
    r = ansible_runner.run(private_data_dir=str(private), playbook="report.yml", quiet=True,
                           envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
    if r.status != "successful":
        sys.exit(f"report role failed at {n} hosts: {r.status}\n" + r.stdout.read()[-3000:])
    # From the include's start to the role's last task's end (ISO times with the same offset).
    done = [e["event_data"] for e in r.events if e.get("event") in ("runner_on_ok", "runner_on_skipped")]
    seconds = (datetime.fromisoformat(max(d["end"] for d in done))
               - datetime.fromisoformat(min(d["start"] for d in done))).total_seconds()
    tasks = dict((d.get("task"), float(d.get("duration") or 0)) for d in done)
    for task, took in tasks.items():
        print(f"  {n} hosts: {task}: {took:.2f} s", flush=True)
    size = sum(p.stat().st_size for p in reports.rglob("*") if p.is_file())
    return seconds, size, tasks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--big", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    figures, slowest = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (args.small, args.big):
            runs = [measure(n, Path(tmp)) for _ in range(args.runs)]
            best = min(runs, key=lambda r: r[0])
            figures[n] = (best[0], best[1])
            slowest[n] = sorted(best[2].items(), key=lambda kv: -kv[1])[:2]
            print(f"{n} hosts: {figures[n][0]:.2f} s, report {figures[n][1] / 1e6:.1f} MB", flush=True)
    (small_s, small_b), (big_s, big_b) = figures[args.small], figures[args.big]
    ratio = big_s / small_s if small_s else float("inf")
    print(f"ratio {args.big}/{args.small}: {ratio:.1f}x")
    section = (f"\n## Fleet report\n\nMeasured by `make bench` (`bench/bench_report.py --small {args.small} --big {args.big} "
               f"--runs {args.runs}`) on {time.strftime('%Y-%m-%d')}, best of {args.runs} runs: the wp502_report role's tasks "
               "on the controller (no target), the evidence of the three lab hosts (bench/fixtures/lab-evidence/) repeated.\n\n"
               "| hosts | role time | report size | ratio | goal |\n| --- | --- | --- | --- | --- |\n"
               f"| {args.small} | {small_s:.2f} s | {small_b / 1e6:.1f} MB |  |  |\n"
               f"| {args.big} | {big_s:.2f} s | {big_b / 1e6:.1f} MB | {ratio:.1f}x ({args.big} / {args.small}) | "
               f"<= {args.big // args.small}x |\n\nThe slowest tasks: " + "; ".join(
                   f"at {n} hosts " + ", ".join(f"{task} {took:.2f} s" for task, took in slowest[n]) for n in slowest)
               + ". Both read every host's variables (`hostvars[host]` in the summary filter, `raw_get` in the action): "
               "Ansible assembles a host's variables in a time that grows with the inventory, so those two tasks are where a "
               "larger fleet costs more than its size. The VM's speed varies: a run beside other tests measured 17x; compare "
               "runs made on a quiet machine.\n")
    out = Path(args.out)
    text = out.read_text() if out.exists() else "# Benchmarks\n"
    text = re.sub(r"\n## Fleet report\n.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip("\n") + "\n" + section
    out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
