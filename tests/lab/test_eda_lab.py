"""Event-Driven Ansible on a real target: the rulebook's uptime source sees the 502, runs
emergency-502.yml for that host, and the host heals, once; broken again within the throttle window,
neither the uptime check nor an Alertmanager alert starts a second run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .conftest import _free_port

ROOT = Path(__file__).resolve().parents[2]
PLAY = "PLAY [Heal WordPress 502s, rung by rung]"


def test_the_rulebook_heals_a_broken_host_once(nginx_target, tmp_path):
    nginx_target.break_("fpm_down")
    assert nginx_target.get("/") == 502
    hook = _free_port()
    variables = tmp_path / "vars.yml"
    variables.write_text(json.dumps({
        "wp502_eda_sites": [{"host": nginx_target.name, "url": f"http://127.0.0.1:{nginx_target.http_port}"}],
        "wp502_eda_interval": 2, "wp502_eda_webhook_port": hook}))
    log = tmp_path / "rulebook.log"
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    with log.open("w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "ansible-rulebook"),
                                 "-r", "extensions/eda/rulebooks/wp502-heal.yml", "-i", str(nginx_target.inventory),
                                 "-S", "extensions/eda/plugins/event_source", "--vars", str(variables)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and nginx_target.get("/", timeout=5) != 200:
            assert proc.poll() is None, log.read_text()[-4000:]
            time.sleep(2)
        assert nginx_target.get("/") == 200, log.read_text()[-4000:]
        time.sleep(3)  # the run's summary play
        assert log.read_text().count(PLAY) == 1

        # Broken again within the window: the uptime check keeps seeing it, and an alert comes in.
        nginx_target.break_("fpm_down")
        alert = {"version": "4", "status": "firing",
                 "alerts": [{"status": "firing", "labels": {"alertname": "WordPress502", "wp502_host": nginx_target.name}}]}
        req = urllib.request.Request(f"http://127.0.0.1:{hook}/alertmanager", data=json.dumps(alert).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - the rulebook's loopback listener
            assert resp.status == 202
        time.sleep(15)
        assert nginx_target.get("/") == 502  # throttled: no second remediation
        assert log.read_text().count(PLAY) == 1, log.read_text()[-4000:]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
