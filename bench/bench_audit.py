#!/usr/bin/env python3
"""Benchmark audit-502.yml on a lab fleet against `ansible -m ping` of the same hosts, in one run.

    bench_audit.py [--hosts 20] [--out docs/benchmarks.md]

Starts a fleet of N lab targets (prefix wp502-bench, ports 127.0.0.1:3xxxx), times
`ansible -m ansible.builtin.ping` and `ansible-playbook playbooks/audit-502.yml` over SSH with the
same forks, counts the module round trips per host from ansible-runner's events, appends the
figures to docs/benchmarks.md, and removes the fleet.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import ansible_runner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lab"))
import labctl  # noqa: E402

# Tasks that run on the controller only (no connection to the host): not round trips.
LOCAL_ACTIONS = {"ansible.builtin.set_fact", "set_fact", "ansible.builtin.debug", "debug", "ansible.builtin.include_role",
                 "include_role", "ansible.builtin.set_stats", "set_stats", "ansible.builtin.validate_argument_spec",
                 "validate_argument_spec"}


def run(private, **kw):
    start = time.perf_counter()
    r = ansible_runner.run(private_data_dir=str(private), quiet=True, envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
                           **kw)
    return time.perf_counter() - start, r


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    prefix = "wp502-bench"
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    fleet = labctl.plan_fleet(args.hosts, args.hosts // 4, prefix, 30080, 32220)
    labctl.build(sorted({t["frontend"] for t in fleet}))
    key = labctl.ensure_ssh_key()
    try:
        for t in fleet:
            labctl.start_target(t, prefix, key.with_suffix(".pub").read_text())
        for t in fleet:
            labctl.wait_ready(t, 300)
        with tempfile.TemporaryDirectory() as tmp:
            private = Path(tmp)
            (private / "inventory").mkdir()
            hosts = {t["name"]: {"ansible_host": "127.0.0.1", "ansible_port": t["ssh_port"],
                                 "ansible_ssh_private_key_file": str(key), "wp502_lab_http_port": t["http_port"]}
                     for t in fleet}
            (private / "inventory" / "hosts.json").write_text(json.dumps({"all": {"children": {"wordpress": {"hosts": hosts}}}}))
            (private / "inventory" / "group_vars").symlink_to(ROOT / "inventories" / "lab" / "group_vars")
            ping_t, audit_t, trips, collect = [], [], None, [0]
            for _ in range(args.runs):
                t, r = run(private, host_pattern="wordpress", module="ansible.builtin.ping")
                assert r.status == "successful", r.status
                ping_t.append(t)
                t, r = run(private, project_dir=str(ROOT), playbook="playbooks/audit-502.yml",
                           extravars={"wp502_report_dir": str(private / "reports"), "wp502_evidence_since": "15m"})
                assert r.status == "successful", r.status
                audit_t.append(t)
                counts = Counter(e["event_data"]["host"] for e in r.events
                                 if e["event"] in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable")
                                 and e["event_data"].get("host") != "localhost"
                                 and e["event_data"].get("task_action") not in LOCAL_ACTIONS
                                 # the report's tasks run on the controller, delegated
                                 and "_ansible_delegated_vars" not in (e["event_data"].get("res") or {}))
                trips = sorted(set(counts.values()))
                collect = sorted(json.loads(f.read_text()).get("collect_seconds", 0)
                                 for f in (private / "reports").glob("audit-*/hosts/*.json"))
    finally:
        names = labctl.fleet_containers(prefix)
        if names:
            labctl.docker("rm", "-f", *names)
    ping, audit = min(ping_t), min(audit_t)
    row = (f"| fleet audit, {args.hosts} lab hosts over SSH | `ansible -m ping`: {ping:.1f} s | audit-502.yml: {audit:.1f} s "
           f"| {audit / ping:.2f}x ping | target <= 2x | {', '.join(map(str, trips))} per host (target 1); "
           f"collection on the host: median {collect[len(collect) // 2]:.2f} s |")
    print(row)
    out = Path(args.out)
    text = out.read_text() if out.exists() else "# Benchmarks\n"
    section = (f"\n## Fleet audit\n\nMeasured by `make bench-audit` (`bench/bench_audit.py --hosts {args.hosts}`) on "
               f"{time.strftime('%Y-%m-%d')}, best of {args.runs} runs, forks from ansible.cfg; the audit includes the "
               "controller-side report. The 20 targets share the machine's cores with the controller, so the "
               "WordPress pages the probes render and the file checks of every host compete for the same CPU; ping "
               "does no work on the hosts.\n\n"
               f"| what | baseline | wp502 | ratio | goal | round trips |\n| --- | --- | --- | --- | --- | --- |\n{row}\n")
    text = re.sub(r"\n## Fleet audit\n.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip("\n") + "\n" + section
    out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
