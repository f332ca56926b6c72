"""The lab controller's pure parts: fleet plan, inventories, image digest."""

from __future__ import annotations

import json

import labctl
import pytest


def test_default_fleet_is_two_nginx_and_one_apache():
    fleet = labctl.plan_fleet(3, 1, "wp502-lab", 18080, 12220)
    assert [(t["name"], t["frontend"], t["http_port"], t["ssh_port"]) for t in fleet] == [
        ("wp1", "nginx", 18081, 12221), ("wp2", "nginx", 18082, 12222), ("wp3", "apache", 18083, 12223)]
    assert [t["container"] for t in fleet] == ["wp502-lab-wp1", "wp502-lab-wp2", "wp502-lab-wp3"]


@pytest.mark.parametrize(("hosts", "apache"), [(0, 0), (21, 0), (3, 4), (3, -1)])
def test_fleet_bounds(hosts, apache):
    with pytest.raises(labctl.LabError):
        labctl.plan_fleet(hosts, apache, "p", 18080, 12220)


def test_inventories_are_valid_and_loopback_only(tmp_path, monkeypatch):
    monkeypatch.setattr(labctl, "ROOT", tmp_path)
    monkeypatch.setattr(labctl, "STATE_DIR", tmp_path / ".lab")
    (tmp_path / ".lab").mkdir()
    fleet = labctl.plan_fleet(2, 1, "wp502-lab", 18080, 12220)
    labctl.write_inventories(fleet, tmp_path / ".lab/ssh/id_ed25519")
    ssh = json.loads((tmp_path / "inventories/lab/hosts.yml").read_text().split("\n", 1)[1])
    hosts = ssh["all"]["children"]["wp502_lab"]["hosts"]
    assert hosts["wp1"]["ansible_host"] == "127.0.0.1"
    assert hosts["wp2"]["ansible_port"] == 12222
    assert hosts["wp2"]["wp502_lab_frontend"] == "apache"
    dock = json.loads((tmp_path / "inventories/lab-docker/hosts.yml").read_text().split("\n", 1)[1])
    d1 = dock["all"]["children"]["wp502_lab"]["hosts"]["wp1"]
    assert d1["ansible_connection"] == "community.docker.docker"
    assert d1["ansible_host"] == "wp502-lab-wp1"
    assert d1["wp502_lab_http_port"] == 18081


def test_image_digest_follows_the_build_context(tmp_path, monkeypatch):
    (tmp_path / "Dockerfile").write_text("FROM debian:bookworm\n")
    monkeypatch.setattr(labctl, "IMAGE_DIR", tmp_path)
    first = labctl.image_hash()
    assert labctl.image_hash() == first
    (tmp_path / "Dockerfile").write_text("FROM debian:bookworm\nRUN true\n")
    assert labctl.image_hash() != first


def test_one_site_is_todays_lab():
    assert labctl.plan_sites(1) == [{"name": "wordpress", "path": "/var/www/wordpress", "host": "localhost"}]


def test_three_sites_have_their_own_names_docroots_and_one_tcp_pool():
    sites = labctl.plan_sites(3)
    assert [(s["name"], s["path"], s["host"]) for s in sites] == [
        ("wordpress", "/var/www/wordpress", "localhost"),
        ("siteb", "/var/www/siteb", "siteb.test"),
        ("sitec", "/var/www/sitec", "sitec.test")]
    assert [s.get("listen") for s in sites] == [None, None, "127.0.0.1:9001"]
    assert labctl.plan_sites(26)[-1]["host"] == "sitez.test"


@pytest.mark.parametrize("sites", [0, -1, 27])
def test_site_bounds(sites):
    with pytest.raises(labctl.LabError, match="--sites"):
        labctl.plan_sites(sites)


def test_sites_are_added_by_the_image_script_through_docker_exec():
    b, c = labctl.plan_sites(3)[1:]
    assert labctl.add_site_argv("wp502-lab-wp1", b) == ["exec", "wp502-lab-wp1", "wp502-lab-site", "add", "siteb"]
    assert labctl.add_site_argv("wp502-lab-wp1", c) == ["exec", "wp502-lab-wp1", "wp502-lab-site", "add", "sitec",
                                                        "--tcp", "9001"]


def _inventory_hosts(tmp_path, variant="lab"):
    return json.loads((tmp_path / f"inventories/{variant}/hosts.yml").read_text().split("\n", 1)[1])[
        "all"]["children"]["wp502_lab"]["hosts"]


def test_inventory_lists_the_sites_only_when_there_are_several(tmp_path, monkeypatch):
    monkeypatch.setattr(labctl, "ROOT", tmp_path)
    monkeypatch.setattr(labctl, "STATE_DIR", tmp_path / ".lab")
    (tmp_path / ".lab").mkdir()
    fleet = labctl.plan_fleet(2, 1, "wp502-lab", 18080, 12220)
    labctl.write_inventories(fleet, tmp_path / "key", labctl.plan_sites(1))
    assert "wp502_lab_sites" not in _inventory_hosts(tmp_path)["wp1"]
    labctl.write_inventories(fleet, tmp_path / "key", labctl.plan_sites(3))
    for variant in ("lab", "lab-docker"):
        hosts = _inventory_hosts(tmp_path, variant)
        assert hosts["wp2"]["wp502_lab_sites"] == [
            {"name": "wordpress", "path": "/var/www/wordpress", "host": "localhost"},
            {"name": "siteb", "path": "/var/www/siteb", "host": "siteb.test"},
            {"name": "sitec", "path": "/var/www/sitec", "host": "sitec.test"}]
        # The evidence finds the sites itself: the lab does not set the audit's own variable.
        assert "wp502_evidence_sites" not in hosts["wp2"]


def test_sites_default_to_one_and_follow_the_sites_variable(monkeypatch):
    monkeypatch.delenv("SITES", raising=False)
    seen = {}
    monkeypatch.setattr(labctl, "up", lambda args: seen.setdefault("sites", args.sites) and 0)
    labctl.main(["up"])
    assert seen.pop("sites") == 1
    monkeypatch.setenv("SITES", "3")
    labctl.main(["up"])
    assert seen.pop("sites") == 3
    labctl.main(["up", "--sites", "2"])
    assert seen.pop("sites") == 2
