#!/usr/bin/env python3
"""wp502 lab: build the target images and run a small fleet of WordPress containers.

    labctl.py build [--distro D]         build (or reuse) the nginx and apache images of Debian D
                                         (bookworm: wp502-lab:nginx, trixie: wp502-lab:nginx-trixie)
    labctl.py base-image [--distro D]    make sure debian:D exists (pull, else debootstrap + import);
                                         prints the image reference (default D: bookworm)
    labctl.py up [--hosts N] [--apache K] [--sites S] [--distro D]
                                         start N targets (the last K behind Apache), each with S WordPress
                                         sites (default 1: site 1 only), on Debian D, write inventories
    labctl.py down                       remove the fleet and its generated inventories
    labctl.py status                     one line per target: container state and HTTP status

Every target runs systemd as PID 1 and publishes HTTP and SSH on 127.0.0.1 only. Re-running
`up` is safe: running targets are kept, stopped ones started, missing ones created.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE_DIR = ROOT / "lab" / "image"
STATE_DIR = ROOT / ".lab"
IMAGE_REPO = "wp502-lab"
DEFAULT_DISTRO = "bookworm"
# The Debian releases the lab builds targets from (debian:<distro> base images).
DISTROS = ("bookworm", "trixie")
FRONTENDS = ("nginx", "apache")
# The options systemd needs as PID 1 without --privileged (see docs/lab.md).
SYSTEMD_RUN_OPTS = [
    "--cap-add", "SYS_ADMIN",
    # PHP-FPM's slowlog ptrace()s its workers; without this it logs "failed to ptrace(ATTACH)".
    "--cap-add", "SYS_PTRACE",
    "--security-opt", "seccomp=unconfined",
    "--cgroupns=host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run",
    "--tmpfs", "/run/lock",
]
LOOPBACK = "127.0.0.1"
MAX_SITES = 26
# Site 1 is the image's own (the default vhost); sites 2.. are added by wp502-lab-site at `up` time.
SITE1 = {"name": "wordpress", "path": "/var/www/wordpress", "host": "localhost"}
# The third site's pool listens on TCP, the others on their own unix socket.
TCP_SITE, TCP_PORT = 3, 9001


class LabError(RuntimeError):
    """A lab step failed; the message says what to do."""


def log(msg: str) -> None:
    print(f"[lab] {msg}", file=sys.stderr, flush=True)


def docker(*args: str, check: bool = True, capture: bool = True, timeout: float | None = 600) -> subprocess.CompletedProcess:
    cmd = ["docker", *args]
    proc = subprocess.run(cmd, capture_output=capture, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip() if capture else ""
        raise LabError(f"`{' '.join(cmd[:4])} ...` failed (rc={proc.returncode}): {detail[-2000:]}")
    return proc


def ensure_engine() -> None:
    if shutil.which("docker") is None:
        raise LabError("the docker client is not installed: run `sudo lab/install-docker.sh` (Debian) or install Docker")
    if docker("info", check=False, timeout=60).returncode != 0:
        raise LabError("no Docker engine answers `docker info`: start one, or run `sudo lab/install-docker.sh`")


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False, timeout=60).returncode == 0


def base_image(distro: str = DEFAULT_DISTRO) -> str:
    if distro not in DISTROS:
        raise LabError(f"unknown distro {distro!r}: one of {', '.join(DISTROS)}")
    return f"debian:{distro}"


def ensure_base_image(distro: str = DEFAULT_DISTRO) -> str:
    """debian:<distro> from a registry when reachable, else debootstrapped and imported; returns its reference."""
    ref = base_image(distro)
    if image_exists(ref):
        return ref
    log(f"{ref} is absent: trying `docker pull`")
    if docker("pull", ref, check=False).returncode == 0:
        return ref
    if shutil.which("debootstrap") is None:
        raise LabError(f"{ref} cannot be pulled and debootstrap is missing: `apt-get install debootstrap`")
    log(f"no registry: building {ref} with debootstrap (about a minute)")
    with tempfile.TemporaryDirectory(prefix="wp502-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(["debootstrap", "--variant=minbase", distro, str(rootfs)],
                       check=True, stdout=subprocess.DEVNULL)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "-", ref], stdin=tar.stdout, check=True,
                       stdout=subprocess.DEVNULL)
        if tar.wait() != 0:
            raise LabError("tar of the debootstrapped root failed")
    return ref


def image_ref(frontend: str, distro: str = DEFAULT_DISTRO) -> str:
    """The lab image of a front-end on a Debian release: wp502-lab:nginx (bookworm), wp502-lab:nginx-trixie."""
    base_image(distro)
    return f"{IMAGE_REPO}:{frontend}" if distro == DEFAULT_DISTRO else f"{IMAGE_REPO}:{frontend}-{distro}"


def image_hash() -> str:
    """A digest of everything the image is built from, so an unchanged image is reused."""
    digest = hashlib.sha256()
    for path in sorted(IMAGE_DIR.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(IMAGE_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build(frontends=FRONTENDS, force: bool = False, distro: str = DEFAULT_DISTRO) -> dict[str, str]:
    ensure_engine()
    wanted = image_hash()
    refs = {}
    for frontend in frontends:
        ref = image_ref(frontend, distro)
        refs[frontend] = ref
        if not force and image_exists(ref):
            label = docker("image", "inspect", "-f", '{{ index .Config.Labels "org.wp502.lab.hash" }}', ref).stdout.strip()
            if label == wanted:
                log(f"{ref} is up to date ({wanted})")
                continue
        base = ensure_base_image(distro)
        log(f"building {ref} from {base} (a cold build takes a few minutes)")
        started = time.monotonic()
        proc = subprocess.run(
            ["docker", "build", "-t", ref, "--build-arg", f"WP502_BASE={base}",
             "--build-arg", f"WP502_FRONTEND={frontend}",
             "--label", f"org.wp502.lab.hash={wanted}", "--label", f"org.wp502.lab.distro={distro}", str(IMAGE_DIR)],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise LabError(f"building {ref} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
        log(f"built {ref} in {time.monotonic() - started:.0f}s")
    return refs


def ensure_ssh_key() -> Path:
    key = STATE_DIR / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(key.parent, 0o700)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wp502-lab", "-f", str(key)], check=True)
    return key


def plan_fleet(hosts: int, apache: int, prefix: str, http_base: int, ssh_base: int, *,
               distro: str = DEFAULT_DISTRO) -> list[dict]:
    if hosts < 1 or hosts > 20:
        raise LabError(f"--hosts must be between 1 and 20, not {hosts}")
    if apache < 0 or apache > hosts:
        raise LabError(f"--apache must be between 0 and --hosts ({hosts}), not {apache}")
    fleet = []
    for i in range(1, hosts + 1):
        frontend = "apache" if i > hosts - apache else "nginx"
        fleet.append({
            "name": f"wp{i}",
            "container": f"{prefix}-wp{i}",
            "frontend": frontend,
            "http_port": http_base + i,
            "ssh_port": ssh_base + i,
            "distro": distro,
        })
    return fleet


def plan_sites(sites: int) -> list[dict]:
    """The sites of every target: site 1 (the image's), then siteb, sitec, ... (sitec's pool on 127.0.0.1:9001)."""
    if sites < 1 or sites > MAX_SITES:
        raise LabError(f"--sites must be between 1 and {MAX_SITES}, not {sites}")
    plan = [dict(SITE1)]
    for i in range(2, sites + 1):
        name = "site" + chr(ord("a") + i - 1)
        site = {"name": name, "path": f"/var/www/{name}", "host": f"{name}.test"}
        if i == TCP_SITE:
            site["listen"] = f"{LOOPBACK}:{TCP_PORT}"
        plan.append(site)
    return plan


def add_site_argv(container: str, site: dict) -> list[str]:
    """The `docker exec` that creates one extra site on a target (idempotent on the target's side)."""
    argv = ["exec", container, "wp502-lab-site", "add", site["name"]]
    if "listen" in site:
        argv += ["--tcp", site["listen"].rsplit(":", 1)[1]]
    return argv


def add_sites(target: dict, sites: list[dict]) -> None:
    """Create sites 2.. on a running target, then wait until each answers 200 on its own Host header."""
    for site in sites[1:]:
        out = json.loads(docker(*add_site_argv(target["container"], site), timeout=300).stdout)
        if out["changed"]:
            log(f"{target['container']}: site {site['name']} ({site['host']}): created {', '.join(out['changed'])}")
    for site in sites[1:]:
        wait_site(target, site)


def wait_site(target: dict, site: dict, deadline_s: float = 60.0) -> None:
    deadline, codes = time.monotonic() + deadline_s, []
    while time.monotonic() < deadline:
        codes = [http_status(target["http_port"], p, host=site["host"]) for p in ("/", "/wp-login.php")]
        if codes == [200, 200]:
            return
        time.sleep(1)
    raise LabError(f"{target['container']}: site {site['host']} answers {codes}, not 200; "
                   f"see `docker exec {target['container']} wp502-lab-site list`")


def container_state(name: str) -> dict | None:
    proc = docker("inspect", name, check=False, timeout=60)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)[0]


def start_target(target: dict, prefix: str, pubkey: str) -> None:
    name, image = target["container"], image_ref(target["frontend"], target.get("distro", DEFAULT_DISTRO))
    state = container_state(name)
    if state is not None:
        labels = state["Config"]["Labels"] or {}
        same_image = state["Image"] == docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
        same_ports = labels.get("org.wp502.lab.http_port") == str(target["http_port"])
        if not (same_image and same_ports):
            log(f"{name}: image or ports changed, recreating")
            docker("rm", "-f", name)
            state = None
        elif not state["State"]["Running"]:
            log(f"{name}: starting the stopped container")
            docker("start", name)
    if state is None:
        log(f"{name}: creating ({target['frontend']}, http 127.0.0.1:{target['http_port']}, ssh 127.0.0.1:{target['ssh_port']})")
        docker("run", "-d", "--name", name, "--hostname", target["name"],
               "--label", f"org.wp502.lab.fleet={prefix}",
               "--label", f"org.wp502.lab.http_port={target['http_port']}",
               "-p", f"{LOOPBACK}:{target['http_port']}:80",
               "-p", f"{LOOPBACK}:{target['ssh_port']}:22",
               *SYSTEMD_RUN_OPTS, *target.get("run_opts", []), image, "/lib/systemd/systemd")
    proc = subprocess.run(
        ["docker", "exec", "-i", name, "sh", "-c",
         "install -d -m 0700 /root/.ssh && cat > /root/.ssh/authorized_keys && chmod 0600 /root/.ssh/authorized_keys"],
        input=pubkey, text=True, capture_output=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise LabError(f"{name}: could not install the lab SSH key: {proc.stderr.strip()}")


def http_status(port: int, path: str = "/", timeout: float = 10.0, host: str | None = None) -> int | None:
    """The status of GET path on 127.0.0.1:port, with the site's Host header (default: 127.0.0.1:port, site 1)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host or f"{LOOPBACK}:{port}", "User-Agent": "wp502-lab"})
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def wait_ready(target: dict, deadline_s: float = 120.0) -> None:
    """systemd finished booting and WordPress answers 200 on / and /wp-login.php."""
    name, deadline = target["container"], time.monotonic() + deadline_s
    last = ""
    while time.monotonic() < deadline:
        proc = docker("exec", name, "systemctl", "is-system-running", check=False, timeout=30)
        last = proc.stdout.strip()
        if last in ("running", "degraded"):
            codes = [http_status(target["http_port"], p) for p in ("/", "/wp-login.php")]
            if codes == [200, 200]:
                if last == "degraded":
                    failed = docker("exec", name, "systemctl", "--failed", "--no-legend", check=False).stdout.strip()
                    log(f"{name}: systemd is degraded: {failed}")
                return
            last = f"{last}, HTTP {codes}"
        time.sleep(1)
    raise LabError(f"{name} was not ready within {deadline_s:.0f}s (last seen: {last}); "
                   f"see `docker exec {name} journalctl -b --no-pager | tail -50`")


def write_inventories(fleet: list[dict], key: Path, sites: list[dict] | None = None) -> None:
    header = "# Generated by lab/labctl.py up: do not edit, it is rewritten on every run.\n"
    for variant, connection in (("lab", "ssh"), ("lab-docker", "docker")):
        hosts = {}
        for t in fleet:
            host = {
                "wp502_lab_container": t["container"],
                "wp502_lab_frontend": t["frontend"],
                "wp502_lab_http_port": t["http_port"],
            }
            if sites and len(sites) > 1:
                # The lab's own record of the sites; wp502_evidence_sites stays unset (the audit finds them).
                host["wp502_lab_sites"] = [{k: s[k] for k in ("name", "path", "host")} for s in sites]
            if connection == "ssh":
                host.update({"ansible_host": LOOPBACK, "ansible_port": t["ssh_port"],
                             "ansible_ssh_private_key_file": str(key)})
            else:
                host.update({"ansible_host": t["container"], "ansible_connection": "community.docker.docker"})
            hosts[t["name"]] = host
        inv_dir = ROOT / "inventories" / variant
        inv_dir.mkdir(parents=True, exist_ok=True)
        doc = {"all": {"children": {"wp502_lab": {"hosts": hosts}, "wordpress": {"children": {"wp502_lab": {}}}}}}
        # JSON is YAML: no YAML library is needed to write a valid inventory.
        (inv_dir / "hosts.yml").write_text(header + json.dumps(doc, indent=2) + "\n")
    (STATE_DIR / "fleet.json").write_text(json.dumps(fleet, indent=2) + "\n")


def fleet_containers(prefix: str) -> list[str]:
    proc = docker("ps", "-a", "--filter", f"label=org.wp502.lab.fleet={prefix}", "--format", "{{.Names}}")
    return sorted(n for n in proc.stdout.split() if n)


def up(args) -> int:
    ensure_engine()
    fleet = plan_fleet(args.hosts, args.apache, args.prefix, args.http_base, args.ssh_base, distro=args.distro)
    sites = plan_sites(args.sites)
    build(sorted({t["frontend"] for t in fleet}), distro=args.distro)
    STATE_DIR.mkdir(exist_ok=True)
    key = ensure_ssh_key()
    pubkey = key.with_suffix(".pub").read_text()
    wanted = {t["container"] for t in fleet}
    for extra in set(fleet_containers(args.prefix)) - wanted:
        log(f"{extra}: not in a fleet of {args.hosts}, removing")
        docker("rm", "-f", extra)
    for target in fleet:
        start_target(target, args.prefix, pubkey)
    for target in fleet:
        wait_ready(target)
        add_sites(target, sites)
        target["sites"] = [s["host"] for s in sites]
    write_inventories(fleet, key, sites)
    for t in fleet:
        print(f"{t['name']:5} {t['frontend']:7} http://{LOOPBACK}:{t['http_port']}/  ssh -p {t['ssh_port']} root@{LOOPBACK}")
        for s in sites[1:]:
            print(f"      {s['host']:14} curl -H 'Host: {s['host']}' http://{LOOPBACK}:{t['http_port']}/")
    print("inventories: inventories/lab/hosts.yml (ssh), inventories/lab-docker/hosts.yml (docker exec)")
    return 0


def down(args) -> int:
    ensure_engine()
    names = fleet_containers(args.prefix)
    if names:
        docker("rm", "-f", *names)
        log(f"removed {' '.join(names)}")
    else:
        log("no lab containers to remove")
    for variant in ("lab", "lab-docker"):
        (ROOT / "inventories" / variant / "hosts.yml").unlink(missing_ok=True)
    (STATE_DIR / "fleet.json").unlink(missing_ok=True)
    return 0


def status(args) -> int:
    ensure_engine()
    fleet_file = STATE_DIR / "fleet.json"
    if not fleet_file.exists():
        print("no lab fleet: run `make lab`")
        return 1
    for t in json.loads(fleet_file.read_text()):
        state = container_state(t["container"])
        running = bool(state and state["State"]["Running"])
        codes = [http_status(t["http_port"], p) for p in ("/", "/wp-login.php")] if running else [None, None]
        print(f"{t['name']:5} {t['frontend']:7} {'running' if running else 'stopped':8} "
              f"/ -> {codes[0]}  /wp-login.php -> {codes[1]}")
        for host in t.get("sites", [])[1:]:
            codes = [http_status(t["http_port"], p, host=host) for p in ("/", "/wp-login.php")] if running else [None, None]
            print(f"      {host:16} / -> {codes[0]}  /wp-login.php -> {codes[1]}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefix", default=os.environ.get("WP502_LAB_PREFIX", "wp502-lab"),
                        help="container name prefix and fleet label (default: wp502-lab)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_build = sub.add_parser("build", help="build or reuse the target images")
    p_build.add_argument("--force", action="store_true", help="rebuild even when up to date")
    p_build.add_argument("--distro", choices=DISTROS, default=DEFAULT_DISTRO,
                         help=f"Debian release of the images (default: {DEFAULT_DISTRO})")
    p_up = sub.add_parser("up", help="start the fleet and write inventories/lab*/hosts.yml")
    p_up.add_argument("--hosts", type=int, default=int(os.environ.get("N", "3")))
    p_up.add_argument("--apache", type=int, default=None,
                      help="how many of the last hosts run Apache instead of nginx (default: 1 when N >= 3)")
    p_up.add_argument("--sites", type=int, default=int(os.environ.get("SITES", "1")),
                      help="WordPress sites per target (default 1; sites 2.. are siteb.test, sitec.test, ...)")
    p_up.add_argument("--http-base", type=int, default=int(os.environ.get("WP502_LAB_HTTP_BASE", "18080")))
    p_up.add_argument("--ssh-base", type=int, default=int(os.environ.get("WP502_LAB_SSH_BASE", "12220")))
    p_up.add_argument("--distro", choices=DISTROS, default=DEFAULT_DISTRO,
                      help=f"Debian release of the targets (default: {DEFAULT_DISTRO}; trixie is Debian 13)")
    p_base = sub.add_parser("base-image", help="make sure the debian:<distro> base image exists and print its reference")
    p_base.add_argument("--distro", choices=DISTROS, default=DEFAULT_DISTRO,
                        help=f"Debian release (default: {DEFAULT_DISTRO})")
    sub.add_parser("down", help="remove the fleet")
    sub.add_parser("status", help="show the fleet")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "base-image":
            ensure_engine()
            print(ensure_base_image(args.distro))
            return 0
        if args.cmd == "build":
            build(force=args.force, distro=args.distro)
            return 0
        if args.cmd == "up":
            if args.apache is None:
                args.apache = 1 if args.hosts >= 3 else 0
            return up(args)
        if args.cmd == "down":
            return down(args)
        return status(args)
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
