"""`labctl.py up` and `down` (what `make lab` / `make lab-down` run) are safe to run twice in a row."""

from __future__ import annotations

import json

import labctl


def test_up_twice_then_down_twice(lab_images, tmp_path, monkeypatch, capsys):
    # Inventories and keys go to a scratch tree, so a developer's own lab is left alone.
    monkeypatch.setattr(labctl, "ROOT", tmp_path)
    monkeypatch.setattr(labctl, "STATE_DIR", tmp_path / ".lab")
    args = ["--prefix", "wp502-fleettest", "up", "--hosts", "2", "--apache", "1",
            "--http-base", "38080", "--ssh-base", "32220"]
    try:
        assert labctl.main(args) == 0
        first = {n: labctl.container_state(n)["Id"] for n in labctl.fleet_containers("wp502-fleettest")}
        assert sorted(first) == ["wp502-fleettest-wp1", "wp502-fleettest-wp2"]
        inventory = (tmp_path / "inventories/lab/hosts.yml").read_text()
        hosts = json.loads(inventory.split("\n", 1)[1])["all"]["children"]["wp502_lab"]["hosts"]
        assert hosts["wp2"]["wp502_lab_frontend"] == "apache"
        assert labctl.http_status(38081, "/") == 200
        assert labctl.http_status(38082, "/wp-login.php") == 200

        # Again: the same containers are kept, not recreated.
        assert labctl.main(args) == 0
        again = {n: labctl.container_state(n)["Id"] for n in labctl.fleet_containers("wp502-fleettest")}
        assert again == first

        # A stopped target is started again.
        labctl.docker("stop", "wp502-fleettest-wp1")
        assert labctl.main(args) == 0
        assert labctl.container_state("wp502-fleettest-wp1")["State"]["Running"]
        assert labctl.main(["--prefix", "wp502-fleettest", "status"]) == 0
        assert "wp1   nginx   running" in capsys.readouterr().out
    finally:
        assert labctl.main(["--prefix", "wp502-fleettest", "down"]) == 0
    assert labctl.fleet_containers("wp502-fleettest") == []
    assert not (tmp_path / "inventories/lab/hosts.yml").exists()
    assert labctl.main(["--prefix", "wp502-fleettest", "down"]) == 0
