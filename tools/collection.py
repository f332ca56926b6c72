#!/usr/bin/env python3
"""wp502 as the collection wp502.wp502: build the artifact, smoke-test it, run ansible-test on it.

    python tools/collection.py build    # artifacts/collection/wp502-wp502-VERSION.tar.gz
    python tools/collection.py smoke    # build, install into a temp dir, run a playbook outside the repo
    python tools/collection.py sanity   # build, install, ansible-test sanity + units in the installed copy
    python tools/collection.py sanity --test pep8 --test pylint   # only ansible-test sanity, with these arguments
    python tools/collection.py units tests/unit/test_fpm.py       # only ansible-test units, with these arguments

The checkout keeps its ansible.cfg layout (library=, module_utils=, roles_path=) for AWX and the
lab, where modules import their helpers as ``ansible.module_utils.wp502_*``. A collection's modules
must import them as ``ansible_collections.wp502.wp502.plugins.module_utils.wp502_*``, so the build
stages the repository's files (tracked and new, not ignored) in a temporary
ansible_collections/wp502/wp502 tree, rewrites those imports there, and runs
``ansible-galaxy collection build`` on the staged tree with galaxy.yml's build_ignore.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUT = ROOT / "artifacts" / "collection"
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
NS, NAME, VERSION = GALAXY["namespace"], GALAXY["name"], GALAXY["version"]
FQ = f"{NS}.{NAME}"
IMPORT = re.compile(r"\bansible\.module_utils\.(wp502_\w+)")
# ansible-test units and sanity need these in the installed copy, though the artifact leaves them out
# (bench/fixtures/lab-evidence: the lab hosts' evidence test_report_json.py feeds the report action;
# tests/sanity/ignore-X.Y.txt: the findings that do not apply, each with its reason).
TEST_PATHS = ("tests/unit", "tests/conftest.py", "tests/fixtures", "bench/fixtures/lab-evidence",
              "tests/sanity/ignore-2.19.txt", "tests/sanity/ignore-2.21.txt")
# Unit tests of code the collection does not hold, and what that code is: `make unit` runs them in the checkout.
# In the collection copy they would fail to import it, or test the checkout's copy (wp502cli, installed editable),
# not the collection: the copy leaves them out (ansible-test units and sanity do not see them).
NOT_COLLECTION_TESTS = {
    "tests/unit/test_alert_rules.py": "monitoring/ (Prometheus rules, Grafana dashboard)",
    "tests/unit/test_cli.py": "wp502cli/ (the wp502 command)",
    "tests/unit/test_eda.py": "extensions/eda/ (the EDA event sources)",
    "tests/unit/test_labctl.py": "lab/labctl.py",
    "tests/unit/test_report_merge.py": "wp502cli/ (wp502 report merge)",
}


def rewrite_imports(text: str) -> str:
    """``ansible.module_utils.wp502_x`` -> the collection's own module_utils path."""
    return IMPORT.sub(rf"ansible_collections.{NS}.{NAME}.plugins.module_utils.\1", text)


def plugin_names(kind: str) -> list[str]:
    """The names the filter (or lookup) plugins of the checkout provide."""
    if kind == "lookup":
        return sorted(p.stem for p in (ROOT / "plugins" / "lookup").glob("wp502_*.py"))
    names = []
    for source in sorted((ROOT / "plugins" / "filter").glob("wp502_*.py")):
        names += re.findall(r"[\"'](wp502_\w+)[\"']\s*:", source.read_text().split("def filters", 1)[-1])
    return sorted(set(names))


def rewrite_role(text: str) -> str:
    """Roles in a collection find the collection's modules by short name, but not its filters and lookups:
    those become FQCN (``| wp502_x`` -> ``| wp502.wp502.wp502_x``, ``lookup('wp502_y'`` likewise)."""
    filters = "|".join(plugin_names("filter"))
    lookups = "|".join(plugin_names("lookup"))
    text = re.sub(rf"\|(\s*)({filters})\b", rf"|\1{FQ}.\2", text)
    return re.sub(rf"\b(lookup|query|q)\((\s*)(['\"])({lookups})\3", rf"\1(\2\3{FQ}.\4\3", text)


def repo_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def stage(dest: Path, extra: tuple[str, ...] = ()) -> Path:
    """Copy the collection's content into dest/ansible_collections/NS/NAME with collection imports, plus the
    ``extra`` paths (but not NOT_COLLECTION_TESTS)."""
    coll = dest / "ansible_collections" / NS / NAME
    ignore = GALAXY.get("build_ignore", [])
    for rel in repo_files():
        keep = rel not in NOT_COLLECTION_TESTS and any(rel == p or rel.startswith(p + "/") for p in extra)
        if not keep and any(rel == p or rel.startswith(p + "/") or Path(rel).match(p) for p in ignore):
            continue
        target = coll / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".py") and (rel.startswith("plugins/") or rel.startswith("tests/")):
            target.write_text(rewrite_imports((ROOT / rel).read_text()))
        elif rel.startswith("roles/") and rel.endswith((".yml", ".yaml", ".j2")):
            target.write_text(rewrite_role((ROOT / rel).read_text()))
        else:
            shutil.copy2(ROOT / rel, target)
    return coll


def build() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wp502-stage-") as tmp:
        coll = stage(Path(tmp))
        subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(OUT),
                        str(coll)], check=True)
    artifact = OUT / f"{NS}-{NAME}-{VERSION}.tar.gz"
    check_artifact(artifact)
    print(f"built {artifact}")
    return artifact


def check_artifact(artifact: Path) -> None:
    """The artifact holds every module, module_util, plugin and role, with collection-style imports and
    FQCN filters and lookups in its roles, and none of the excluded junk."""
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
    wanted = [f"plugins/{kind}/{p.name}" for kind in ("modules", "module_utils", "action", "filter", "lookup")
              for p in (ROOT / "plugins" / kind).glob("wp502_*.py")]
    wanted += [f"roles/{r.name}/meta/argument_specs.yml" for r in (ROOT / "roles").iterdir()
               if (r / "meta" / "argument_specs.yml").exists()]
    wanted += ["meta/runtime.yml", "MANIFEST.json", "FILES.json", "README.md", "LICENSE"]
    missing = [w for w in wanted if w not in names]
    junk = sorted(n for n in names if re.match(
        r"(\.venv|\.git/|\.lab|\.bench|artifacts|tests/output|molecule|lab/|bench/|\.ruff_cache|collections)", n)
        or "__pycache__" in n or n.endswith(".pyc"))
    stale = []
    with tarfile.open(artifact) as tar:
        for member in tar.getmembers():
            if member.name.startswith("plugins/") and member.name.endswith(".py"):
                if IMPORT.search(tar.extractfile(member).read().decode()):
                    stale.append(member.name)
            elif member.name.startswith("roles/") and member.isfile():
                text = tar.extractfile(member).read().decode()
                if rewrite_role(text) != text:
                    stale.append(member.name)
    if missing or junk or stale:
        raise SystemExit(f"{artifact.name}: missing {missing}; should not contain {junk[:20]}; "
                         f"old-style imports or short filter/lookup names in {stale}")


def install(artifact: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--force", "-p", str(dest), str(artifact)],
                   check=True, stdout=subprocess.DEVNULL, env=clean_env(dest))
    return dest / "ansible_collections" / NS / NAME


def clean_env(collections: Path) -> dict[str, str]:
    """An environment with none of the checkout's ansible.cfg settings: only the installed collection."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    cfg = collections.parent / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    env.update(ANSIBLE_CONFIG=str(cfg), ANSIBLE_COLLECTIONS_PATH=str(collections),
               PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", ANSIBLE_NOCOLOR="1")
    return env


SMOKE = f"""---
- name: Smoke-test {FQ} from outside the repository
  hosts: localhost
  gather_facts: false
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  tasks:
    - name: Count the 502 signatures in a small nginx error log
      {FQ}.wp502_log_scan:
        path: "{{{{ playbook_dir }}}}/error.log"
        since: 3650d
      register: smoke_scan

    - name: Check that the connect() failure to PHP-FPM was counted
      ansible.builtin.assert:
        that:
          - smoke_scan is not changed
          - smoke_scan.signatures | dict2items | selectattr('value.count') | list | length > 0
        fail_msg: "{{{{ smoke_scan | to_json }}}}"

    - name: Ask the lookup by FQCN for culprits in an empty report directory
      ansible.builtin.assert:
        that:
          - (query('{FQ}.wp502_known_culprits', playbook_dir ~ '/reports', results={{}}) | length) == 1

    - name: Use the ladder filter by FQCN (the plan's steps for the sites failing now)
      ansible.builtin.assert:
        that:
          - "(plan | {FQ}.wp502_ladder_for(['b'])) == [{{'rung': 'plugins', 'sites': ['b'], 'step': 'plugins-1'}}]"
      vars:
        plan: [{{rung: plugins, sites: [a, b]}}]

- name: Write an empty fleet report with the collection's role (action plugin, filters by short name)
  hosts: localhost
  gather_facts: false
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
    wp502_report_dir: "{{{{ playbook_dir }}}}/reports"
  roles:
    - role: {FQ}.wp502_report
  post_tasks:
    - name: Find the summary the role wrote
      ansible.builtin.find:
        paths: "{{{{ playbook_dir }}}}/reports"
        patterns: summary.json
        recurse: true
      register: smoke_summary

    - name: Check that the summary was written
      ansible.builtin.assert:
        that:
          - smoke_summary.matched == 1
"""

ROLES_CHECK = f"""---
- name: Resolve every role and its modules, filters and lookups by FQCN
  hosts: localhost
  gather_facts: false
  roles:
    - role: {FQ}.wp502_evidence
    - role: {FQ}.wp502_emergency
    - role: {FQ}.wp502_report
"""

LOG = ("2026/11/23 21:42:05 [crit] 131#131: *19 connect() to unix:/run/php/php8.2-fpm.sock failed "
       "(2: No such file or directory) while connecting to upstream, client: 172.17.0.1, server: , "
       'request: "GET /d.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "127.0.0.1:18080"\n')


def smoke() -> int:
    artifact = build()
    with tempfile.TemporaryDirectory(prefix="wp502-smoke-") as tmp:
        tmp_path = Path(tmp)
        install(artifact, tmp_path / "collections")
        play = tmp_path / "play"
        play.mkdir()
        (play / "error.log").write_text(LOG)
        (play / "reports").mkdir()
        (play / "smoke.yml").write_text(SMOKE)
        (play / "roles.yml").write_text(ROLES_CHECK)
        env = clean_env(tmp_path / "collections")
        for args in (["ansible-doc", f"{FQ}.wp502_log_scan"],
                     ["ansible-playbook", "--syntax-check", "-i", "localhost,", "roles.yml"],
                     ["ansible-playbook", "-i", "localhost,", "smoke.yml"]):
            proc = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=play, env=env, capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                print(proc.stdout[-4000:], proc.stderr[-4000:])
                print(f"collection smoke: FAILED at {' '.join(args)}")
                return 1
            print(f"collection smoke: {' '.join(args)}: ok")
    return 0


def sanity(sanity_args: list[str] | None = None, units_args: list[str] | None = None) -> int:
    """ansible-test sanity (the tests that need no container) and units, in an installed copy under git.
    Either list of extra arguments set to None skips that part."""
    sys.path.insert(0, str(ROOT / "tests" / "sanity"))
    from validate_modules import ensure_get_pip  # noqa: PLC0415 - the same pip bootstrap stand-in

    ensure_get_pip()
    build()
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    with tempfile.TemporaryDirectory(prefix="wp502-sanity-") as tmp:
        # The installed artifact's content plus the unit tests (kept out of the artifact), under git.
        coll = stage(Path(tmp), extra=TEST_PATHS)
        if units_args is not None:
            for rel, code in NOT_COLLECTION_TESTS.items():
                print(f"ansible-test units: leaving out {rel}: it tests {code}, which is not in the collection")
        git = ["git", "-c", "user.email=ci@wp502.invalid", "-c", "user.name=wp502 ci"]
        subprocess.run([*git, "init", "-q"], cwd=coll, check=True)
        subprocess.run([*git, "add", "-A"], cwd=coll, check=True)
        subprocess.run([*git, "commit", "-qm", "snapshot"], cwd=coll, check=True)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=tmp, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
        env.pop("ANSIBLE_CONFIG", None)
        rc = 0
        runs = [[part, "--python", py, "--color", "no", "--requirements", *extra]
                for part, extra in (("sanity", sanity_args), ("units", units_args)) if extra is not None]
        for args in runs:
            start = time.monotonic()
            proc = subprocess.run([str(BIN / "ansible-test"), *args], cwd=coll, env=env, check=False)
            print(f"ansible-test {args[0]}: rc={proc.returncode} in {time.monotonic() - start:.0f}s")
            rc = rc or proc.returncode
    return rc


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "build"
    if command == "build":
        build()
        return 0
    if command == "smoke":
        return smoke()
    if command == "sanity":
        extra = sys.argv[2:]
        return sanity(extra, None if extra else [])
    if command == "units":
        return sanity(None, sys.argv[2:])
    raise SystemExit(f"usage: {sys.argv[0]} build|smoke|sanity [ANSIBLE-TEST SANITY ARGS]|units [ANSIBLE-TEST UNITS ARGS]")


if __name__ == "__main__":
    sys.exit(main())
