"""One bad plugin on three hosts (20 active plugins each): the first host bisects, the second (same run)
and the third (a later run, from the results the controller kept) take the culprit the first one named out
alone, plugins rung first since their logs show its signature, and heal in at most two probes."""

from __future__ import annotations

import json

import ansible_runner
import labctl
import pytest

from . import conftest
from .test_audit_lab import ROOT

FILLERS = [f"wp502-filler-{i:02d}" for i in range(17)]  # + akismet, xrds-simple and the culprit: 20 active


@pytest.fixture
def three_targets(lab_images, ssh_key, tmp_path, request):
    targets = []
    try:
        for n in range(3):
            (tmp_path / f"t{n}").mkdir()
            targets.append(conftest._start("nginx", ssh_key, tmp_path / f"t{n}"))
        yield targets
    finally:
        for t in targets:
            conftest._dump_logs_on_failure(t, request)
            labctl.docker("rm", "-f", t.container, check=False)


def add_fillers(t):
    """17 ordinary plugins, active: the culprit hides among 20."""
    t.host.run("cd /var/www/wordpress/wp-content/plugins && for p in " + " ".join(FILLERS) + "; do "
               "install -d -o www-data -g www-data $p && printf '<?php\\n/*\\nPlugin Name: %s\\nVersion: 1.0\\n*/\\n' $p "
               "> $p/$p.php && chown www-data:www-data $p/$p.php; done")
    out = t.host.run("wp502-lab-wp plugin activate " + " ".join(FILLERS))
    assert out.rc == 0, out.stderr
    active = [p for p in json.loads(t.host.check_output("wp502-lab-wp plugin list")) if p["active"]]
    assert len(active) == 20, active


def emergency(tmp_path, name, hosts, reports):
    """emergency-502.yml through ansible-runner as AWX runs it, its reports under ``reports`` (a shared
    wp502_report_dir): the per-host results of set_stats."""
    private = tmp_path / name
    for d in ("env", "inventory"):
        (private / d).mkdir(parents=True)
    (private / "project").symlink_to(ROOT)
    (private / "inventory" / "hosts.json").write_text(json.dumps({"all": {"children": {"wordpress": {"hosts": hosts}}}}))
    (private / "inventory" / "group_vars").symlink_to(ROOT / "inventories" / "lab" / "group_vars")
    (private / "env" / "extravars").write_text(json.dumps({"wp502_emergency_probe_retries": 2,
                                                           "wp502_report_dir": str(reports)}))
    r = ansible_runner.run(private_data_dir=str(private), playbook="playbooks/emergency-502.yml", quiet=True, timeout=900)
    assert r.status == "successful", r.stdout.read()[-4000:]
    return next(e for e in r.events if e["event"] == "playbook_on_stats")["event_data"]["artifact_data"]["wp502_emergency"]


def test_the_culprit_named_on_the_first_host_heals_the_next_ones_in_two_probes(three_targets, tmp_path):
    """Hosts 1 and 2 in one run (serial 1: host 2 learns from host 1), host 3 in a later run that reads the
    first run's results from the shared report directory."""
    inventory = {}
    for t in three_targets:
        t.break_("segfault")
        add_fillers(t)
        assert t.get("/") == 502
        inventory[t.name] = json.loads(t.inventory.read_text())["all"]["children"]["wp502_lab"]["hosts"][t.name]
    order = [t.name for t in three_targets]
    reports = tmp_path / "reports"
    stats = emergency(tmp_path, "run1", {n: inventory[n] for n in order[:2]}, reports)
    assert len(list(reports.glob("emergency-*/results.json"))) == 1
    stats.update(emergency(tmp_path, "run2", {order[2]: inventory[order[2]]}, reports))
    probes = {}
    for name in order:
        result = stats[name]
        assert result["healed"] and result["culprits"] == ["wp502-fault-segfault"], result["line"]
        (rung,) = [x for x in result["rungs"] if x["rung"] == "plugins"]
        probes[name] = (rung["probes"], rung["known_culprit"], [x["rung"] for x in result["rungs"]])
    first, *rest = order
    assert probes[first][0] > 2 and probes[first][1] is False  # bisection among 20
    assert probes[first][2] == ["restart_fpm", "plugins"]  # crashing_worker's own order
    for name in rest:
        n, known, rungs = probes[name]
        # The same SIGSEGV signature here as where it was proved: the plugins rung first, the culprit out alone.
        assert n <= 2 and known is True and rungs == ["plugins"], probes
        (rung,) = [x for x in stats[name]["rungs"] if x["rung"] == "plugins"]
        assert [f["host"] for f in rung["known_from"]][:1] == [first], rung
        assert "known culprit, proved on " + first in rung["note"] and "the same signature here" in rung["note"], rung["note"]
    for t in three_targets:
        assert t.get("/") == 200
        active = {p["file"].split("/")[0] for p in json.loads(t.host.check_output("wp502-lab-wp plugin list")) if p["active"]}
        assert set(FILLERS) <= active and "wp502-fault-segfault" not in active
    print("plugins rung probes per host (probes, known culprit, rungs):", probes)
