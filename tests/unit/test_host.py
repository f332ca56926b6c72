"""wp502_host: /proc, kernel log and disk parsers, on real samples."""

from __future__ import annotations

import os

import pytest
import wp502_host as host

MEMINFO = """MemTotal:       24622428 kB
MemFree:        20123456 kB
MemAvailable:   23012345 kB
Buffers:          123456 kB
Cached:          1234567 kB
SwapTotal:             0 kB
SwapFree:              0 kB
HugePages_Total:       0
"""


def test_meminfo_in_bytes():
    mem = host.parse_meminfo(MEMINFO)
    assert mem["MemTotal"] == 24622428 * 1024
    assert mem["MemAvailable"] == 23012345 * 1024
    assert mem["SwapTotal"] == 0
    assert mem["HugePages_Total"] == 0


def test_loadavg():
    assert host.parse_loadavg("0.49 0.50 0.56 2/112 17621\n") == {"1m": 0.49, "5m": 0.5, "15m": 0.56}
    assert host.parse_loadavg("") == {}


@pytest.mark.parametrize(("cmdline", "expected"), [
    ("php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)", ("fpm_master", "/etc/php/8.2/fpm/php-fpm.conf")),
    ("php-fpm: pool www                              ", ("fpm_worker", "www")),
    ("php-fpm8.1: pool shop.example-com", ("fpm_worker", "shop.example-com")),
    ("/usr/sbin/mariadbd", ("mysqld", None)),
    ("/usr/sbin/mysqld --basedir=/usr --datadir=/var/lib/mysql", ("mysqld", None)),
    ("/usr/bin/mysqld_safe", (None, None)),
    ("nginx: worker process", (None, None)),
    ("", (None, None)),
])
def test_classify_process(cmdline, expected):
    assert host.classify_process(cmdline) == expected


def fake_proc(tmp_path, procs):
    for pid, (cmdline, rss_kb, ppid) in procs.items():
        d = tmp_path / str(pid)
        d.mkdir()
        (d / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode() + b"\0")
        status = f"Name:\tx\nPPid:\t{ppid}\n" + (f"VmRSS:\t{rss_kb} kB\n" if rss_kb is not None else "")
        (d / "status").write_text(status)
    (tmp_path / "self").mkdir()
    return str(tmp_path)


def test_workers_by_pool_from_proc(tmp_path):
    proc = fake_proc(tmp_path, {
        10: ("php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)", 20000, 1),
        11: ("php-fpm: pool www", 60000, 10),
        12: ("php-fpm: pool www", 80000, 10),
        13: ("php-fpm: pool www", 100000, 10),
        14: ("php-fpm: pool shop", 120000, 10),
        20: ("/usr/sbin/mariadbd", 500000, 1),
        30: ("nginx: worker process", 9000, 1),
        40: ("php-fpm: pool www", None, 10),  # a zombie: no RSS
    })
    procs = host.read_processes(proc)
    assert sorted(p["pid"] for p in procs) == [10, 11, 12, 13, 14, 20, 40]
    pools = host.workers_by_pool(procs)
    assert pools["www"] == {"workers": 4, "rss_avg": 80000 * 1024, "rss_p95": 100000 * 1024, "rss_max": 100000 * 1024,
                            "rss_total": 240000 * 1024}
    assert pools["shop"]["workers"] == 1
    assert [p["rss"] for p in procs if p["kind"] == "mysqld"] == [500000 * 1024]


def test_read_processes_survives_a_missing_proc(tmp_path):
    assert host.read_processes(str(tmp_path / "nope")) == []


OOM = [
    "[123456.789] Out of memory: Killed process 4321 (php-fpm8.2) total-vm:812340kB, anon-rss:402112kB, file-rss:0kB, "
    "shmem-rss:8kB, UID:33 pgtables:1200kB oom_score_adj:0",
    "Nov 23 21:40:58 web1 kernel: oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
    "task_memcg=/system.slice/mariadb.service,task=mariadbd,pid=812,uid=106",
    "Nov 23 21:40:58 web1 kernel: Memory cgroup out of memory: Killed process 999 (php-fpm: pool www) total-vm:1kB",
    "Nov 23 21:40:58 web1 kernel: Out of memory: Killed process 77 (java) total-vm:1kB",
    "Nov 23 21:40:58 web1 kernel: eth0: link up",
]


def test_oom_kills_by_process():
    res = host.oom_kills(OOM)
    assert res["counts"] == {"php-fpm": 2, "mariadbd": 1}
    assert len(res["samples"]) == 3


def test_disk_usage(tmp_path):
    du = host.disk_usage(str(tmp_path))
    assert du["total"] > 0 and 0 <= du["used_pct"] <= 100
    assert host.disk_usage(str(tmp_path / "missing")) is None
    assert os.path.isdir(du["path"])
