# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""Host evidence from /proc and the kernel log, as pure parsers (standard library only).

Worker memory is read from /proc, not from FPM's status page, so it is known even when the pool
is saturated and the status page cannot answer.
"""

from __future__ import absolute_import, division, print_function

import math
import os
import re
import subprocess

from ansible.module_utils.wp502_fpm import percentile

__metaclass__ = type

BIN_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin")


def which(*names):
    """The first of ``names`` found executable in the system's binary directories (not $PATH, which
    a module's environment may not carry), or None."""
    for name in names:
        for d in BIN_DIRS:
            path = os.path.join(d, name)
            if os.access(path, os.X_OK):
                return path
    return None


# Every external command wp502 runs on a target has a deadline: a hung `nginx -T`, `mysql` or
# `systemctl` must not stall the module's round trip.
DEFAULT_TIMEOUT = 30
# How long after timeout(1)'s own deadline subprocess stops waiting for it (it kills at the deadline, then
# SIGKILLs 5 s later: this is for a timeout that hangs itself).
BACKSTOP_SECONDS = 10
# What GNU timeout(1) exits with when the deadline passed (124), or when it had to SIGKILL (137).
_TIMED_OUT = (124, 137)


class CommandTimeoutError(OSError):
    """A command did not finish within its deadline; the message names the command."""


def describe(argv):
    """A command as an operator would type it, for messages (no secrets are passed on argv)."""
    return " ".join(str(a) for a in argv)


def _spawn(argv, env, timeout):
    """``(rc, out, err)`` of ``argv`` through :mod:`subprocess`, or None when it outlived ``timeout``
    seconds (it is then killed).

    Not AnsibleModule.run_command: its loop waits for the pipes in ``select(1)`` and, when the command
    exits between the loop's two checks of ``poll()``, goes round once more on no descriptor at all and
    sleeps the full second (ansible-core 2.19). Measured on the lab right after PHP-FPM was stopped: one
    `systemctl show` or `journalctl -k` in two to six took 1.006 s instead of 0.006 s, a second of the
    emergency's evidence every other run. ``communicate()`` returns at the pipes' end of file.
    """
    try:
        # pylint: disable-next=ansible-bad-function
        proc = subprocess.run(list(argv), env=dict(os.environ, **(env or {})), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def deadline_runner(run_command=None, timeout_bin=None, default=DEFAULT_TIMEOUT):
    """``run(argv, env=None, timeout=None) -> (rc, out, err)``, with a deadline on every command.

    The command runs under coreutils' ``timeout`` (SIGTERM at the deadline, SIGKILL 5 s later), through
    :mod:`subprocess` (``_spawn``: not AnsibleModule.run_command, whose polling costs a second now and
    then), with a deadline of its own ``BACKSTOP_SECONDS`` later in case ``timeout`` itself hangs; one that outlives
    its deadline raises :class:`CommandTimeoutError` naming the command. Without ``timeout`` on the
    host, subprocess's deadline alone. ``run_command`` (``run_command(argv, environ_update=...)``, as
    AnsibleModule's) replaces subprocess under ``timeout``: tests give a fake one.
    """
    timeout_bin = timeout_bin if timeout_bin is not None else which("timeout")

    def run(argv, env=None, timeout=None):
        seconds = default if timeout is None else timeout
        limit = max(1, math.ceil(seconds))
        timed_out = CommandTimeoutError("`%s` did not finish within %d s (killed)" % (describe(argv), limit))
        if timeout_bin:
            wrapped = [timeout_bin, "-k", "5", str(limit), *argv]
            done = run_command(wrapped, environ_update=env or {}) if run_command else _spawn(wrapped, env, limit + BACKSTOP_SECONDS)
            if done is None or done[0] in _TIMED_OUT:
                raise timed_out
            return done
        done = _spawn(argv, env, limit)
        if done is None:
            raise timed_out
        return done

    return run


_FPM_MASTER = re.compile(r"^php-fpm[\d.]*: master process \((?P<conf>[^)]*)\)")
_FPM_POOL = re.compile(r"^php-fpm[\d.]*: pool (?P<pool>\S+)")
_MYSQL = re.compile(r"(?:^|/)(?:mysqld|mariadbd)(?:\s|$)")
_OOM = re.compile(
    r"(?:Out of memory|Memory cgroup out of memory): Killed process (?P<pid>\d+) \((?P<name>[^)]+)\)"
    r"|oom-kill:.*?task=(?P<task>[^,\s]+),pid=(?P<pid2>\d+)")


def parse_meminfo(text):
    """/proc/meminfo -> {field: bytes}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":"):
            try:
                value = int(parts[1])
            except ValueError:
                continue
            out[parts[0][:-1]] = value * 1024 if len(parts) > 2 and parts[2] == "kB" else value
    return out


def parse_loadavg(text):
    parts = text.split()
    try:
        return {"1m": float(parts[0]), "5m": float(parts[1]), "15m": float(parts[2])}
    except (IndexError, ValueError):
        return {}


def parse_status_rss(text):
    """VmRSS of /proc/PID/status in bytes (None for kernel threads and zombies)."""
    m = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.M)
    return int(m.group(1)) * 1024 if m else None


def classify_process(cmdline):
    """What a process is, from its command line: fpm master, fpm worker of a pool, mysqld, or None."""
    m = _FPM_MASTER.match(cmdline)
    if m:
        return "fpm_master", m.group("conf")
    m = _FPM_POOL.match(cmdline)
    if m:
        return "fpm_worker", m.group("pool")
    if _MYSQL.search(cmdline.split(" ", 1)[0]):
        return "mysqld", None
    return None, None


def read_processes(proc="/proc"):
    """[{pid, ppid, kind, detail, rss}] for FPM masters and workers and MySQL/MariaDB servers."""
    found = []
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        try:
            with open(os.path.join(proc, pid, "cmdline"), "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            kind, detail = classify_process(cmdline)
            if kind is None:
                continue
            with open(os.path.join(proc, pid, "status"), "rb") as fh:
                status = fh.read().decode("utf-8", "replace")
        except (IOError, OSError):
            continue  # the process ended meanwhile
        ppid = re.search(r"^PPid:\s+(\d+)", status, re.M)
        found.append({"pid": int(pid), "ppid": int(ppid.group(1)) if ppid else None, "kind": kind,
                      "detail": detail, "rss": parse_status_rss(status)})
    return found


def workers_by_pool(processes):
    """Per FPM pool: live workers, average / p95 / max RSS in bytes."""
    pools = {}
    for p in processes:
        if p["kind"] == "fpm_worker":
            pools.setdefault(p["detail"], []).append(p["rss"])
    out = {}
    for name, rss in pools.items():
        known = [r for r in rss if r]
        out[name] = {
            "workers": len(rss),
            "rss_avg": int(sum(known) / len(known)) if known else None,
            "rss_p95": percentile(known, 95),
            "rss_max": max(known) if known else None,
            "rss_total": sum(known),
        }
    return out


def oom_kills(lines, names=("php-fpm", "php", "mysqld", "mariadbd")):
    """OOM-killer kills per process name found in kernel log lines (dmesg or journalctl -k)."""
    counts = {}
    samples = []
    for line in lines:
        m = _OOM.search(line)
        if not m:
            continue
        name = m.group("name") or m.group("task") or ""
        key = next((n for n in names if name.startswith(n)), None)
        if key is None:
            continue
        key = "php-fpm" if key == "php" else key
        counts[key] = counts.get(key, 0) + 1
        samples.append(line.strip()[:512])
    return {"counts": counts, "samples": samples[-5:]}


def disk_usage(path):
    """Free space of the filesystem holding path: {path, total, free, used_pct} or None."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used_pct = round(100.0 * (total - free) / total, 1) if total else None
    return {"path": path, "total": total, "free": free, "used_pct": used_pct,
            "inodes_free_pct": round(100.0 * st.f_favail / st.f_files, 1) if st.f_files else None}
