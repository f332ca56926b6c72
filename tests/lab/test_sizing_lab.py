"""Pool sizing on real containers: one started with --cpus 1 --memory 1g gets a pool it can run (the cgroup's
limits, not the host's RAM and cores), an unlimited one is sized from the host; the figures are checked against
Docker's and MariaDB's own, not only wp502's words."""

from __future__ import annotations

import json

import labctl
import pytest

from . import conftest
from .test_evidence_lab import evidence

GIB = 1024 ** 3


@pytest.fixture
def small_target(lab_images, ssh_key, tmp_path, request):
    t = conftest._start("nginx", ssh_key, tmp_path, run_opts=("--cpus", "1", "--memory", "1g"))
    yield t
    conftest._dump_logs_on_failure(t, request)
    labctl.docker("rm", "-f", t.container, check=False)


def www(ev):
    (pool,) = [p for p in ev["fpm"]["pools"] if p["name"] == "www"]
    return pool


def max_connections(t):
    return int(t.host.check_output("mysql -N -e 'SELECT @@max_connections'"))


def test_a_one_cpu_one_gib_container_gets_a_pool_it_can_run(small_target, tmp_path):
    t = small_target
    host_config = json.loads(labctl.docker("inspect", t.container).stdout)[0]["HostConfig"]
    assert host_config["Memory"] == GIB and host_config["NanoCpus"] == 10 ** 9
    for _ in range(5):
        assert t.get("/") == 200  # workers that served requests: what the worker size is measured on
    pool = www(evidence(t, tmp_path))
    rec = pool["recommendation"]
    basis = rec["basis"]
    assert basis["memory_source"].startswith("cgroup limit") and basis["memory_bytes"] == host_config["Memory"]
    assert basis["cpus"] == 1.0 and basis["cpu_source"].startswith("cores (cpu quota of")
    assert rec["bounds"]["cpu"] == 4 and rec["pm.max_children"] <= 4
    assert rec["limited_by"] in ("cpu", "memory") and rec["reason"].startswith("limited by")
    # What the container can run: the workers at their measured size, the database and the reserve fit in 1 GiB.
    assert rec["pm.max_children"] * basis["worker_bytes"] + basis["mysql_rss"] + basis["os_reserve"] <= host_config["Memory"]
    assert basis["worker_bytes"] >= 128 * 1024 ** 2 or "served requests" in basis["worker_source"]
    assert rec["bounds"]["database"] == max_connections(t) - max(2, max_connections(t) // 10)
    assert pool["emergency_raise"]["settings"].get("pm.max_children", 0) <= rec["pm.max_children"]
    print("1 CPU, 1 GiB:", rec["pm.max_children"], rec["reason"], rec["bounds"], basis["worker_source"])


def test_an_unlimited_container_is_sized_from_the_host(nginx_target, tmp_path):
    t = nginx_target
    pool = www(evidence(t, tmp_path))
    rec = pool["recommendation"]
    basis = rec["basis"]
    mem_total = int(t.host.check_output("awk '/^MemTotal:/ {print $2 * 1024}' /proc/meminfo"))
    assert basis["memory_source"] == "RAM" and basis["memory_bytes"] == mem_total
    assert basis["cpus"] == int(t.host.check_output("nproc")) and basis["cpu_source"] == "cores"
    assert rec["pm.max_children"] == min(rec["bounds"].values())
    print("unlimited:", rec["pm.max_children"], rec["reason"], rec["bounds"], basis["worker_source"])
