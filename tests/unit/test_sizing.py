"""Pool sizing as an experienced engineer signs it (wp502_sizing): cgroup v1 and v2 limits read as the kernel
writes them, the worker size from workers that served requests, and each bound in turn binding."""

from __future__ import annotations

import pytest
import wp502_fpm as fpm
import wp502_sizing as sz

MIB = 1024 * 1024
GIB = 1024 * MIB


def tree(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return str(root)


# A Docker container (--memory 1g --cpus 1) seen from the host's cgroup namespace (the lab's cgroupns=host):
# PHP-FPM's unit inside the container's scope, the limits on the scope, "max" on the unit.
V2_HOSTNS = {
    "system.slice/docker-4f1c.scope/memory.max": "1073741824",
    "system.slice/docker-4f1c.scope/cpu.max": "100000 100000",
    "system.slice/docker-4f1c.scope/system.slice/php8.2-fpm.service/memory.max": "max",
    "system.slice/docker-4f1c.scope/system.slice/php8.2-fpm.service/cpu.max": "max 100000",
    "system.slice/memory.max": "max",
}
FPM_V2_HOSTNS = "0::/system.slice/docker-4f1c.scope/system.slice/php8.2-fpm.service\n"


def test_v2_limits_of_the_container_bind_the_unit_inside_it(tmp_path):
    root = tree(tmp_path, V2_HOSTNS)
    limits = sz.cgroup_limits(FPM_V2_HOSTNS, root=root)
    assert limits == {"version": 2, "memory_max": GIB, "memory_cgroup": "/system.slice/docker-4f1c.scope",
                      "cpus": 1.0, "cpu_cgroup": "/system.slice/docker-4f1c.scope"}


def test_v2_the_tightest_of_unit_and_container_wins(tmp_path):
    files = dict(V2_HOSTNS)
    files["system.slice/docker-4f1c.scope/system.slice/php8.2-fpm.service/memory.max"] = str(512 * MIB)  # MemoryMax=512M
    files["system.slice/docker-4f1c.scope/cpu.max"] = "150000 100000"  # --cpus 1.5
    limits = sz.cgroup_limits(FPM_V2_HOSTNS, root=tree(tmp_path, files))
    assert limits["memory_max"] == 512 * MIB and limits["memory_cgroup"].endswith("php8.2-fpm.service")
    assert limits["cpus"] == 1.5


def test_v2_inside_a_private_cgroup_namespace_reads_the_namespace_root(tmp_path):
    # docker run without --cgroupns host: /proc/PID/cgroup is relative to the container, /sys/fs/cgroup is its cgroup
    root = tree(tmp_path, {"memory.max": "2147483648", "cpu.max": "200000 100000",
                           "system.slice/php8.2-fpm.service/memory.max": "max"})
    limits = sz.cgroup_limits("0::/system.slice/php8.2-fpm.service\n", root=root)
    assert (limits["memory_max"], limits["memory_cgroup"], limits["cpus"]) == (2 * GIB, "/", 2.0)


def test_v2_without_limits_says_nothing_limits(tmp_path):
    root = tree(tmp_path, {"system.slice/php8.2-fpm.service/memory.max": "max",
                           "system.slice/php8.2-fpm.service/cpu.max": "max 100000"})
    limits = sz.cgroup_limits("0::/system.slice/php8.2-fpm.service\n", root=root)
    assert limits["memory_max"] is None and limits["cpus"] is None and limits["version"] == 2


# cgroup v1 (CentOS 7, Debian 10, Docker on an old kernel): one hierarchy per controller, "no limit" as a huge number.
V1_PROC = ("12:pids:/docker/9a1b\n11:memory:/docker/9a1b\n10:cpu,cpuacct:/docker/9a1b\n9:cpuset:/docker/9a1b\n"
           "1:name=systemd:/docker/9a1b\n")


def test_v1_limits_from_memory_and_cpu_hierarchies(tmp_path):
    root = tree(tmp_path, {"memory/docker/9a1b/memory.limit_in_bytes": str(768 * MIB),
                           "memory/memory.limit_in_bytes": "9223372036854771712",
                           "cpu,cpuacct/docker/9a1b/cpu.cfs_quota_us": "50000",
                           "cpu,cpuacct/docker/9a1b/cpu.cfs_period_us": "100000"})
    assert sz.cgroup_limits(V1_PROC, root=root) == {"version": 1, "memory_max": 768 * MIB, "memory_cgroup": "/docker/9a1b",
                                                    "cpus": 0.5, "cpu_cgroup": "/docker/9a1b"}


def test_v1_unlimited_and_inside_the_container_namespace(tmp_path):
    # Inside the container the host's path /docker/9a1b does not exist: the mount's root is the container's cgroup.
    root = tree(tmp_path, {"memory/memory.limit_in_bytes": "9223372036854771712",
                           "cpu,cpuacct/cpu.cfs_quota_us": "-1", "cpu,cpuacct/cpu.cfs_period_us": "100000"})
    limits = sz.cgroup_limits(V1_PROC, root=root)
    assert limits["memory_max"] is None and limits["cpus"] is None and limits["version"] == 1
    assert sz.cgroup_limits("", root=root)["version"] is None


def test_a_process_is_in_a_cgroup_when_it_is_there_or_below():
    assert sz.in_cgroup("0::/system.slice/docker-4f1c.scope/system.slice/mariadb.service\n", "/system.slice/docker-4f1c.scope")
    assert not sz.in_cgroup("0::/system.slice/mariadb.service\n", "/system.slice/docker-4f1c.scope")
    assert not sz.in_cgroup("0::/system.slice/docker-4f1c.scopex/a\n", "/system.slice/docker-4f1c.scope")
    assert sz.in_cgroup("11:memory:/docker/9a1b\n", "/docker/9a1b")
    assert sz.in_cgroup("0::/anything\n", None) and sz.in_cgroup("0::/anything\n", "/")


@pytest.mark.parametrize(("text", "expected"), [
    ("128M", 128 * MIB), ("1G", GIB), ("512k", 512 * 1024), ("268435456", 256 * MIB), ('"256M"', 256 * MIB),
    ("-1", None), ("", None), ("lots", None), (None, None)])
def test_php_sizes(text, expected):
    assert sz.php_bytes(text) == expected


def test_the_worker_size_comes_from_workers_that_served_requests():
    rss = {1: 39 * MIB, 2: 40 * MIB, 3: 96 * MIB, 4: 110 * MIB}
    size, how = sz.worker_size(rss, served_pids=[3, 4], memory_limit=128 * MIB)
    assert size == 110 * MIB and how == "p95 RSS of the 2 workers that served requests"


def test_idle_workers_are_never_taken_for_busy_ones():
    rss = {1: 39 * MIB, 2: 40 * MIB}
    assert sz.worker_size(rss, served_pids=[], memory_limit=128 * MIB)[0] == 128 * MIB  # none served: memory_limit
    size, how = sz.worker_size(rss, served_pids=None, memory_limit=128 * MIB)  # no status page
    assert size == 128 * MIB and "no per-process status" in how
    assert sz.worker_size(rss, served_pids=None, memory_limit=None)[0] == 40 * MIB  # memory_limit -1: the largest
    assert sz.worker_size({1: 300 * MIB}, served_pids=[], memory_limit=128 * MIB)[0] == 300 * MIB
    assert sz.worker_size({}, None, 128 * MIB)[0] == 128 * MIB and sz.worker_size({}, None, None)[0] is None


def test_the_issue_host_two_cpus_sixty_connections_is_limited_by_cpu_not_552():
    # 2 CPUs, a database allowing 60 connections, idle workers of 39 MiB on ~24 GiB: RAM alone said 552.
    rec = sz.size_pool(24 * GIB, 128 * MIB, cpus=2, db_max_connections=60, mysql_bytes=400 * MIB,
                       worker_how="memory_limit 128 MiB", cpu_how="cores")
    assert rec["bounds"]["memory"] > 100 and rec["bounds"]["cpu"] == 8 and rec["bounds"]["database"] == 54
    assert rec["pm.max_children"] == 8 and rec["limited_by"] == "cpu" and rec["reason"] == "limited by CPU: 2 cores x 4"
    assert fpm.validate_pm(rec) == []


def test_a_one_gib_one_cpu_container_gets_what_it_can_run():
    rec = sz.size_pool(GIB, 128 * MIB, cpus=1.0, mysql_bytes=200 * MIB, memory_how="cgroup limit (/docker/9a1b)",
                       cpu_how="cores (cpu quota of /docker/9a1b)")
    # memory: (1024 - 200 - 102 reserve) / 128 = 5; CPU: 1 x 4 = 4
    assert rec["bounds"] == {"memory": 5, "cpu": 4} and rec["limited_by"] == "cpu" and rec["pm.max_children"] == 4
    assert rec["basis"]["os_reserve"] == GIB // 10


def test_memory_binds_and_the_reason_shows_the_sum():
    rec = sz.size_pool(2 * GIB, 256 * MIB, cpus=16, db_max_connections=500, mysql_bytes=512 * MIB, other_pools_bytes=256 * MIB,
                       memory_how="cgroup limit (/system.slice/docker-1.scope)", worker_how="p95 RSS of the 7 workers that served requests")
    assert rec["limited_by"] == "memory" and rec["pm.max_children"] == 4  # (2048 - 512 - 256 - 204) / 256 = 4.2
    assert rec["reason"] == ("limited by memory: 2048 MiB cgroup limit (/system.slice/docker-1.scope) - 512 MiB database - "
                             "256 MiB other pools - 204 MiB reserve = 1075 MiB / 256 MiB per worker "
                             "(p95 RSS of the 7 workers that served requests)")


def test_the_database_binds_when_other_pools_hold_its_connections():
    rec = sz.size_pool(64 * GIB, 64 * MIB, cpus=32, db_max_connections=100, db_others=70)
    assert rec["limited_by"] == "database" and rec["pm.max_children"] == 20  # 100 - 10 reserved - 70
    assert rec["reason"] == "limited by the database: max_connections 100 - 10 reserved - 70 workers of the other pools"
    crowded = sz.size_pool(64 * GIB, 64 * MIB, cpus=32, db_max_connections=30, db_others=200)
    assert crowded["pm.max_children"] == 1 and crowded["limited_by"] == "database"  # never 0: FPM needs one


def test_a_static_pool_gets_no_spares_and_bad_input_is_refused():
    rec = sz.size_pool(4 * GIB, 64 * MIB, cpus=2, pm="static")
    assert rec["pm"] == "static" and "pm.start_servers" not in rec and rec["pm.max_children"] == 8
    with pytest.raises(ValueError, match="size of a worker"):
        sz.size_pool(4 * GIB, 0)


def test_the_emergency_raise_never_goes_past_the_bound_that_binds():
    pool = {"pm": "dynamic", "pm.max_children": 2, "pm.start_servers": 1, "pm.min_spare_servers": 1,
            "pm.max_spare_servers": 2, "listen.backlog": 511}
    rec = sz.size_pool(GIB, 128 * MIB, cpus=1.0)
    out = fpm.emergency_raise(pool, rec)
    assert out["settings"]["pm.max_children"] == 4 == rec["pm.max_children"]
    assert "limited by CPU: 1 core x 4" in out["reasons"][0]


def test_a_hybrid_host_reads_the_v1_controllers_not_the_empty_unified_tree(tmp_path):
    # Docker on a hybrid host (systemd's "hybrid" mode): a "0::" line for the unified tree, which holds no
    # controller; memory and cpu are v1 hierarchies. As seen in the lab container started with --cpus 1 --memory 1g.
    cid = "167df8e78ebc"
    proc = (f"4:memory:/docker/{cid}/system.slice/php8.2-fpm.service\n1:cpu:/docker/{cid}\n2:cpuacct:/docker/{cid}\n"
            f"0::/docker/{cid}/system.slice/php8.2-fpm.service\n")
    root = tree(tmp_path, {f"memory/docker/{cid}/memory.limit_in_bytes": "1073741824",
                           f"memory/docker/{cid}/system.slice/php8.2-fpm.service/memory.limit_in_bytes": "9223372036854771712",
                           f"cpu/docker/{cid}/cpu.cfs_quota_us": "100000", f"cpu/docker/{cid}/cpu.cfs_period_us": "100000",
                           "unified/cgroup.controllers": ""})
    (tmp_path / "cpu,cpuacct").mkdir()  # an empty directory where some hosts mount both
    limits = sz.cgroup_limits(proc, root=root)
    assert limits == {"version": 1, "memory_max": GIB, "memory_cgroup": f"/docker/{cid}", "cpus": 1.0, "cpu_cgroup": f"/docker/{cid}"}
    assert sz.in_cgroup(f"4:memory:/docker/{cid}/system.slice/mariadb.service\n0::/x\n", f"/docker/{cid}")
