#!/usr/bin/env python3
"""Benchmark wp502_log_scan against grep on the same files, in one run, and write docs/benchmarks.md.

    bench_logscan.py [--size 1G] [--big 4G] [--small 400M] [--runs 3] [--dir .bench]

Figures are ratios to a baseline measured in the same run on the same file (both from the page
cache, best of --runs):
  full scan   module (since: all)  vs  LC_ALL=C grep -cE 'upstream|connect\\(\\)|recv\\(\\)|FastCGI'
  window      module (since: 15m) on the big log vs on the small one (same line rate, 10x the size)
  gzip        module on .gz         vs  zcat | grep -cE ...
  memory      peak RSS of the module process (all runs)
The module process is pinned to one core (it never uses more); the grep baselines are not.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import genlog  # noqa: E402

PATTERN = r"upstream|connect\(\)|recv\(\)|FastCGI"


def timed(cmd, *, shell=False, pin=False) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB, from wait4) and stdout of one run."""
    preexec = (lambda: os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})) if pin else None
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        # shell=True only for the fixed `zcat FILE | grep` baseline; preexec_fn pins before exec (no threads here).
        proc = subprocess.Popen(cmd, shell=shell, stdout=out, stderr=err,
                                env=dict(os.environ, LC_ALL="C"), preexec_fn=preexec)  # noqa: PLW1509
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode not in (0, 1):  # grep -c exits 1 when nothing matched
            raise RuntimeError(f"{cmd} failed: {err.read().decode()[-500:]}")
        return elapsed, usage.ru_maxrss, out.read().decode()


def best(cmd, runs, **kw):
    results = [timed(cmd, **kw) for _ in range(runs)]
    return min(r[0] for r in results), max(r[1] for r in results), results[-1][2]


def module_cmd(path, since):
    args = {"path": [str(path)], "since": since, "rotated": False, "low_priority": False}
    return [sys.executable, str(ROOT / "bench" / "run_module.py"), json.dumps(args)]


def ensure_log(path: Path, size: int, end: float, span: float) -> Path:
    marker = path.with_suffix(path.suffix + ".json")
    want = {"size": size, "end": int(end), "span": span, "version": 2}
    if path.exists() and marker.exists() and json.loads(marker.read_text()) == want:
        return path
    print(f"generating {path} ({size >> 20} MiB)", file=sys.stderr)
    genlog.generate(str(path), size, end, span, seed=1)
    marker.write_text(json.dumps(want))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1G", help="size of the full-scan log")
    parser.add_argument("--small", default="400M", help="small log of the window comparison (and of the .gz)")
    parser.add_argument("--big", default="4G", help="big log of the window comparison")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=str(ROOT / ".bench"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    end = time.time()  # every log ends now, so "since: 15m" has a real window
    size, small, big = (genlog.parse_size(x) for x in (args.size, args.small, args.big))
    day = 86400.0
    # The same line rate in every log: the 15-minute window holds as many lines in each.
    rate = size / (7 * day)
    full = ensure_log(work / "error-full.log", size, end, 7 * day)
    small_log = ensure_log(work / "error-small.log", small, end, small / rate)
    big_log = ensure_log(work / "error-big.log", big, end, big / rate)
    gz = work / "error-small.log.1.gz"
    if not gz.exists() or gz.stat().st_mtime < small_log.stat().st_mtime:
        print(f"compressing {gz}", file=sys.stderr)
        with open(small_log, "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)

    for f in (full, small_log, big_log, gz):  # warm the page cache
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass

    rows = []
    grep_t, _, grep_out = best(["grep", "-cE", PATTERN, str(full)], args.runs)
    mod_t, mod_rss, mod_out = best(module_cmd(full, "all"), args.runs, pin=True)
    found = json.loads(mod_out)
    mib = full.stat().st_size / (1 << 20)
    rows.append(("full scan, since: all", f"{mib:.0f} MiB", f"grep -cE: {grep_t:.2f} s ({mib / grep_t:.0f} MiB/s), "
                 f"{int(grep_out)} lines matched", f"module: {mod_t:.2f} s ({mib / mod_t:.0f} MiB/s), "
                 f"{found['total']} signatures", f"{grep_t / mod_t:.2f}x grep's throughput", "target >= 1.0x"))

    small_t, small_rss, small_out = best(module_cmd(small_log, "15m"), args.runs, pin=True)
    big_t, big_rss, big_out = best(module_cmd(big_log, "15m"), args.runs, pin=True)
    s_res, b_res = json.loads(small_out), json.loads(big_out)
    rows.append(("window, since: 15m", f"{big_log.stat().st_size >> 20} MiB vs {small_log.stat().st_size >> 20} MiB",
                 f"small: {small_t:.3f} s, read {s_res['bytes_read'] >> 10} KiB, {s_res['total']} signatures",
                 f"big: {big_t:.3f} s, read {b_res['bytes_read'] >> 10} KiB, {b_res['total']} signatures",
                 f"{big_t / small_t:.2f}x (big / small)", "target <= 2x"))

    zgrep_t, _, zgrep_out = best(f"zcat {gz} | grep -cE '{PATTERN}'", args.runs, shell=True)  # noqa: S604
    zmod_t, zmod_rss, zmod_out = best(module_cmd(gz, "all"), args.runs, pin=True)
    z_res = json.loads(zmod_out)
    rows.append(("gzip, since: all", f"{gz.stat().st_size >> 20} MiB .gz ({small_log.stat().st_size >> 20} MiB)",
                 f"zcat | grep -cE: {zgrep_t:.2f} s, {int(zgrep_out)} lines matched",
                 f"module: {zmod_t:.2f} s, {z_res['total']} signatures",
                 f"{zmod_t / zgrep_t:.2f}x zcat|grep's time", "target <= 1.2x"))

    rss = max(mod_rss, small_rss, big_rss, zmod_rss)
    rows.append(("memory", "all runs above", "", f"peak RSS {rss / 1024:.1f} MiB", f"{rss / 1024:.1f} MiB", "target <= 64 MiB"))

    write_report(Path(args.out), rows, args)
    for r in rows:
        print(" | ".join(r))
    return 0


def write_report(path: Path, rows, args) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Measured by `make bench` (`bench/bench_logscan.py`) on "
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
        "Each figure is a ratio to a baseline measured in the same run on the same file, both read from the page cache, "
        f"best of {args.runs} runs. The module runs as Ansible runs it (`bench/run_module.py`), pinned to one core; "
        "the logs are generated by `bench/genlog.py` (404s, rate limiting, SSL handshakes, buffered responses and PHP "
        "notices, with a few thousand 502 lines among them).",
        "",
        f"Command: `make bench` (= `bench/bench_logscan.py --size {args.size} --small {args.small} --big {args.big} "
        f"--runs {args.runs}`)",
        "",
        "| what | files | baseline | wp502_log_scan | ratio | goal |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.append("")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
