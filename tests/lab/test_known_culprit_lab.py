"""One bad plugin on three hosts (20 active plugins each), healed in one emergency run: the first host
bisects, the next two take the culprit the first one named out alone and heal in at most two probes."""

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


def test_the_culprit_named_on_the_first_host_heals_the_next_ones_in_two_probes(three_targets, tmp_path):
    hosts = {}
    for t in three_targets:
        t.break_("segfault")
        add_fillers(t)
        assert t.get("/") == 502
        hosts.update(json.loads(t.inventory.read_text())["all"]["children"]["wp502_lab"]["hosts"])
    private = tmp_path / "private"
    for d in ("env", "inventory"):
        (private / d).mkdir(parents=True)
    (private / "project").symlink_to(ROOT)
    (private / "inventory" / "hosts.json").write_text(json.dumps({"all": {"children": {"wordpress": {"hosts": hosts}}}}))
    (private / "inventory" / "group_vars").symlink_to(ROOT / "inventories" / "lab" / "group_vars")
    (private / "env" / "extravars").write_text(json.dumps({"wp502_emergency_probe_retries": 2}))
    r = ansible_runner.run(private_data_dir=str(private), playbook="playbooks/emergency-502.yml", quiet=True, timeout=900)
    assert r.status == "successful", r.stdout.read()[-4000:]
    stats = next(e for e in r.events if e["event"] == "playbook_on_stats")["event_data"]["artifact_data"]["wp502_emergency"]
    order = [t.name for t in three_targets]  # serial 1, in inventory order
    probes = {}
    for name in order:
        result = stats[name]
        assert result["healed"] and result["culprits"] == ["wp502-fault-segfault"], result["line"]
        (rung,) = [x for x in result["rungs"] if x["rung"] == "plugins"]
        probes[name] = (rung["probes"], rung["known_culprit"])
    first, *rest = order
    assert probes[first][0] > 2 and probes[first][1] is False  # bisection among 20
    for name in rest:
        assert probes[name][0] <= 2 and probes[name][1] is True, probes
    for t in three_targets:
        assert t.get("/") == 200
        active = {p["file"].split("/")[0] for p in json.loads(t.host.check_output("wp502-lab-wp plugin list")) if p["active"]}
        assert set(FILLERS) <= active and "wp502-fault-segfault" not in active
    print("plugins rung probes per host (probes, known culprit):", probes)
