#!/usr/bin/env python3
"""`make compat`: lint, the unit tests and the syntax checks on a second controller, ansible-core 2.21
on Debian 13's Python 3.13, in a container built from Debian's packages.

    compat.py [--rebuild]

The image (wp502-compat:trixie) is Dockerfile's Debian layer plus a venv from requirements-compat.txt;
it carries a hash of those inputs and is reused while they are unchanged. pip inside the container
uses this machine's pip configuration: the PIP_* and CA variables and the `pip config` settings are
passed through, and every local file or directory they name (CA bundle, find-links, file:// indexes,
constraints) is mounted read-only at the same path. The checkout is mounted read-only and copied
inside the container (run.sh); logs go to artifacts/compat/.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "compat"
IMAGE = "wp502-compat:trixie"
BASE = "debian:trixie"
LABEL = "wp502.compat.hash"
VENV = "/opt/venv"
# Where ansible-test keeps the virtualenvs it makes for its sanity tests: kept between runs.
# The image's second layer: the venv, made in a container that sees the host's pip settings.
VENV_SCRIPT = (f"python3 -m venv {VENV} && {VENV}/bin/pip install --quiet --upgrade pip && "
               f"{VENV}/bin/pip install --quiet -r /tmp/requirements-compat.txt && "
               f"{VENV}/bin/ansible --version && {VENV}/bin/pip check")
CACHE_VOLUME = "wp502-compat-ansible-test"
PASS_ENV = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
            "http_proxy", "https_proxy", "no_proxy")


def log(msg: str) -> None:
    print(f"[compat] {msg}", file=sys.stderr, flush=True)


def docker(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=capture, text=True, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"[compat] `docker {' '.join(args[:3])} ...` failed (rc={proc.returncode}): "
                         f"{(proc.stderr or proc.stdout or '').strip()[-2000:]}")
    return proc


def inputs_hash() -> str:
    digest = hashlib.sha256()
    for path in (HERE / "Dockerfile", ROOT / "requirements-compat.txt"):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(VENV_SCRIPT.encode())
    return digest.hexdigest()[:16]


def ensure_base() -> None:
    """debian:trixie: labctl's base-image (pull, else debootstrap and import) when it has one."""
    if docker("image", "inspect", BASE, check=False).returncode == 0:
        return
    labctl = ROOT / "lab" / "labctl.py"
    if "base-image" in labctl.read_text():
        subprocess.run([sys.executable, str(labctl), "base-image", "--distro", "trixie"], check=True)
        return
    raise SystemExit(f"[compat] {BASE} is missing: pull it, or debootstrap trixie and `docker import` it (docs/lab.md)")


def pip_settings() -> tuple[dict[str, str], str]:
    """This machine's pip settings: the environment variables to pass, and a pip.conf of the rest."""
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in PASS_ENV}
    env.pop("PIP_CONFIG_FILE", None)
    sections: dict[str, list[str]] = {}
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False)
    for line in listed.stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep or key.startswith(":env:") or "." not in key:
            continue
        section, name = key.split(".", 1)
        sections.setdefault(section, []).append(f"{name} = {value.strip().strip(chr(39)).strip(chr(34))}")
    conf = "".join(f"[{s}]\n" + "".join(f"{line}\n" for line in lines) for s, lines in sections.items())
    return env, conf


def local_paths(values) -> list[str]:
    """The existing local files and directories named by pip settings (paths and file:// URLs)."""
    found: set[str] = set()
    for value in values:
        for token in value.replace(",", " ").split():
            path = token
            if token.startswith("file://"):
                # A local index's pages link to files beside its simple/ tree: mount the index's parent.
                path = os.path.dirname(token[len("file://"):].rstrip("/"))
            if path.startswith("/") and path != "/" and os.path.exists(path):
                found.add(os.path.normpath(path))
    # A path inside another one is mounted with it.
    return sorted(p for p in found if not any(p != q and p.startswith(q + "/") for q in found))


def pip_docker_args(tmp: Path) -> list[str]:
    env, conf = pip_settings()
    conf_file = tmp / "pip.conf"
    conf_file.write_text(conf)
    args = ["-v", f"{conf_file}:/etc/wp502-pip.conf:ro", "-e", "PIP_CONFIG_FILE=/etc/wp502-pip.conf"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    for path in local_paths([*env.values(), *(line.split("=", 1)[-1] for line in conf.splitlines())]):
        args += ["-v", f"{path}:{path}:ro"]
    return args


def build(force: bool) -> None:
    wanted = inputs_hash()
    have = docker("image", "inspect", "-f", f'{{{{index .Config.Labels "{LABEL}"}}}}', IMAGE, check=False)
    if not force and have.returncode == 0 and have.stdout.strip() == wanted:
        log(f"{IMAGE} is up to date ({wanted})")
        return
    ensure_base()
    log(f"building {IMAGE} ({wanted}): Debian's packages, then the venv")
    base = f"{IMAGE}-debian"
    docker("build", "-q", "-t", base, str(HERE), capture=False)
    name = f"wp502-compat-build-{os.getpid()}"
    try:
        with tempfile.TemporaryDirectory(prefix="wp502-compat-") as tmp:
            docker("run", "--name", name, *pip_docker_args(Path(tmp)),
                   "-v", f"{ROOT / 'requirements-compat.txt'}:/tmp/requirements-compat.txt:ro",
                   base, "sh", "-ec", VENV_SCRIPT, capture=False)
        docker("commit", "--change", f"LABEL {LABEL}={wanted}", "--change", f"ENV PATH={VENV}/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "--change", "CMD [\"bash\"]", name, IMAGE)
    finally:
        docker("rm", "-f", name, check=False)


def run() -> int:
    out = ROOT / "artifacts" / "compat"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wp502-compat-") as tmp:
        cmd = ["run", "--rm", *pip_docker_args(Path(tmp)),
               "-v", f"{ROOT}:/src:ro", "-v", f"{out}:/out", "-v", f"{CACHE_VOLUME}:/root/.ansible/test",
               "-e", f"CI={os.environ.get('CI', 'true')}", "-e", f"WP502_OWNER={os.getuid()}:{os.getgid()}",
               IMAGE, "bash", "/src/tests/compat/run.sh"]
        log("docker " + " ".join(shlex.quote(c) for c in cmd[:2]) + f" ... {IMAGE} tests/compat/run.sh")
        return docker(*cmd, check=False, capture=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="build the image even if its inputs are unchanged")
    args = parser.parse_args()
    if docker("info", check=False).returncode != 0:
        raise SystemExit("[compat] no Docker engine answers `docker info`: run `make docker`")
    build(args.rebuild)
    return run()


if __name__ == "__main__":
    sys.exit(main())
