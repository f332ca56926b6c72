# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""How many PHP-FPM workers a pool can run, as an experienced engineer sizes it (standard library only;
runs on targets).

- :func:`parse_proc_cgroup` reads ``/proc/PID/cgroup`` (v2 ``0::/path`` and v1 ``N:memory:/path`` lines);
  :func:`cgroup_limits` walks that cgroup and its ancestors under ``/sys/fs/cgroup`` and returns the
  tightest memory limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``) and CPU quota (v2 ``cpu.max``,
  v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), with the cgroup that sets each.
- :func:`php_bytes` reads a php.ini size (``128M``, ``1G``, ``-1``).
- :func:`worker_size` picks the bytes one worker needs: the p95 RSS of workers that served requests (the
  status page's per-process data), else the largest RSS, never below ``memory_limit`` while no worker is
  known to have served a request (an idle worker is a fraction of a busy one).
- :func:`size_pool` is the decision: ``pm.max_children`` = the smallest of a memory bound (the cgroup limit
  or RAM, minus the database, the other pools and a reserve, over the worker size), a CPU bound (cores x
  workers per core) and a database bound (``max_connections`` minus a reserve and the other pools' workers),
  and names the bound that binds.
"""

from __future__ import absolute_import, division, print_function

import math
import os

__metaclass__ = type

MIB = 1024 * 1024
# v1 writes "no limit" as the largest page-aligned 63-bit number; anything this large is no limit.
_UNLIMITED = 1 << 60
# A WordPress request spends most of its time waiting for MySQL, the disk and remote APIs: about four
# workers keep one core busy (the factor is an option; 1 for a CPU-bound application).
WORKERS_PER_CPU = 4


def parse_proc_cgroup(text):
    """``/proc/PID/cgroup`` -> ``{"v2": path or None, "v1": {controller: path}}``."""
    out = {"v2": None, "v1": {}}
    for line in (text or "").splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        hid, controllers, path = parts
        if hid == "0" and controllers == "":
            out["v2"] = path or "/"
            continue
        for c in controllers.split(","):
            if c.startswith("name="):
                continue
            out["v1"][c] = path or "/"
    return out


def _ancestors(path):
    """``/a/b/c`` -> ``["/a/b/c", "/a/b", "/a", "/"]``."""
    path = "/" + (path or "").strip("/")
    out = [path]
    while path != "/":
        path = os.path.dirname(path)
        out.append(path)
    return out


def _read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except (IOError, OSError):
        return None


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _tightest(candidates):
    """(value, where) with the smallest value, or (None, None)."""
    found = [c for c in candidates if c[0] is not None]
    return min(found, key=lambda c: c[0]) if found else (None, None)


def cgroup_limits(proc_cgroup, root="/sys/fs/cgroup", read=_read):
    """The tightest limits on a process from its cgroup and every ancestor: ``{"version", "memory_max",
    "memory_cgroup", "cpus", "cpu_cgroup"}`` (bytes, cores as a float; None where nothing limits).

    ``proc_cgroup``: the text of ``/proc/PID/cgroup``. A cgroup namespace (a container started without
    ``--cgroupns host``) shows paths that do not exist under ``root``: the namespace's own root (``root``
    itself, which is the container's cgroup) is read then too."""
    cg = parse_proc_cgroup(proc_cgroup)
    mem, cpu = [], []
    # A controller lives in one hierarchy: v1 when the line names it (also on a hybrid host, where a "0::" line
    # exists for the unified tree without controllers), else v2.
    mpath, cpath = cg["v1"].get("memory"), cg["v1"].get("cpu") or cg["v1"].get("cpuacct")
    versions = set()
    if mpath is not None:
        versions.add(1)
        for anc in [*_ancestors(mpath), "/"]:
            value = _int(read(os.path.join(root, "memory", anc.lstrip("/"), "memory.limit_in_bytes")))
            if value is not None and value < _UNLIMITED:
                mem.append((value, anc))
    if cpath is not None:
        versions.add(1)
        for mount in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
            for anc in [*_ancestors(cpath), "/"]:
                d = os.path.join(root, mount, anc.lstrip("/"))
                quota, period = _int(read(os.path.join(d, "cpu.cfs_quota_us"))), _int(read(os.path.join(d, "cpu.cfs_period_us")))
                if quota and quota > 0 and period:
                    cpu.append((quota / float(period), anc))
    if cg["v2"] is not None and (mpath is None or cpath is None):
        versions.add(2)
        for anc in [*_ancestors(cg["v2"]), "/"]:
            d = os.path.join(root, anc.lstrip("/")).rstrip("/") or root
            if mpath is None:
                value = read(os.path.join(d, "memory.max"))
                if value and value != "max" and _int(value) is not None and _int(value) < _UNLIMITED:
                    mem.append((_int(value), anc))
            if cpath is None:
                quota = (read(os.path.join(d, "cpu.max")) or "").split()
                if len(quota) == 2 and quota[0] != "max" and _int(quota[0]) and _int(quota[1]):
                    cpu.append((_int(quota[0]) / float(_int(quota[1])), anc))
    version = min(versions) if versions else None
    memory_max, memory_cgroup = _tightest(mem)
    cpus, cpu_cgroup = _tightest(cpu)
    return {"version": version, "memory_max": memory_max, "memory_cgroup": memory_cgroup,
            "cpus": round(cpus, 2) if cpus is not None else None, "cpu_cgroup": cpu_cgroup}


def in_cgroup(proc_cgroup, cgroup):
    """Whether a process (its ``/proc/PID/cgroup`` text) lives in ``cgroup`` or below it."""
    if cgroup is None:
        return True
    cg = parse_proc_cgroup(proc_cgroup)
    path = cg["v1"]["memory"] if "memory" in cg["v1"] else cg["v2"]
    if path is None:
        return True
    base = "/" + cgroup.strip("/")
    path = "/" + path.strip("/")
    return base in ("/", path) or path.startswith(base + "/")


def php_bytes(value):
    """A php.ini size (``128M``, ``512k``, ``1G``, ``268435456``) in bytes; None for ``-1`` (no limit) or junk."""
    text = str(value or "").strip().strip("\"'")
    if not text:
        return None
    mult = {"k": 1024, "m": MIB, "g": 1024 * MIB}.get(text[-1].lower())
    number = _int(text[:-1] if mult else text)
    if number is None or number <= 0:
        return None
    return number * (mult or 1)


def _p95(values):
    data = sorted(values)
    return data[max(1, math.ceil(0.95 * len(data))) - 1]


def worker_size(rss_by_pid, served_pids=None, memory_limit=None):
    """``(bytes, how)``: what one worker of the pool needs.

    ``rss_by_pid``: the pool's workers now; ``served_pids``: those the status page says served a request
    (None without per-process status data); ``memory_limit``: the pool's PHP memory_limit in bytes."""
    rss = dict((pid, r) for pid, r in (rss_by_pid or {}).items() if r)
    if not rss:
        if memory_limit:
            return memory_limit, "memory_limit %d MiB (no live worker to measure)" % (memory_limit // MIB)
        return None, "no live worker to measure and no memory_limit"
    if served_pids is not None:
        served = [rss[p] for p in served_pids if p in rss]
        if served:
            return _p95(served), "p95 RSS of the %d workers that served requests" % len(served)
    largest = max(rss.values())
    why = "no worker has served a request yet" if served_pids is not None else "no per-process status to tell busy from idle"
    if memory_limit and memory_limit > largest:
        return memory_limit, "memory_limit %d MiB (the largest worker is %d MiB, but %s)" % (
            memory_limit // MIB, largest // MIB, why)
    return largest, "the largest worker's RSS (%s)" % why


def spares(max_children):
    """Spare-server settings for a dynamic pool of ``max_children`` that FPM accepts (start about a
    quarter, spares a tenth to a third): min_spare <= start <= max_spare <= max_children."""
    min_spare = max(1, max_children // 10)
    max_spare = max(min_spare, min(max_children, max(2, max_children // 3)))
    start = min(max_spare, max(min_spare, max_children // 4))
    return {"pm.start_servers": start, "pm.min_spare_servers": min_spare, "pm.max_spare_servers": max_spare}


def _fmt_mib(value):
    return "%d MiB" % (value // MIB) if value < 10 * 1024 * MIB else "%.1f GiB" % (value / 1024.0 / MIB)


def size_pool(memory, worker_bytes, cpus=None, db_max_connections=None, db_others=0, mysql_bytes=0, other_pools_bytes=0,
              os_reserve=None, workers_per_cpu=WORKERS_PER_CPU, pm="dynamic", worker_how="", memory_how="RAM",
              cpu_how="cores"):
    """The pool's ``pm.max_children`` (and spares) from the bounds that apply, the smallest winning.

    ``memory``: the bytes the pool's host or container may use (``memory_how`` says which: ``RAM`` or the
    cgroup limit); ``mysql_bytes`` and ``other_pools_bytes``: what the database and the other pools use within
    it; ``os_reserve``: kept free (default 10%, at least 256 MiB for RAM, at least 64 MiB for a cgroup limit).
    ``cpus`` (cores, the cgroup quota when set) x ``workers_per_cpu``. ``db_max_connections``: the server's
    max_connections, shared with ``db_others`` workers of the other pools (one connection per worker) and a
    reserve of a tenth (at least 2) for replication, backups and the DBA.

    Returns ``{pm, pm.max_children, spares..., limited_by, reason, bounds: {memory, cpu, database}, basis}``;
    ``reason`` says what binds (``limited by CPU: 2 cores x 4``).
    """
    if not memory or not worker_bytes or worker_bytes <= 0:
        raise ValueError("the memory and the size of a worker are needed to size a pool")
    cgroup = memory_how != "RAM"
    reserve = os_reserve if os_reserve is not None else max((64 if cgroup else 256) * MIB, memory // 10)
    available = memory - (mysql_bytes or 0) - reserve - (other_pools_bytes or 0)
    bounds, reasons = {}, {}
    bounds["memory"] = max(1, int(available // worker_bytes)) if available > 0 else 1
    parts = ["%s %s" % (_fmt_mib(memory), memory_how)]
    if mysql_bytes:
        parts.append("- %s database" % _fmt_mib(mysql_bytes))
    if other_pools_bytes:
        parts.append("- %s other pools" % _fmt_mib(other_pools_bytes))
    parts.append("- %s reserve" % _fmt_mib(reserve))
    reasons["memory"] = "limited by memory: %s = %s / %s per worker (%s)" % (
        " ".join(parts), _fmt_mib(max(0, available)), _fmt_mib(worker_bytes), worker_how or "measured")
    if cpus:
        bounds["cpu"] = max(1, math.floor(cpus * workers_per_cpu))
        unit = cpu_how if cpus != 1 else cpu_how.replace("cores", "core", 1)
        reasons["cpu"] = "limited by CPU: %s %s x %s" % (("%g" % cpus), unit, workers_per_cpu)
    if db_max_connections:
        db_reserve = max(2, db_max_connections // 10)
        bounds["database"] = max(1, db_max_connections - db_reserve - (db_others or 0))
        reasons["database"] = "limited by the database: max_connections %d - %d reserved%s" % (
            db_max_connections, db_reserve, (" - %d workers of the other pools" % db_others) if db_others else "")
    # Ties go to the bound an operator can act on first: memory, then CPU, then the database.
    limited_by = min(("memory", "cpu", "database"), key=lambda k: (bounds.get(k, float("inf")), ("memory", "cpu", "database").index(k)))
    max_children = bounds[limited_by]
    rec = {"pm": pm, "pm.max_children": max_children}
    if pm == "dynamic":
        rec.update(spares(max_children))
    rec.update({"limited_by": limited_by, "reason": reasons[limited_by], "bounds": bounds,
                "reasons": [reasons[k] for k in ("memory", "cpu", "database") if k in reasons],
                "basis": {"memory_bytes": memory, "memory_source": memory_how, "mysql_rss": mysql_bytes or 0,
                          "os_reserve": reserve, "other_pools_bytes": other_pools_bytes or 0,
                          "available_bytes": max(0, available), "worker_bytes": worker_bytes, "worker_source": worker_how,
                          "cpus": cpus, "cpu_source": cpu_how if cpus else None, "workers_per_cpu": workers_per_cpu,
                          "db_max_connections": db_max_connections, "db_other_workers": db_others or 0}})
    return rec
