"""audit-502.yml driven through ansible-runner as AWX runs it: a broken host, a healthy one and an
unreachable one; the run succeeds, the report names each, and set_stats carries the summary."""

from __future__ import annotations

import json
from pathlib import Path

import ansible_runner

ROOT = Path(__file__).resolve().parents[2]


def test_fleet_audit_through_ansible_runner(nginx_target, apache_target, tmp_path):
    nginx_target.break_("fpm_down")
    hosts = {}
    for target in (nginx_target, apache_target):
        hosts.update(json.loads(target.inventory.read_text())["all"]["children"]["wp502_lab"]["hosts"])
    hosts["ghost"] = {"ansible_host": "127.0.0.1", "ansible_port": 1}
    # The private data dir as AWX lays it out: env/extravars, inventory/, project/ (ansible.cfg found there).
    private = tmp_path / "private"
    for d in ("env", "inventory"):
        (private / d).mkdir(parents=True)
    (private / "project").symlink_to(ROOT)
    (private / "inventory" / "hosts.json").write_text(json.dumps(
        {"all": {"children": {"wordpress": {"hosts": hosts}}}}))
    (private / "inventory" / "group_vars").symlink_to(ROOT / "inventories" / "lab" / "group_vars")
    reports = tmp_path / "reports"
    (private / "env" / "extravars").write_text(json.dumps(
        {"wp502_report_dir": str(reports), "wp502_evidence_since": "15m", "wp502_evidence_probe_timeout": 5}))
    r = ansible_runner.run(private_data_dir=str(private), playbook="playbooks/audit-502.yml", quiet=True, timeout=600)
    assert r.status == "successful", r.stdout.read()[-5000:]
    assert r.rc == 0
    assert set(r.stats["ok"]) >= {nginx_target.name, apache_target.name}
    stats = next(e for e in r.events if e["event"] == "playbook_on_stats")["event_data"]["artifact_data"]["wp502_audit"]
    assert stats["verdicts"] == {nginx_target.name: "fpm_down", apache_target.name: "healthy", "ghost": None}
    assert stats["statuses"] == {"ok": 2, "unreachable": 1}
    assert stats["unhealthy"] == [nginx_target.name]
    (run_dir,) = reports.iterdir()
    prom = (run_dir / "wp502.prom").read_text()
    assert prom.count("wp502_audited{") == 3 and f'wp502_verdict{{host="{nginx_target.name}",cause="fpm_down"}} 1' in prom
    page = (run_dir / "report.html").read_text()
    assert "<svg" in page and 'id="verdicts"' in page and "http" not in page.split("<body>")[0].replace("http-equiv", "")
    assert f'data-host="{nginx_target.name}"' in page and "fpm_down" in page
    md = (run_dir / "summary.md").read_text()
    assert "| ghost | unreachable |" in md
    per_host = json.loads((run_dir / "hosts" / f"{nginx_target.name}.json").read_text())
    assert per_host["top_cause"] == "fpm_down"
    assert sorted(p.name for p in (run_dir / "hosts").iterdir()) == sorted(
        [f"{h}.{ext}" for h in (nginx_target.name, apache_target.name, "ghost") for ext in ("json", "html")])
