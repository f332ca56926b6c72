"""emergency-502.yml on real targets: the FPM rungs heal what they can, stop when there is nothing
to heal, refuse a second run, and release the host whatever happens."""

from __future__ import annotations

import json

import ansible_runner
import pytest

from .test_audit_lab import ROOT


def emergency(target, tmp_path, cmdline=None, **extravars):
    private = tmp_path / f"private-{target.name}-{len(list(tmp_path.iterdir()))}"
    (private / "inventory").mkdir(parents=True)
    hosts = json.loads(target.inventory.read_text())["all"]["children"]["wp502_lab"]["hosts"]
    (private / "inventory" / "hosts.json").write_text(json.dumps({"all": {"children": {"wordpress": {"hosts": hosts}}}}))
    (private / "inventory" / "group_vars").symlink_to(ROOT / "inventories" / "lab" / "group_vars")
    r = ansible_runner.run(private_data_dir=str(private), project_dir=str(ROOT), playbook="playbooks/emergency-502.yml",
                           extravars={"wp502_emergency_probe_retries": 2, **extravars},
                           envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}, quiet=True, timeout=600,
                           cmdline=cmdline)
    stats = next(e for e in r.events if e["event"] == "playbook_on_stats")["event_data"].get("artifact_data", {})
    return r, stats.get("wp502_emergency", {}).get(target.name)


def test_fpm_down_is_healed_by_the_restart_rung(nginx_target, tmp_path):
    nginx_target.break_("fpm_down")
    assert nginx_target.get("/") == 502
    r, result = emergency(nginx_target, tmp_path)
    assert r.status == "successful", r.stdout.read()[-4000:]
    assert result["top_cause"] == "fpm_down"
    assert result["healed"] is True and result["healed_by"] == "restart_fpm"
    assert [rung["rung"] for rung in result["rungs"]] == ["restart_fpm"]  # the verdict skips reload
    assert nginx_target.get("/") == 200 and nginx_target.get("/wp-login.php") == 200
    assert not nginx_target.host.file("/var/lib/wp502/lock").exists
    # storm control: a second run right after refuses, without touching the host
    _r2, second = emergency(nginx_target, tmp_path)
    assert "remediation storm" in second["refused"] and not second["locked"]


def test_a_healthy_host_is_left_alone(apache_target, tmp_path):
    before = apache_target.host.run("systemctl show -p MainPID --value php8.2-fpm").stdout
    r, result = emergency(apache_target, tmp_path)
    assert r.status == "successful"
    assert result["stopped"] == "healthy" and result["rungs"] == []
    assert apache_target.host.run("systemctl show -p MainPID --value php8.2-fpm").stdout == before


def test_a_second_concurrent_run_is_refused(nginx_target, tmp_path):
    nginx_target.host.run("install -d /var/lib/wp502 && printf '%s' "
                          "'{\"run_id\": \"other-run\", \"pid\": 1, \"started\": 9999999999, \"heartbeat\": 9999999999}' "
                          "> /var/lib/wp502/lock")
    _r, result = emergency(nginx_target, tmp_path)
    assert "run other-run holds this host" in result["refused"]
    assert nginx_target.host.file("/var/lib/wp502/lock").contains("other-run")  # not released by the refused run


@pytest.mark.parametrize("fault", ["segfault"])
def test_what_the_fpm_rungs_cannot_heal_ends_with_the_verdict(nginx_target, tmp_path, fault):
    nginx_target.break_(fault)
    nginx_target.get("/")
    _r, result = emergency(nginx_target, tmp_path)
    assert result["top_cause"] == "crashing_worker"
    assert result["healed"] is False and [x["rung"] for x in result["rungs"]] == ["restart_fpm"]
    assert result["next_step"]
    assert not nginx_target.host.file("/var/lib/wp502/lock").exists


def test_check_mode_changes_nothing(nginx_target, tmp_path):
    nginx_target.break_("fpm_down")
    r, result = emergency(nginx_target, tmp_path, cmdline="--check")
    assert r.status == "successful"
    assert [x["rung"] for x in result["rungs"]] == ["restart_fpm"]  # what it would do
    assert nginx_target.get("/") == 502  # and nothing was done
    assert not nginx_target.host.service("php8.2-fpm").is_running
    assert not nginx_target.host.file("/var/lib/wp502/lock").exists
