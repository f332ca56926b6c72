#!/usr/bin/env python3
"""Benchmark the wp502_report role at several fleet sizes in one run (100, 1000 and 5000 hosts by
default), no target needed; about 90 s.

    bench_report.py [--sizes 100,1000,5000] [--runs 4] [--budget 90] [--out docs/benchmarks.md]

The hosts are the evidence of the three lab hosts (bench/fixtures/lab-evidence/, written by a lab
audit) repeated under new names, a fresh copy per host, set as each host's wp502_evidence_result by
the benchmark's inventory plugin (bench/inventory_plugins/wp502_bench_fleet.py), plain data as a
module's result is; one play on localhost runs the report role over them, as audit-502.yml's report
task does. Each fleet size runs in its own ansible-playbook (its own inventory, whose loading is not
measured). The sizes take turns (100, 1000, 5000, 100, 1000, ...), so a slow minute of the machine
falls on every size alike: every size once, then again, up to --runs rounds, while its last run still
fits in --budget seconds (the small sizes run more often than 5000). Each size's figure is its best
round. What is measured, from the role's first task to the end of the play: the controller's CPU
seconds (its process and the task workers', bench/callback_plugins/wp502_bench_cpu.py), the figure
the ratios are of, and the wall clock (from ansible-runner's events), which grows with whatever else
the machine runs. Every figure is a ratio to the first size's (the baseline) measured in the same
run, with the CPU cost per host; they are written to the "Fleet report" section of
docs/benchmarks.md (the other sections stay).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
PLUGINS = ROOT / "bench" / "inventory_plugins"
CALLBACKS = ROOT / "bench" / "callback_plugins"
# The role's tasks that touch every host (the others take the same time at any size).
PER_HOST_TASKS = ("Summarise the fleet", "Write each host's evidence and the summary (JSON, Markdown, HTML, Prometheus)")


def measure(n: int, tmp: Path) -> dict:
    """One run of the report role over n hosts: its tasks' wall-clock seconds (``seconds``) and the controller's
    CPU seconds for them (``cpu``, bench/callback_plugins/wp502_bench_cpu.py), seconds per task, the report's size."""
    private = tmp / f"n{n}"
    shutil.rmtree(private, ignore_errors=True)
    (private / "inventory").mkdir(parents=True)
    (private / "project").mkdir()
    (private / "inventory" / "fleet.wp502_bench.yml").write_text(json.dumps(
        {"plugin": "wp502_bench_fleet", "hosts": n, "evidence": str(EVIDENCE)}))
    reports = private / "reports"
    (private / "project" / "report.yml").write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "Write the fleet report", "ansible.builtin.include_role": {"name": str(ROOT / "roles" / "wp502_report")},
             "vars": {"wp502_report_hosts": "{{ groups['fleet'] }}", "wp502_report_dir": str(reports),
                      "wp502_report_set_stats": False}}]}]))
    env = {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_INVENTORY_PLUGINS": str(PLUGINS),
           "ANSIBLE_INVENTORY_ENABLED": "wp502_bench_fleet", "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
           "ANSIBLE_CALLBACKS_ENABLED": "wp502_bench_cpu", "WP502_BENCH_CPU": str(private / "cpu.json")}
    r = ansible_runner.run(private_data_dir=str(private), playbook="report.yml", quiet=True, envvars=env)
    if r.status != "successful":
        sys.exit(f"report role failed at {n} hosts: {r.status}\n" + r.stdout.read()[-3000:])
    done = [e["event_data"] for e in r.events if e.get("event") in ("runner_on_ok", "runner_on_skipped")]
    seconds = (datetime.fromisoformat(max(d["end"] for d in done))
               - datetime.fromisoformat(min(d["start"] for d in done))).total_seconds()
    tasks = dict((d.get("task"), float(d.get("duration") or 0)) for d in done)
    (run,) = reports.iterdir()
    written = len(list((run / "hosts").glob("*.json")))
    if written != n:  # a benchmark of a report that is not whole measures nothing
        sys.exit(f"the report at {n} hosts has {written} host files")
    size = sum(p.stat().st_size for p in reports.rglob("*") if p.is_file())
    cpu = json.loads((private / "cpu.json").read_text())["cpu"]
    shutil.rmtree(private, ignore_errors=True)
    return {"seconds": seconds, "cpu": cpu, "tasks": tasks, "bytes": size}


def section(sizes: list[int], results: dict, runs: int, budget: float, wall: float) -> str:
    """The "Fleet report" section of docs/benchmarks.md: per size its best round by CPU time and by wall-clock
    time, each a ratio to the baseline's best of the same kind, and the CPU cost per host."""
    base = sizes[0]
    best_cpu = {n: min(r["cpu"] for r in results[n]) for n in sizes}
    best_wall = {n: min(r["seconds"] for r in results[n]) for n in sizes}
    rows = []
    for n in sizes:
        ratio = "baseline" if n == base else f"{best_cpu[n] / best_cpu[base]:.1f}x"
        wall_ratio = "baseline" if n == base else f"{best_wall[n] / best_wall[base]:.1f}x"
        goal = "" if n == base else f"<= {n // base}x"
        size = min(r["bytes"] for r in results[n])
        rows.append(f"| {n} | {best_cpu[n]:.2f} s | {ratio} | {goal} | {best_cpu[n] / n * 1000:.2f} ms | "
                    f"{best_wall[n]:.2f} s | {wall_ratio} | {size / 1e6:.1f} MB |")
    rounds = "; ".join(f"{n} hosts " + ", ".join(f"{r['cpu']:.2f}/{r['seconds']:.2f}" for r in results[n]) for n in sizes)
    args = f"--sizes {','.join(map(str, sizes))} --runs {runs} --budget {budget:.0f}"
    counts = ", ".join(f"{n} hosts {len(results[n])}" for n in sizes)
    return (f"\n## Fleet report\n\nMeasured by `make bench` (`bench/bench_report.py {args}`) on {time.strftime('%Y-%m-%d')}, "
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}: the wp502_report role on the "
            "controller (no target) over the evidence of the three lab hosts (bench/fixtures/lab-evidence/, about 40 KB "
            "each) repeated, a fresh copy per host, as the audit leaves each host's module result. Each size runs in its "
            "own ansible-playbook (its own inventory, not timed); the sizes take turns (100, 1000, 5000, 100, ...), "
            f"up to {runs} rounds within --budget {budget:.0f} s, so the small sizes run more often ({counts}); each "
            f"figure is its size's best round. The whole benchmark took {wall:.0f} s.\n\n"
            "| hosts | controller CPU | ratio | goal | CPU per host | wall clock | wall ratio | report size |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n\n"
            "The ratio is the controller's CPU seconds (its process and the task workers', from the role's first task to "
            "the end of the play) against the baseline's in the same run: CPU time moves much less than the wall clock "
            "with whatever else the machine runs (not nothing: a busy neighbour on the same cores still slows each "
            "instruction), and the wall clock is the second ratio, for reference (on a quiet machine the two agree). "
            f"The goal is linear: N times the hosts, at most N times the cost. Every round, CPU/wall seconds: {rounds}.\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,5000", help="fleet sizes, the first is the baseline")
    parser.add_argument("--runs", type=int, default=4, help="rounds (each size once per round); the best counts")
    parser.add_argument("--budget", type=float, default=90,
                        help="seconds: after the first round, a size runs again only if its last run still fits")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    started = time.monotonic()
    results: dict[int, list[dict]] = {n: [] for n in sizes}
    took: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.runs):
            for n in sizes:
                if round_no and time.monotonic() - started + took[n] > args.budget:
                    continue  # every size once, then again while the time allows: the small ones more often
                begun = time.monotonic()
                got = measure(n, Path(tmp))
                took[n] = time.monotonic() - begun
                results[n].append(got)
                slow = ", ".join(f"{t} {x:.2f} s" for t, x in sorted(got["tasks"].items(), key=lambda kv: -kv[1])[:2])
                print(f"round {round_no + 1}: {n} hosts: CPU {got['cpu']:.2f} s, wall {got['seconds']:.2f} s ({slow})", flush=True)
    wall = time.monotonic() - started
    base = sizes[0]
    for n in sizes:
        cpu, clock = min(r["cpu"] for r in results[n]), min(r["seconds"] for r in results[n])
        print(f"{n} hosts: CPU {cpu:.2f} s ({cpu / min(r['cpu'] for r in results[base]):.1f}x {base} hosts), "
              f"wall {clock:.2f} s ({clock / min(r['seconds'] for r in results[base]):.1f}x)")
    print(f"took {wall:.0f} s")
    out = Path(args.out)
    text = out.read_text() if out.exists() else "# Benchmarks\n"
    text = re.sub(r"\n## Fleet report\n.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip("\n") + "\n" + section(
        sizes, results, args.runs, args.budget, wall)
    out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
