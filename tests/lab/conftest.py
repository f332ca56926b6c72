"""Fixtures that run real lab targets: one fresh container per test, removed afterwards."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from itertools import count
from pathlib import Path

import labctl
import pytest
import testinfra

ROOT = Path(__file__).resolve().parents[2]
PREFIX = os.environ.get("WP502_TEST_PREFIX", "wp502-test")
_slot = count(1)


def _free_port():
    """A loopback port nobody listens on now (two test sessions on one machine must not collide)."""
    with socket.socket() as sock:
        sock.bind((labctl.LOOPBACK, 0))
        return sock.getsockname()[1]


def pytest_collection_modifyitems(config, items):
    if labctl.docker("info", check=False, timeout=60).returncode != 0:
        skip = pytest.mark.skip(reason="no Docker engine answers `docker info` (make docker)")
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def lab_images():
    """Build (or reuse) both target images once per session; remove the test targets that an aborted
    session left (those whose pytest process is gone; a session running beside this one keeps its own)."""
    for name in labctl.fleet_containers(PREFIX):
        match = re.match(rf"^{re.escape(PREFIX)}-(\d+)-\d+$", name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            labctl.docker("rm", "-f", name, check=False)
    return labctl.build()


@pytest.fixture(scope="session")
def lab_images_trixie(lab_images):
    """The Debian 13 (trixie) nginx image, built (or reused) once per session."""
    return labctl.build(["nginx"], distro="trixie")


@pytest.fixture(scope="session")
def ssh_key():
    return labctl.ensure_ssh_key()


class Target:
    """A running lab container with an inventory of its own, reached over SSH as in production."""

    def __init__(self, spec: dict, key: Path, tmp: Path):
        self.spec = spec
        self.name = spec["name"]
        self.container = spec["container"]
        self.http_port = spec["http_port"]
        self.frontend = spec["frontend"]
        self.distro = spec.get("distro", labctl.DEFAULT_DISTRO)
        self.host = testinfra.get_host(f"docker://{self.container}")
        tmp = tmp / f"inventory-{self.name}"  # each target its own inventory, when a test has several
        tmp.mkdir()
        self.inventory = tmp / "hosts.yml"
        hosts = {self.name: {
            "ansible_host": labctl.LOOPBACK, "ansible_port": spec["ssh_port"],
            "ansible_ssh_private_key_file": str(key), "wp502_lab_container": self.container,
            "wp502_lab_frontend": self.frontend, "wp502_lab_http_port": self.http_port,
        }}
        self.inventory.write_text(json.dumps({"all": {"children": {"wp502_lab": {"hosts": hosts}}}}))
        # The lab inventory's connection settings, shared through group_vars.
        (tmp / "group_vars").symlink_to(ROOT / "inventories" / "lab" / "group_vars")

    def playbook(self, playbook: str, *extra: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        bindir = Path(sys.executable).parent
        return subprocess.run([str(bindir / "ansible-playbook"), "-i", str(self.inventory), str(ROOT / playbook), *extra],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)

    def break_(self, fault: str) -> subprocess.CompletedProcess:
        proc = self.playbook("playbooks/lab-break.yml", "-e", f"wp502_lab_fault={fault}", "-e", "wp502_lab_probe=false")
        assert proc.returncode == 0, f"lab-break.yml {fault} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
        return proc

    def get(self, path: str, timeout: float = 40.0) -> int | None:
        return labctl.http_status(self.http_port, path, timeout=timeout)

    def log(self, path: str) -> str:
        f = self.host.file(path)
        return f.content_string if f.exists else ""

    @property
    def php(self) -> str:
        """The target's PHP version as its php-cli says (8.2 on Debian 12, 8.4 on Debian 13)."""
        return self.host.check_output("php -r 'echo PHP_MAJOR_VERSION.\".\".PHP_MINOR_VERSION;'").strip()


def _start(frontend: str, key: Path, tmp: Path, run_opts: tuple[str, ...] = (), distro: str = labctl.DEFAULT_DISTRO) -> Target:
    """A fresh target; ``run_opts``: more `docker run` options (resource limits such as --cpus 1 --memory 1g);
    ``distro``: the Debian release of its image (bookworm, trixie)."""
    slot = next(_slot)
    spec = {"name": f"t{slot}", "container": f"{PREFIX}-{os.getpid()}-{slot}", "frontend": frontend,
            "http_port": _free_port(), "ssh_port": _free_port(), "run_opts": list(run_opts), "distro": distro}
    try:
        labctl.start_target(spec, PREFIX, key.with_suffix(".pub").read_text())
        labctl.wait_ready(spec)
        return Target(spec, key, tmp)
    except Exception:
        labctl.docker("rm", "-f", spec["container"], check=False)
        raise


def _fresh_target(frontend, ssh_key, tmp_path, request, distro=labctl.DEFAULT_DISTRO):
    target = _start(frontend, ssh_key, tmp_path, distro=distro)
    yield target
    _dump_logs_on_failure(target, request)
    labctl.docker("rm", "-f", target.container, check=False)


@pytest.fixture
def nginx_target(lab_images, ssh_key, tmp_path, request):
    """A fresh nginx target, removed after the test."""
    yield from _fresh_target("nginx", ssh_key, tmp_path, request)


@pytest.fixture
def apache_target(lab_images, ssh_key, tmp_path, request):
    """A fresh Apache target, removed after the test."""
    yield from _fresh_target("apache", ssh_key, tmp_path, request)


@pytest.fixture
def nginx_trixie_target(lab_images_trixie, ssh_key, tmp_path, request):
    """A fresh Debian 13 (trixie) nginx target, removed after the test."""
    yield from _fresh_target("nginx", ssh_key, tmp_path, request, distro="trixie")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _dump_logs_on_failure(target: Target, request) -> None:
    rep = getattr(request.node, "rep_call", None)
    if rep is None or not rep.failed:
        return
    fpm_logs = target.host.run("ls /var/log/php*-fpm.log 2>/dev/null").stdout.split()  # php8.2-fpm.log, php8.4-fpm.log
    for path in ("/var/log/nginx/error.log", "/var/log/apache2/error.log", *fpm_logs):
        text = target.log(path)
        if text:
            print(f"--- {target.container}:{path} (last 30 lines)\n" + "\n".join(text.splitlines()[-30:]))


# --- Targets with several WordPress sites (`make lab SITES=3`): site 1, siteb.test, sitec.test (TCP pool).

SITES = 3


class SitesTarget(Target):
    """A lab target with SITES WordPress sites; its inventory lists them (wp502_lab_sites) as `make lab` writes it."""

    def __init__(self, spec: dict, key: Path, tmp: Path, sites: list[dict]):
        super().__init__(spec, key, tmp)
        self.sites = {s["name"]: s for s in sites}
        doc = json.loads(self.inventory.read_text())
        doc["all"]["children"]["wp502_lab"]["hosts"][self.name]["wp502_lab_sites"] = sites
        self.inventory.write_text(json.dumps(doc))
        self.registry = {s["name"]: s for s in json.loads(self.host.check_output("wp502-lab-site list"))}

    def host_header(self, site: str) -> str:
        """Site 1 is asked as the published port (the default vhost); the others by their own name."""
        return f"{labctl.LOOPBACK}:{self.http_port}" if site == "wordpress" else self.sites[site]["host"]

    def get_site(self, site: str, path: str = "/", timeout: float = 40.0) -> int | None:
        return labctl.http_status(self.http_port, path, timeout=timeout, host=self.host_header(site))

    def fetch_site(self, site: str, path: str = "/") -> tuple[int, str]:
        """Status and body, asked on the target itself (docker exec curl) with the site's Host header."""
        host = "localhost" if site == "wordpress" else self.sites[site]["host"]
        out = self.host.check_output(f"curl -s --max-time 40 -H 'Host: {host}' -w '\\n%{{http_code}}' http://127.0.0.1{path}")
        body, _, code = out.rpartition("\n")
        return int(code), body

    def statuses(self) -> dict[str, int | None]:
        return {name: self.get_site(name) for name in self.sites}

    def break_site(self, fault: str, site: str | None = None) -> subprocess.CompletedProcess:
        extra = ["-e", f"wp502_lab_site={site}"] if site else []
        proc = self.playbook("playbooks/lab-break.yml", "-e", f"wp502_lab_fault={fault}", "-e", "wp502_lab_probe=false", *extra)
        assert proc.returncode == 0, f"lab-break.yml {fault} {site} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
        return proc


def _fresh_sites_target(frontend, ssh_key, tmp_path, request):
    sites = labctl.plan_sites(SITES)
    target = _start(frontend, ssh_key, tmp_path)
    try:
        labctl.add_sites(target.spec, sites)
        target = SitesTarget(target.spec, ssh_key, tmp_path / "sites", sites)
    except Exception:
        labctl.docker("rm", "-f", target.container, check=False)
        raise
    yield target
    _dump_logs_on_failure(target, request)
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for name in list(target.sites)[1:]:
            for path in (target.registry[name]["error_log"], target.registry[name]["slowlog"]):
                text = target.log(path)
                if text:
                    print(f"--- {target.container}:{path} (last 30 lines)\n" + "\n".join(text.splitlines()[-30:]))
    labctl.docker("rm", "-f", target.container, check=False)


@pytest.fixture
def nginx_sites_target(lab_images, ssh_key, tmp_path, request):
    """A fresh nginx target with three WordPress sites, removed after the test."""
    (tmp_path / "sites").mkdir()
    yield from _fresh_sites_target("nginx", ssh_key, tmp_path, request)


@pytest.fixture
def apache_sites_target(lab_images, ssh_key, tmp_path, request):
    """A fresh Apache target with three WordPress sites, removed after the test."""
    (tmp_path / "sites").mkdir()
    yield from _fresh_sites_target("apache", ssh_key, tmp_path, request)


@pytest.fixture(params=["nginx", "apache"])
def sites_target(lab_images, ssh_key, tmp_path, request):
    """A fresh three-site target of each front-end in turn."""
    (tmp_path / "sites").mkdir()
    yield from _fresh_sites_target(request.param, ssh_key, tmp_path, request)
