#!/usr/bin/env python3
"""Benchmark audit-502.yml on a lab fleet against `ansible -m ping` of the same hosts, in one run.

    bench_audit.py [--hosts 20] [--runs 2] [--collect-runs 3] [--out docs/benchmarks.md]

Two parts, one run:
- Per-host collection: one nginx target (prefix wp502-bench-au, ports 127.0.0.1:310xx/312xx),
  idle, then saturated (the lab's max_children fault: a 2-worker pool and a plugin that holds each
  request wp502_lab_slow_seconds, plus the bench's own bounded load, so every worker is busy and
  requests wait in the listen queue). On each state it times the wp502_evidence task of
  audit-502.yml (ansible-runner's event duration, and the module's own collect_seconds) against
  `ansible -m ansible.builtin.ping` of the same host in the same state.
- Fleet: N lab targets (prefix wp502-bench, ports 127.0.0.1:3xxxx), times
  `ansible -m ansible.builtin.ping` and `ansible-playbook playbooks/audit-502.yml` over SSH with the
  same forks and counts the module round trips per host from ansible-runner's events.
The figures replace the "Fleet audit" section of docs/benchmarks.md; the targets are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
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


def inventory(private: Path, fleet, key) -> None:
    (private / "inventory").mkdir()
    hosts = {t["name"]: {"ansible_host": "127.0.0.1", "ansible_port": t["ssh_port"],
                         "ansible_ssh_private_key_file": str(key), "wp502_lab_http_port": t["http_port"]}
             for t in fleet}
    (private / "inventory" / "hosts.json").write_text(json.dumps(
        {"all": {"children": {"wordpress": {"hosts": hosts}, "wp502_lab": {"hosts": {h: {} for h in hosts}}}}}))
    (private / "inventory" / "group_vars").symlink_to(ROOT / "inventories" / "lab" / "group_vars")


def run_audit(private, limit=None):
    """One audit-502.yml run: (wall seconds, ansible-runner result)."""
    t, r = run(private, project_dir=str(ROOT), playbook="playbooks/audit-502.yml", limit=limit,
               extravars={"wp502_report_dir": str(private / "reports"), "wp502_evidence_since": "15m"})
    if r.status != "successful":
        raise SystemExit(f"audit-502.yml ended {r.status}; its output is in {private}/artifacts")
    return t, r


# --- per-host collection, idle and saturated ---------------------------------------------------

# Bounds of the bench's own load on the saturated host (requests, seconds, at once).
# Four at a time fill the 2 workers and the listen backlog of 2 the fault sets, without overflowing it much.
LOAD_MAX_REQUESTS = 600
LOAD_MAX_SECONDS = 300
LOAD_CONCURRENCY = 4
SATURATION_WAIT_S = 90
FPM_SOCKET = "/run/php/php8.2-fpm.sock"
FPM_LOG = "/var/log/php8.2-fpm.log"


class Load:
    """Bounded page views to 127.0.0.1:PORT from LOAD_CONCURRENCY threads, until stop() or a bound."""

    def __init__(self, port: int):
        self.port, self.stop_ev, self.sent, self.lock = port, threading.Event(), 0, threading.Lock()
        self.deadline = time.monotonic() + LOAD_MAX_SECONDS
        self.threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(LOAD_CONCURRENCY)]

    def _worker(self):
        while not self.stop_ev.is_set() and time.monotonic() < self.deadline:
            with self.lock:
                if self.sent >= LOAD_MAX_REQUESTS:
                    return
                self.sent += 1
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/?bench={self.sent}", timeout=30).read()
            except Exception:  # 502s (backlog full) and timeouts are what saturation looks like
                time.sleep(1)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(40)


def dexec(container: str, *argv: str) -> str:
    return subprocess.run(["docker", "exec", container, *argv], check=False, capture_output=True, text=True, timeout=30).stdout


def saturation(container: str, log_lines_before: int) -> tuple[int, int]:
    """(listen queue of the FPM socket, new 'reached pm.max_children' lines since log_lines_before)."""
    queue = 0
    for line in dexec(container, "ss", "-xlnH", "src", FPM_SOCKET).splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2].isdigit():
            queue = max(queue, int(fields[2]))
    log = dexec(container, "cat", FPM_LOG).splitlines()[log_lines_before:]
    return queue, sum("reached pm.max_children" in line for line in log)


def wait_saturated(container: str, log_lines_before: int) -> tuple[int, int]:
    deadline = time.monotonic() + SATURATION_WAIT_S
    queue = reached = 0
    while time.monotonic() < deadline:
        queue, reached = saturation(container, log_lines_before)
        if queue > 0 and reached > 0:
            return queue, reached
        time.sleep(1)
    raise SystemExit(f"{container} never got saturated within {SATURATION_WAIT_S} s (listen queue {queue}, "
                     f"'reached pm.max_children' lines {reached}): the bench's figures would describe an idle host")


def evidence_timing(r) -> tuple[float, float, int]:
    """(wp502_evidence task duration from the runner's event, the module's collect_seconds, sites probed)."""
    for e in r.events:
        d = e.get("event_data", {})
        if e["event"] == "runner_on_ok" and "wp502_evidence" in (d.get("task_action") or ""):
            res = d.get("res") or {}
            return float(d["duration"]), float(res.get("collect_seconds") or 0), int((res.get("probe") or {}).get("probed") or 0)
    raise SystemExit("no wp502_evidence task in the audit's events")


def ping_timing(r) -> float:
    """The ping task's duration from its runner event: the same measure as the evidence task's."""
    for e in r.events:
        d = e.get("event_data", {})
        if e["event"] == "runner_on_ok" and d.get("duration") is not None:
            return float(d["duration"])
    raise SystemExit("no ping result in the ad-hoc run's events")


def measure_state(private, host: str, runs: int) -> dict:
    ping, task, module, sites = [], [], [], 0
    for _ in range(runs):
        _, r = run(private, host_pattern=host, module="ansible.builtin.ping")
        if r.status != "successful":
            raise SystemExit(f"ping of {host} ended {r.status}")
        ping.append(ping_timing(r))
        _, r = run_audit(private, limit=host)
        d, c, sites = evidence_timing(r)
        task.append(d)
        module.append(c)
    return {"ping": ping, "task": task, "module": module, "sites": sites}


def collection_part(key, runs: int) -> list[str]:
    prefix = "wp502-bench-au"
    target = labctl.plan_fleet(1, 0, prefix, 31080, 31220)[0]
    labctl.build(["nginx"])
    results = {}
    try:
        labctl.start_target(target, prefix, key.with_suffix(".pub").read_text())
        labctl.wait_ready(target, 300)
        with tempfile.TemporaryDirectory() as tmp:
            private = Path(tmp)
            inventory(private, [target], key)
            results["idle"] = measure_state(private, target["name"], runs)
            # FPM warns once per saturation (the warning is re-armed only when it can spawn again), so the
            # warning is counted from before the fault's own burst; the listen queue shows it lasts.
            before = len(dexec(target["container"], "cat", FPM_LOG).splitlines())
            _, r = run(private, project_dir=str(ROOT), playbook="playbooks/lab-break.yml", limit=target["name"],
                       extravars={"wp502_lab_fault": "max_children"})
            if r.status != "successful":
                raise SystemExit(f"lab-break.yml max_children ended {r.status}")
            with Load(target["http_port"]) as load:
                queue, reached = wait_saturated(target["container"], before)
                print(f"saturated: listen queue {queue}, 'reached pm.max_children' x{reached}", flush=True)
                results["saturated"] = measure_state(private, target["name"], runs)
                queue_end, _ = saturation(target["container"], before)
                results["saturated"]["queue"] = (queue, queue_end)
            results["saturated"]["load"] = load.sent
            run(private, project_dir=str(ROOT), playbook="playbooks/lab-break.yml", limit=target["name"],
                extravars={"wp502_lab_fault": "none"})
    finally:
        names = labctl.fleet_containers(prefix)
        if names:
            labctl.docker("rm", "-f", *names)
    rows = []
    for state, m in results.items():
        ping, task, mod = statistics.median(m["ping"]), statistics.median(m["task"]), statistics.median(m["module"])
        rows.append(f"| collection on one {state} host | `ansible -m ping`: median {ping:.2f} s (best {min(m['ping']):.2f}) "
                    f"| wp502_evidence task: median {task:.2f} s (best {min(m['task']):.2f}); on the host "
                    f"{mod:.2f} s | {task / ping:.2f}x ping | {m['sites']} site(s) probed |")
        print(rows[-1], flush=True)
    sat = results["saturated"]
    note = (f"Saturated: the lab's max_children fault (pm.max_children 2, a plugin holding each request), plus "
            f"{LOAD_CONCURRENCY} page views at a time from the controller ({sat['load']} sent in all, bounded to "
            f"{LOAD_MAX_REQUESTS} and {LOAD_MAX_SECONDS} s); timing started once FPM had logged 'server reached "
            f"pm.max_children' during the fault and the socket's listen queue held {sat['queue'][0]} (it held {sat['queue'][1]} when "
            "the last run ended).")
    return rows, note


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--collect-runs", type=int, default=3, help="runs per host state in the collection part")
    parser.add_argument("--parts", default="collection,fleet", help="comma-separated: collection, fleet")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    prefix = "wp502-bench"
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    key = labctl.ensure_ssh_key()
    parts = set(args.parts.split(","))
    out = Path(args.out)
    if "collection" in parts:
        rows, note = collection_part(key, args.collect_runs)
        write_section(out, "Audit collection per host", (
            f"Measured by `make bench-audit` (`bench/bench_audit.py --collect-runs {args.collect_runs}`) on "
            f"{time.strftime('%Y-%m-%d')}, median and best of {args.collect_runs} runs per state, on a 2-core machine "
            "shared with other lab containers and test runs (so the seconds are noisy; the ratio is against ping of "
            "the same host, in the same state, measured in the same run, between the audit runs). Both are task round "
            "trips as ansible-runner's events report them (connection, module transfer, run, result): `ping` "
            "is the ad-hoc ansible.builtin.ping task, the collection the wp502_evidence task of audit-502.yml; 'on the host' is the "
            "module's own collect_seconds. It reads the front-end's vhosts, the PHP-FPM pools and their status page "
            "(2 s deadline), the FPM and front-end logs since 15 min, the database facts, every site's PHP files "
            "(BOM check), and probes every site over HTTP.\n\n"
            f"{note}\n\n| what | baseline | wp502 | ratio | sites |\n| --- | --- | --- | --- | --- |\n"
            + "\n".join(rows) + "\n"), after="Fleet audit")
    if "fleet" not in parts:
        return 0
    fleet = labctl.plan_fleet(args.hosts, args.hosts // 4, prefix, 30080, 32220)
    labctl.build(sorted({t["frontend"] for t in fleet}))
    try:
        for t in fleet:
            labctl.start_target(t, prefix, key.with_suffix(".pub").read_text())
        for t in fleet:
            labctl.wait_ready(t, 300)
        with tempfile.TemporaryDirectory() as tmp:
            private = Path(tmp)
            inventory(private, fleet, key)
            ping_t, audit_t, trips, collect = [], [], None, [0]
            for _ in range(args.runs):
                t, r = run(private, host_pattern="wordpress", module="ansible.builtin.ping")
                assert r.status == "successful", r.status
                ping_t.append(t)
                t, r = run_audit(private)
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
    write_section(out, "Fleet audit", (f"Measured by `make bench-audit` (`bench/bench_audit.py --hosts {args.hosts}`) on "
               f"{time.strftime('%Y-%m-%d')}, best of {args.runs} runs, forks from ansible.cfg; the audit includes the "
               "controller-side report. The 20 targets share the machine's cores with the controller, so the "
               "WordPress pages the probes render and the file checks of every host compete for the same CPU; ping "
               "does no work on the hosts.\n\n"
               f"| what | baseline | wp502 | ratio | goal | round trips |\n| --- | --- | --- | --- | --- | --- |\n{row}\n"))
    return 0


def write_section(out: Path, title: str, body: str, after: str | None = None) -> None:
    """Replace section `## title` of out in place (others edit the file's other sections), or add it after
    section `after`, or at the end. The file is read right before it is written."""
    text = out.read_text() if out.exists() else "# Benchmarks\n"
    section = f"\n## {title}\n\n{body}"
    pattern = r"\n## " + re.escape(title) + r"\n.*?(?=\n## |\Z)"
    if re.search(pattern, text, flags=re.S):
        text = re.sub(pattern, lambda _m: section.rstrip("\n") + "\n", text, count=1, flags=re.S)
    elif after and re.search(r"\n## " + re.escape(after) + r"\n", text):
        m = re.search(r"\n## " + re.escape(after) + r"\n.*?(?=\n## |\Z)", text, flags=re.S)
        text = text[:m.end()].rstrip("\n") + "\n" + section.rstrip("\n") + "\n" + text[m.end():]
    else:
        text = text.rstrip("\n") + "\n" + section
    out.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
