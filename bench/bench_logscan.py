#!/usr/bin/env python3
"""Benchmark wp502_log_scan against grep on the same files, in one run, and write docs/benchmarks.md.

    bench_logscan.py [--size 1G] [--big 4G] [--small 400M] [--runs 3] [--dir .bench]

Figures are ratios to a baseline measured in the same run on the same file (both from the page
cache, best of --runs):
  full scan   module (since: all)  vs  LC_ALL=C grep -cE 'upstream|connect\\(\\)|recv\\(\\)|FastCGI'
              (an nginx error log, and the same log as a container runtime writes it: kind auto)
  window      module (since: 15m) on the big log vs on the small one (same line rate, 10x the size)
  gzip        module on .gz         vs  zcat | grep -cE ...
  memory      peak RSS of the module process (all runs)
The module process is pinned to one core (it never uses more); the grep baselines are not.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import platform
import re
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


def ensure_log(path: Path, size: int, end: float, span: float, container: bool = False) -> Path:
    """Generate the log unless the same one (size, span, end, genlog version) is already there."""
    marker = path.with_suffix(path.suffix + ".json")
    want = {"size": size, "end": int(end), "span": span, "version": 3, "container": container}
    if path.exists() and marker.exists() and json.loads(marker.read_text()) == want:
        return path
    print(f"generating {path} ({size >> 20} MiB)", file=sys.stderr)
    genlog.generate(str(path), size, end, span, seed=1, container=container)
    marker.write_text(json.dumps(want))
    return path


def full_scan(path: Path, what: str, runs: int, goal: str):
    """grep -cE and the module (since: all) on the same file: the table's row, the module's peak RSS, its best
    time and the signatures it found."""
    grep_t, _, grep_out = best(["grep", "-cE", PATTERN, str(path)], runs)
    mod_t, mod_rss, mod_out = best(module_cmd(path, "all"), runs, pin=True)
    found = json.loads(mod_out)
    mib = path.stat().st_size / (1 << 20)
    return (what, f"{mib:.0f} MiB", f"grep -cE: {grep_t:.2f} s ({mib / grep_t:.0f} MiB/s), {int(grep_out)} lines matched",
            f"module: {mod_t:.2f} s ({mib / mod_t:.0f} MiB/s), {found['total']} signatures",
            f"{grep_t / mod_t:.2f}x grep's throughput", goal), mod_rss, mod_t, found["total"]


def like_for_like(path: Path, runs: int, mod_t: float, signatures: int, work: Path):
    """grep -cF given the nginx prefilters' own fixed strings (NGINX_LITERALS: the lines the module selects), against
    the module's time on the same file: what grep itself takes to look for what the module looks for."""
    sys.path.insert(0, str(ROOT / "plugins" / "module_utils"))
    from wp502_logscan import NGINX_LITERALS  # noqa: PLC0415 - the module_utils are not a package here

    literals = work / "nginx-literals.txt"
    literals.write_text("".join(lit + "\n" for lit in NGINX_LITERALS))
    grep_t, _, grep_out = best(["grep", "-cF", "-f", str(literals), str(path)], runs)
    same = "the lines the module classified" if int(grep_out) == signatures else f"module: {signatures} signatures"
    return ("full scan, grep given the module's search", f"{path.stat().st_size / (1 << 20):.0f} MiB",
            f"grep -cF, the {len(NGINX_LITERALS)} fixed strings of the nginx prefilters: {grep_t:.2f} s, "
            f"{int(grep_out)} lines matched ({same})",
            f"module: {mod_t:.2f} s", f"{grep_t / mod_t:.2f}x grep's throughput", "")


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
    # Every log ends at the same instant; the window is the 15 minutes before it (an ISO time, so
    # logs generated by an earlier run are reused and still have a real window).
    stamp = work / "end.txt"
    end = float(stamp.read_text()) if stamp.exists() else float(int(time.time()))
    stamp.write_text(str(end))
    window = datetime.datetime.fromtimestamp(end - 900, datetime.UTC).isoformat()
    size, small, big = (genlog.parse_size(x) for x in (args.size, args.small, args.big))
    day = 86400.0
    # The same line rate in every log: the 15-minute window holds as many lines in each.
    rate = size / (7 * day)
    full = ensure_log(work / "error-full.log", size, end, 7 * day)
    boxed = ensure_log(work / "container-full.log", size, end, 7 * day, container=True)
    small_log = ensure_log(work / "error-small.log", small, end, small / rate)
    big_log = ensure_log(work / "error-big.log", big, end, big / rate)
    gz = work / "error-small.log.1.gz"
    if not gz.exists() or gz.stat().st_mtime < small_log.stat().st_mtime:
        print(f"compressing {gz}", file=sys.stderr)
        with open(small_log, "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)

    for f in (full, boxed, small_log, big_log, gz):  # warm the page cache
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass

    rows = []
    row, mod_rss, mod_t, signatures = full_scan(full, "full scan, since: all", args.runs, "target >= 1.0x")
    rows.append(row)
    rows.append(like_for_like(full, args.runs, mod_t, signatures, work))
    # The same log as a container runtime writes it: no kind is recognised, every kind's prefilters run.
    row, bmod_rss, _, _ = full_scan(boxed, "full scan, kind auto (container log)", args.runs, "")
    rows.append(row)

    small_t, small_rss, small_out = best(module_cmd(small_log, window), args.runs, pin=True)
    big_t, big_rss, big_out = best(module_cmd(big_log, window), args.runs, pin=True)
    s_res, b_res = json.loads(small_out), json.loads(big_out)
    rows.append(("window, the last 15 min", f"{big_log.stat().st_size >> 20} MiB vs {small_log.stat().st_size >> 20} MiB",
                 f"small: {small_t:.3f} s, read {s_res['bytes_read'] >> 10} KiB, {s_res['total']} signatures",
                 f"big: {big_t:.3f} s, read {b_res['bytes_read'] >> 10} KiB, {b_res['total']} signatures",
                 f"{big_t / small_t:.2f}x (big / small)", "target <= 2x"))

    zgrep_t, _, zgrep_out = best(f"zcat {gz} | grep -cE '{PATTERN}'", args.runs, shell=True)  # noqa: S604
    zmod_t, zmod_rss, zmod_out = best(module_cmd(gz, "all"), args.runs, pin=True)
    z_res = json.loads(zmod_out)
    rows.append(("gzip, since: all", f"{gz.stat().st_size >> 20} MiB .gz ({small_log.stat().st_size >> 20} MiB)",
                 f"zcat \\| grep -cE: {zgrep_t:.2f} s, {int(zgrep_out)} lines matched",
                 f"module: {zmod_t:.2f} s, {z_res['total']} signatures",
                 f"{zmod_t / zgrep_t:.2f}x zcat \\| grep's time", "target <= 1.2x"))

    rss = max(mod_rss, bmod_rss, small_rss, big_rss, zmod_rss)
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
        "the logs are generated by `bench/genlog.py`: a busy WordPress site's nginx error log (PHP warnings, notices and "
        "deprecations relayed through FastCGI stderr, buffered responses and request bodies, upstream servers marked "
        "down, clients gone while the upstream answered, 404s, rate limiting, SSL handshakes, keepalive closes, and "
        "access-log lines in the same stream), with a few thousand 502 lines among them; the container log is the same "
        "log with a container runtime's time in front of each line.",
        "",
        f"Command: `make bench` (= `bench/bench_logscan.py --size {args.size} --small {args.small} --big {args.big} "
        f"--runs {args.runs}`)",
        "",
        "| what | files | baseline | wp502_log_scan | ratio | goal |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += [
        "",
        "## Reading the figures",
        "",
        "- The module's times are whole processes: Python start-up and the import of Ansible's module code",
        "  (about 0.13-0.3 s) are in them, as they are on a target.",
        "- What a full scan costs the module, per GiB on one core: reading it from the page cache (about 0.1 s), counting",
        "  its newlines for `lines_scanned` (about 0.2 s: `bytes.replace(b\"\\n\", b\"\")` in 64 KiB blocks jumps from newline",
        "  to newline with memchr, twice as fast as `bytes.count`, which tests every byte), and one pass of the C regex",
        "  engine per group of prefilters (0.3-0.5 s each: `re` looks for the first byte of a pattern's literal prefix one",
        "  byte at a time, about a cycle a byte whatever the pattern). An nginx log takes two passes (a failure phrase at",
        "  `upstream`, a PHP fatal error), a log of no recognised kind (`kind: auto`) seven, merged from twelve. Only the",
        "  lines the passes select, a few thousand, are decoded and classified in Python.",
        "- grep -cE makes one Boyer-Moore pass for its four words and leaves a line at its first match. On a busy site's",
        "  log about half the lines match early (`FastCGI sent in stderr`, `an upstream response is buffered`), so grep",
        "  reads 2.5-3 GB/s: its whole run takes about what start-up, reading and counting lines take the module before",
        "  it looks for anything. Python's standard library has no multi-pattern search: `bytes.find` looks for one",
        "  literal at a time (2-4 GB/s each, and the nginx prefilters alone hold thirteen), so splitting a pass into",
        "  literal searches costs more than the pass. A full scan cannot reach grep's throughput on such a log; the",
        "  module is meant to run on a window, whose cost does not grow with the file.",
        "- The row \"grep given the module's search\" is the like-for-like baseline: grep -cF with the thirteen fixed",
        "  strings a line must hold for the nginx prefilters to select it (`NGINX_LITERALS`; a unit test holds them to the",
        "  prefilters line by line), so grep finds the same lines the module classifies. grep then reads every byte of",
        "  every line that holds none of them, as the module does, and takes about 1.5x as long as with the four words",
        "  (0.75 s against 0.49 s per GiB, 2026-12-03): the four-word baseline is fast because half the lines match it",
        "  early, not because grep finds 502 signatures faster. The module reaches about half of grep's throughput on",
        "  that search, and a third of it on the four words.",
        "- The window scan bisects on timestamps: the bytes read follow the window, not the file size.",
        "- `.gz` files are streamed through zlib: 1 MiB reads, fed to zlib 16 KiB at a time for pieces of at most 64 KiB",
        "  (small enough for the allocator to reuse rather than map and unmap); `zcat | grep` runs two processes in",
        "  parallel, the module one.",
        "- The machine is a small VM whose speed varies from run to run by up to a third; compare ratios, not seconds.",
        "",
    ]
    # The other benchmarks (make bench-audit, make bench-emergency) keep their sections of the same file.
    others = ""
    if path.exists():
        kept = re.findall(r"\n## (?!Reading the figures\n).*?(?=\n## |\Z)", path.read_text(), flags=re.S)
        others = "".join(kept).rstrip("\n") + "\n" if kept else ""
    path.write_text("\n".join(lines) + "\n" + others)


if __name__ == "__main__":
    sys.exit(main())
