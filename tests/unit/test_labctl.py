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
