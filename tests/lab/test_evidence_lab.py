"""wp502_evidence on real targets: for every lab fault the verdict's top cause is the right one."""

from __future__ import annotations

import json

import pytest

EXPECTED = {
    "none": ("healthy", None),
    "fpm_down": ("fpm_down", None),
    "segfault": ("crashing_worker", None),
    "invalid_header": ("invalid_header", None),
    "too_big_header": ("too_big_header", None),
    "upstream_timeout": ("upstream_timeout", "wp502-fault-remote"),
    "slow_db": ("slow_database", None),
    "max_children": ("slow_plugin", "wp502-fault-slow"),
    "capacity": ("capacity", None),
    "bom": ("bom", None),
}


def evidence(target, tmp_path):
    proc = target.playbook("tests/lab/playbooks/evidence.yml", "-e", f"wp502_test_out={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return json.loads((tmp_path / f"{target.name}.json").read_text())


@pytest.mark.parametrize("fault", list(EXPECTED))
def test_top_cause_names_the_fault(nginx_target, tmp_path, fault):
    if fault != "none":
        nginx_target.break_(fault)
    if fault in ("segfault", "invalid_header", "too_big_header", "upstream_timeout", "slow_db"):
        nginx_target.get("/")  # one visitor, as in any incident, leaves the trace (a timeout takes 15 s)
    ev = evidence(nginx_target, tmp_path)
    cause, slug = EXPECTED[fault]
    top = ev["verdict"][0]
    assert ev["top_cause"] == cause, json.dumps(ev["verdict"], indent=1)
    if slug:
        assert top.get("slug") == slug
    assert ev["changed"] is False
    # never the database password, anywhere in the result
    config = nginx_target.host.file("/var/www/wordpress/wp-config.php").content_string
    password = next(line.split("'")[3] for line in config.splitlines() if "DB_PASSWORD" in line)
    assert password not in json.dumps(ev)


def test_evidence_of_a_healthy_apache_host(apache_target, tmp_path):
    ev = evidence(apache_target, tmp_path)
    assert ev["top_cause"] == "healthy"
    assert ev["frontend"]["kind"] == "apache"
    assert ev["frontend"]["upstreams"] == ["unix:/run/php/php8.2-fpm.sock"]
    pool = ev["fpm"]["pools"][0]
    assert (pool["name"], pool["socket_exists"], pool["pm.max_children"]) == ("www", True, 5)
    assert pool["workers"] >= 1 and pool["rss_p95"] > 1024 * 1024
    rec = pool["recommendation"]
    assert rec["pm.min_spare_servers"] <= rec["pm.start_servers"] <= rec["pm.max_spare_servers"] <= rec["pm.max_children"]
    site = ev["wordpress"][0]
    assert {p["slug"] for p in site["plugins"] if p["active"]} == {"akismet", "xrds-simple"}
    assert site["db"]["reachable"] is True
    assert site["bom_files"] == [] and site["bom_files_inactive"]  # the lab's BOM plugin is there, inactive
    assert {k: v["status"] for k, v in ev["http"]["origin"].items()} == {"/": 200, "/wp-login.php": 200}
