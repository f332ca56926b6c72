"""emergency-502.yml and rollback-502.yml on real targets, through ansible-runner as AWX runs them:
the ladder heals, stops when there is nothing to heal, refuses a second run, releases the host
whatever happens, and every change comes back byte for byte, even from a run killed mid-bisect."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import ClassVar

import ansible_runner

from .test_audit_lab import ROOT


def emergency(target, tmp_path, cmdline=None, **extravars):
    """emergency-502.yml through ansible_runner.run() in a private data dir laid out as AWX lays it
    (env/extravars, env/cmdline, inventory/, project/ holding the project, ansible.cfg found there):
    (runner, the host's set_stats result)."""
    private = tmp_path / f"private-{target.name}-{len(list(tmp_path.iterdir()))}"
    for d in ("env", "inventory"):
        (private / d).mkdir(parents=True)
    (private / "project").symlink_to(ROOT)
    hosts = json.loads(target.inventory.read_text())["all"]["children"]["wp502_lab"]["hosts"]
    (private / "inventory" / "hosts.json").write_text(json.dumps({"all": {"children": {"wordpress": {"hosts": hosts}}}}))
    (private / "inventory" / "group_vars").symlink_to(ROOT / "inventories" / "lab" / "group_vars")
    # The test's own report directory: results.json of other tests' runs (other containers under the same lab
    # host names) never become this run's known culprits.
    (private / "env" / "extravars").write_text(json.dumps({"wp502_emergency_probe_retries": 2,
                                                           "wp502_report_dir": str(tmp_path / "reports"), **extravars}))
    if cmdline:
        (private / "env" / "cmdline").write_text(cmdline)
    r = ansible_runner.run(private_data_dir=str(private), playbook="playbooks/emergency-502.yml", quiet=True, timeout=600)
    assert r.rc in (0, 2), r.stdout.read()[-3000:]  # 2: the run says a host is left broken, refused or unreachable
    ran = {e["event_data"].get("host") for e in r.events if e["event"] == "runner_on_ok"}
    assert target.name in ran  # per-host events, as AWX shows them
    stats = next(e for e in r.events if e["event"] == "playbook_on_stats")["event_data"].get("artifact_data", {})
    return r, stats.get("wp502_emergency", {}).get(target.name)


def snapshot(target):
    """What rollback must bring back: the plugin tree, the exact active_plugins bytes, the configs."""
    h = target.host
    return {
        "plugins": h.check_output("cd /var/www/wordpress/wp-content && "
                                  "{ find plugins mu-plugins plugins-off -type f -exec sha256sum {} + ; find . | sort; } "
                                  "2>/dev/null | sort || true"),
        "active": h.check_output("mysql -N wordpress -e \"SELECT HEX(option_value) FROM wp_options WHERE option_name = "
                                 "'active_plugins'\""),
        "configs": h.check_output("sha256sum /etc/php/8.2/fpm/pool.d/www.conf /etc/nginx/sites-enabled/wordpress"),
    }


def rollback(target, tmp_path, *args):
    return target.playbook("playbooks/rollback-502.yml", "-e", "wp502_rollback_hosts=wp502_lab", *args)


class Webhook(http.server.BaseHTTPRequestHandler):
    """A local listener standing in for Slack or a generic webhook: keeps what it was sent."""

    received: ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Webhook.received.append((self.headers.get("Content-Type"), json.loads(body)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_fpm_down_is_healed_by_the_restart_rung(nginx_target, tmp_path):
    nginx_target.break_("fpm_down")
    assert nginx_target.get("/") == 502
    listener = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    try:
        r, result = emergency(nginx_target, tmp_path,
                              wp502_emergency_webhook_url=f"http://127.0.0.1:{listener.server_address[1]}/hook")
    finally:
        listener.shutdown()
    ((ctype, payload),) = Webhook.received
    assert ctype == "application/json"
    assert payload["text"] == (f"wp502 emergency-502.yml: {nginx_target.name}: "
                               "healed 1 of 1 failing site: /var/www/wordpress by restart_fpm")
    assert payload["wp502"][nginx_target.name]["healed_by"] == "restart_fpm"
    assert r.status == "successful", r.stdout.read()[-4000:]
    assert result["top_cause"] == "fpm_down"
    assert result["healed"] is True and result["healed_by"] == "restart_fpm"
    assert [rung["rung"] for rung in result["rungs"]] == ["restart_fpm"]  # the verdict skips reload
    assert nginx_target.get("/") == 200 and nginx_target.get("/wp-login.php") == 200
    assert not nginx_target.host.file("/var/lib/wp502/lock").exists
    # The restart's round trip ended the run on the host (wp502_run's release): the host's own result.json is
    # what AWX was told, and storm control counts the run.
    kept = json.loads(nginx_target.host.file(f"/var/lib/wp502/runs/{result['run_id']}/result.json").content_string)
    assert kept == result
    assert json.loads(nginx_target.host.file("/var/lib/wp502/last_end").content_string)["run_id"] == result["run_id"]
    # on the healed host a second run changes nothing and takes nothing
    _r2, second = emergency(nginx_target, tmp_path)
    assert second["stopped"] == "healthy" and not second["locked"] and second["rungs"] == []
    # storm control: broken again right after, a run refuses without touching the host
    nginx_target.break_("fpm_down")
    _r3, third = emergency(nginx_target, tmp_path)
    assert "remediation storm" in third["refused"] and not third["locked"]
    assert nginx_target.get("/") == 502


def test_a_healthy_host_is_left_alone(apache_target, tmp_path):
    before = apache_target.host.run("systemctl show -p MainPID --value php8.2-fpm").stdout
    r, result = emergency(apache_target, tmp_path)
    assert r.status == "successful"
    assert result["stopped"] == "healthy" and result["rungs"] == [] and not result["locked"]
    assert apache_target.host.run("systemctl show -p MainPID --value php8.2-fpm").stdout == before
    assert not apache_target.host.file("/var/lib/wp502/last").exists


def test_a_second_concurrent_run_is_refused(nginx_target, tmp_path):
    nginx_target.break_("fpm_down")
    nginx_target.host.run("install -d /var/lib/wp502 && printf '%s' "
                          "'{\"run_id\": \"other-run\", \"pid\": 1, \"started\": 9999999999, \"heartbeat\": 9999999999}' "
                          "> /var/lib/wp502/lock")
    r, result = emergency(nginx_target, tmp_path)
    out = r.stdout.read()
    assert r.status == "failed" and failed_hosts(r) == {nginx_target.name}
    # Which run holds the host, since when, and what to do; never "no rung applies".
    assert "run other-run holds this host" in result["refused"] and "taken " in result["refused"]
    assert "wp502_emergency_force=true" in result["refused"] and "rollback-502.yml" in result["refused"]
    assert result["state"] == "refused" and "no rung" not in result["next_step"]
    assert f"{nginx_target.name}: refused: run other-run holds this host" in out
    assert nginx_target.host.file("/var/lib/wp502/lock").contains("other-run")  # not released by the refused run
    assert nginx_target.host.run("ls -A /var/lib/wp502/runs 2>/dev/null").stdout.strip() == ""  # nothing left behind
    assert nginx_target.get("/") == 502


def test_a_crashing_plugin_is_found_and_rollback_brings_everything_back(nginx_target, tmp_path):
    nginx_target.break_("segfault")
    before = snapshot(nginx_target)
    r, result = emergency(nginx_target, tmp_path)
    assert r.status == "successful", r.stdout.read()[-4000:]
    assert result["top_cause"] == "crashing_worker"
    assert [x["rung"] for x in result["rungs"]] == ["restart_fpm", "plugins"]  # restart is tried first, and fails
    assert result["healed_by"] == "plugins" and result["culprits"] == ["wp502-fault-segfault"]
    plugins = result["rungs"][-1]
    assert plugins["probes"] <= 1 + 2 + 1  # everything out, then ceil(log2 3) + 1 at most
    assert nginx_target.get("/") == 200
    assert rollback(nginx_target, tmp_path, "-e", f"wp502_run_id={result['run_id']}").returncode == 0
    assert snapshot(nginx_target) == before
    assert nginx_target.get("/") == 502  # as it was: rollback is exact, not smart


def test_a_run_killed_mid_bisect_rolls_back_losing_nothing(nginx_target, tmp_path):
    nginx_target.break_("upstream_timeout")  # each probe with the plugin in waits out the deadline
    before = snapshot(nginx_target)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.Popen([str(os.path.join(os.path.dirname(sys.executable), "ansible-playbook")), "-i",
                             str(nginx_target.inventory), "-e", "wp502_emergency_hosts=wp502_lab",
                             str(ROOT / "playbooks" / "emergency-502.yml")],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    journal = "/var/lib/wp502/runs/*/journal.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:  # until plugins are out and the bisection has started putting some back
        renames = nginx_target.host.run(f"grep -h '\"op\": \"rename\"' {journal} 2>/dev/null | wc -l").stdout.strip()
        if int(renames or 0) >= 4:
            break
        time.sleep(0.3)
    else:
        proc.kill()
        raise AssertionError("the plugins rung never started moving plugins")
    os.killpg(proc.pid, signal.SIGKILL)  # kill -9 of ansible-playbook and its ssh
    proc.wait(timeout=30)
    assert snapshot(nginx_target) != before  # it died with plugins out
    # Rollback refuses while the rung still works on the host; once it is gone, everything comes back.
    deadline = time.time() + 90
    while time.time() < deadline:
        done = rollback(nginx_target, tmp_path)
        if done.returncode == 0 or "still working on this host" not in done.stdout:
            break
        time.sleep(3)
    assert done.returncode == 0, done.stdout[-3000:]
    assert snapshot(nginx_target) == before
    assert not nginx_target.host.file("/var/lib/wp502/lock").exists


def test_a_pool_change_php_fpm_refuses_never_goes_live(nginx_target, tmp_path):
    pool = "/etc/php/8.2/fpm/pool.d/www.conf"
    before = nginx_target.host.file(pool).content
    master = nginx_target.host.run("systemctl show -p MainPID --value php8.2-fpm").stdout
    out = tmp_path / "invalid"
    out.mkdir()
    proc = nginx_target.playbook("tests/lab/playbooks/pool-invalid.yml", "-e", f"wp502_test_out={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    said = json.loads((out / f"{nginx_target.name}.json").read_text())
    assert said["failed"] is False and "rejected the change" in said["msg"] and "byte for byte" in said["msg"]
    assert "pm.max_spare_servers" in said["msg"]  # FPM's own reason
    assert nginx_target.host.file(pool).content == before
    assert nginx_target.host.run("php-fpm8.2 -t").rc == 0
    assert nginx_target.host.run("systemctl show -p MainPID --value php8.2-fpm").stdout == master


def failed_hosts(r):
    """The hosts PLAY RECAP charges with a failure."""
    return {h for h, n in (r.stats or {}).get("failures", {}).items() if n}


def test_check_mode_changes_nothing_and_says_what_it_would_do(nginx_target, tmp_path):
    nginx_target.break_("fpm_down")
    r, result = emergency(nginx_target, tmp_path, cmdline="--check")
    out = r.stdout.read()
    assert [x["rung"] for x in result["rungs"]] == ["restart_fpm"]  # what it would do
    assert result["rungs"][0]["planned"] and result["rungs"][0]["origin"] == []  # planned, never probed (no retries)
    assert f"{nginx_target.name}: restart_fpm would restart php8.2-fpm" in out  # the plan, on the console
    assert result["state"] == "planned" and not result["ok"]
    # Nothing was healed, so the run does not end 0; the failure is the broken host's own.
    assert r.status == "failed" and failed_hosts(r) == {nginx_target.name}
    assert nginx_target.get("/") == 502  # and nothing was done
    assert not nginx_target.host.service("php8.2-fpm").is_running
    assert not nginx_target.host.file("/var/lib/wp502/lock").exists
    assert not nginx_target.host.file("/var/lib/wp502/last_end").exists  # storm control not armed
    assert not nginx_target.host.file("/var/lib/wp502/runs").exists


def test_check_mode_shows_the_plan_for_the_plugins(nginx_target, tmp_path):
    nginx_target.break_("segfault")
    before = snapshot(nginx_target)
    r, result = emergency(nginx_target, tmp_path, cmdline="--check --diff")
    out = r.stdout.read()
    assert [x["rung"] for x in result["rungs"]] == ["restart_fpm", "plugins"]
    assert "would take out 3 plugins" in result["rungs"][-1]["note"]
    assert f"{nginx_target.name}: plugins would take out 3 plugins" in out
    assert snapshot(nginx_target) == before


def test_check_mode_diff_shows_each_config_change(nginx_target, tmp_path):
    nginx_target.break_("too_big_header")
    site = "/etc/nginx/sites-enabled/wordpress"
    before = nginx_target.host.file(site).content
    r, result = emergency(nginx_target, tmp_path, cmdline="--check --diff")
    out = r.stdout.read()
    assert result["rungs"][0]["rung"] == "frontend"
    assert "+" in out and "fastcgi_buffers 16 16k;" in out  # the diff of the file it would change
    assert f"{nginx_target.name}: frontend would set fastcgi_buffer_size" in out
    assert nginx_target.host.file(site).content == before


def test_tags_climb_exactly_the_named_rungs(nginx_target, tmp_path):
    nginx_target.break_("fpm_down")
    # A rung the verdict does not allow: nothing is climbed, nothing taken, storm control not armed.
    r, result = emergency(nginx_target, tmp_path, cmdline="--tags wp502_emergency_plugins")
    assert result["rungs"] == [] and not result["locked"]
    assert "are switched off or left out by --tags" in result["stopped"] and "restart_fpm" in result["stopped"]
    assert r.status == "failed" and failed_hosts(r) == {nginx_target.name}  # still broken: not 0
    assert not nginx_target.host.file("/var/lib/wp502/last_end").exists
    assert nginx_target.get("/") == 502
    # The rung named: climbed, and the summary, report and result still there whatever the tags.
    r, result = emergency(nginx_target, tmp_path, cmdline="--tags wp502_emergency_restart_fpm")
    out = r.stdout.read()
    assert [x["rung"] for x in result["rungs"]] == ["restart_fpm"] and result["healed_by"] == "restart_fpm"
    assert r.status == "successful" and "Report: " in out
    assert nginx_target.get("/") == 200


def test_a_host_left_broken_fails_the_run_charged_to_that_host(nginx_target, tmp_path):
    # A socket mismatch: nginx passes PHP to a socket no pool listens on. No rung can heal it.
    site = "/etc/nginx/sites-enabled/wordpress"
    cmd = nginx_target.host.run(f"sed -i 's#unix:/run/php/php8.2-fpm.sock#unix:/run/php/nobody.sock#' $(readlink -f {site})"
                                " && nginx -t && systemctl restart nginx")
    assert cmd.rc == 0, cmd.stderr
    assert nginx_target.host.file(site).contains("nobody.sock")
    assert nginx_target.get("/") == 502
    r, result = emergency(nginx_target, tmp_path)
    assert result["top_cause"] == "socket_mismatch" and not result["healed"] and not result["ok"]
    assert r.status == "failed" and failed_hosts(r) == {nginx_target.name}
    assert nginx_target.get("/") == 502


def test_an_unreachable_host_is_reported_and_the_others_still_healed(nginx_target, tmp_path):
    nginx_target.break_("fpm_down")
    private = tmp_path / "private-ghost"
    (private / "inventory").mkdir(parents=True)
    hosts = {"ghost": {"ansible_host": "127.0.0.1", "ansible_port": 1}}  # first in line, serial 1
    hosts.update(json.loads(nginx_target.inventory.read_text())["all"]["children"]["wp502_lab"]["hosts"])
    (private / "inventory" / "hosts.json").write_text(json.dumps({"all": {"children": {"wordpress": {"hosts": hosts}}}}))
    (private / "inventory" / "group_vars").symlink_to(ROOT / "inventories" / "lab" / "group_vars")
    r = ansible_runner.run(private_data_dir=str(private), project_dir=str(ROOT), playbook="playbooks/emergency-502.yml",
                           envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}, quiet=True, timeout=600)
    stats = next(e for e in r.events if e["event"] == "playbook_on_stats")["event_data"]["artifact_data"]["wp502_emergency"]
    assert stats["ghost"]["stopped"] == "unreachable" and stats["ghost"]["unreachable"]
    assert stats[nginx_target.name]["healed_by"] == "restart_fpm"
    assert nginx_target.get("/") == 200
    assert r.status == "failed"  # the run says a host could not be reached
    assert failed_hosts(r) == {"ghost"}  # charged to the host that could not be reached, not to another


def test_a_service_that_hangs_is_cut_off_reported_and_the_host_released(nginx_target, tmp_path):
    # PHP-FPM takes 60 s to start (a hung ExecStartPre): the restart rung has 5 s.
    nginx_target.break_("fpm_down")
    dropin = "/etc/systemd/system/php8.2-fpm.service.d"
    nginx_target.host.run(f"mkdir -p {dropin} && printf '[Service]\\nExecStartPre=/bin/sleep 60\\n' > {dropin}/wp502-test-slow.conf"
                          " && systemctl daemon-reload")
    started = time.monotonic()
    r, result = emergency(nginx_target, tmp_path, wp502_emergency_service_timeout=5)
    assert time.monotonic() - started < 55  # did not wait for the unit
    assert "Restart PHP-FPM failed" in result["stopped"] and "timed out" in result["stopped"].lower()
    assert not result["healed"] and result["state"] == "stopped"
    assert result["rollback"]  # the host was held: its journal is there to undo
    assert r.status == "failed" and failed_hosts(r) == {nginx_target.name}
    assert not nginx_target.host.file("/var/lib/wp502/lock").exists  # released whatever happened
