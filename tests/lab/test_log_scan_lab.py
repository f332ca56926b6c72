"""wp502_log_scan on a real target: after each fault, its counts match what the front-end answered."""

from __future__ import annotations

import json
import re

import pytest


def scan(target, tmp_path):
    proc = target.playbook("tests/lab/playbooks/log-scan.yml", "-e", f"wp502_test_out={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return json.loads((tmp_path / f"{target.name}.json").read_text())


def access_codes(target, path):
    return [int(m.group(1)) for m in re.finditer(r'" (\d{3}) ', target.log(path))]


def counts(result):
    return {k: v["count"] for k, v in result["signatures"].items() if v["count"]}


def test_fpm_down_counts_every_502_as_connect_refused(nginx_target, tmp_path):
    nginx_target.break_("fpm_down")
    for _ in range(4):
        assert nginx_target.get("/") == 502
    res = scan(nginx_target, tmp_path)
    n502 = access_codes(nginx_target, "/var/log/nginx/access.log").count(502)
    assert n502 >= 4
    assert counts(res) == {"connect_refused": n502}
    assert res["by_upstream"] == {"unix:/run/php/php8.2-fpm.sock": n502}
    assert res["signatures"]["connect_refused"]["samples"][-1].split("[crit]")[0].strip()  # crit-level line, timestamped
    kinds = {f["path"]: f["kind"] for f in res["files"] if f["read"] and f["size"]}
    assert kinds["/var/log/nginx/error.log"] == "nginx"


def test_segfault_counts_crashes_and_resets(nginx_target, tmp_path):
    nginx_target.break_("segfault")
    for _ in range(3):
        assert nginx_target.get("/") == 502
    res = scan(nginx_target, tmp_path)
    n502 = access_codes(nginx_target, "/var/log/nginx/access.log").count(502)
    assert res["signatures"]["premature_close"]["count"] == n502
    assert res["signatures"]["child_signal"]["count"] == n502
    assert res["child_signals"] == {"SIGSEGV": n502}


def test_max_children_names_the_slow_plugin(nginx_target, tmp_path):
    nginx_target.break_("max_children")
    res = scan(nginx_target, tmp_path)
    n502 = access_codes(nginx_target, "/var/log/nginx/access.log").count(502)
    assert n502 > 0
    assert res["signatures"]["connect_unavailable"]["count"] == n502
    assert res["signatures"]["max_children"]["count"] >= 1
    assert res["signatures"]["slow_request"]["count"] >= 1
    assert res["by_pool"]["www"] >= 2
    top = res["suspects"][0]
    assert (top["type"], top["slug"]) == ("plugin", "wp502-fault-slow")
    assert top["sources"]["slowlog"] >= 1


def test_upstream_timeout_is_a_504_with_the_remote_plugin_suspected(nginx_target, tmp_path):
    nginx_target.break_("upstream_timeout")
    assert nginx_target.get("/") == 504
    res = scan(nginx_target, tmp_path)
    assert res["signatures"]["upstream_timeout"]["count"] == access_codes(nginx_target, "/var/log/nginx/access.log").count(504)
    assert {"type": "plugin", "slug": "wp502-fault-remote"}.items() <= res["suspects"][0].items()


@pytest.mark.parametrize("fault", ["fpm_down"])
def test_apache_failures_count_once_per_request(apache_target, tmp_path, fault):
    apache_target.break_(fault)
    for _ in range(3):
        assert apache_target.get("/") == 503
    res = scan(apache_target, tmp_path)
    n503 = access_codes(apache_target, "/var/log/apache2/access.log").count(503)
    assert counts(res) == {"connect_refused": n503}  # AH02454 + AH01079 per request: counted once
