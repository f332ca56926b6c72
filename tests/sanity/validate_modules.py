#!/usr/bin/env python3
"""Run `ansible-test sanity --test validate-modules` on wp502's modules, and render each with ansible-doc.

ansible-test wants the code inside an ansible_collections/NAMESPACE/NAME tree under git, with
collection-style imports of module_utils, so this copies plugins/ into a temporary collection
(wp502.wp502), rewrites the imports, and runs the test there. ansible-test bootstraps pip in its
own virtualenv from a script it downloads; where that download cannot be reached, a stand-in that
uses the standard library's ensurepip is put where ansible-test looks for its cached copy.

The ansible-core tested is the one of the interpreter running this script (.venv's, 2.19, by
default). For another, run the script with that interpreter, or name its ansible-test:

    WP502_ANSIBLE_TEST=/tmp/venv221/bin/ansible-test .venv/bin/python tests/sanity/validate_modules.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

GET_PIP_STANDIN = '''"""Stand-in for get-pip.py: ensurepip, then pip installs what ansible-test asked for."""
import ensurepip
import os
import subprocess
import sys

# ensurepip drops PIP_* variables and points PIP_CONFIG_FILE at /dev/null in this process:
# the real install runs in a new process with the environment as it was.
environ = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args, env=environ))
'''


def pip_version() -> str:
    from ansible_test._internal import python_requirements as pr

    source = Path(pr.__file__).read_text()
    match = re.search(r"pip='([\d.]+)'", source)
    if not match:
        raise SystemExit("cannot find the pip version ansible-test bootstraps")
    return match.group(1)


def ensure_get_pip() -> None:
    cache = Path.home() / ".ansible" / "test" / "cache" / f"get_pip_{pip_version().replace('.', '_')}.py"
    if not cache.exists() or "wp502" in cache.read_text()[:200] or "Stand-in" in cache.read_text()[:200]:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(GET_PIP_STANDIN)


def build_collection(tmp: Path) -> Path:
    coll = tmp / "ansible_collections" / "wp502" / "wp502"
    shutil.copytree(ROOT / "plugins", coll / "plugins", ignore=shutil.ignore_patterns("__pycache__", ".gitkeep"))
    for source in (coll / "plugins").glob("*/*.py"):
        text = source.read_text()
        text = re.sub(r"^try:\n    from ansible\.module_utils\.(wp502_\w+) import (.+)\nexcept ImportError:.*\n    from .+\n",
                      r"from ansible.module_utils.\1 import \2\n", text, flags=re.M)
        text = re.sub(r"^from ansible\.module_utils\.(wp502_\w+) import ",
                      r"from ansible_collections.wp502.wp502.plugins.module_utils.\1 import ", text, flags=re.M)
        source.write_text(text)
    (coll / "galaxy.yml").write_text(
        "namespace: wp502\nname: wp502\nversion: 0.1.0\nreadme: README.md\nauthors: [wp502]\n"
        "description: wp502 modules\nlicense: [MIT]\n")
    (coll / "README.md").write_text("wp502 modules (temporary copy for ansible-test)\n")
    # wp502 is MIT-licensed: the GPLv3 header check concerns only content under the GPL.
    ignores = coll / "tests" / "sanity"
    ignores.mkdir(parents=True)
    version = ".".join(__import__("ansible.release", fromlist=["x"]).__version__.split(".")[:2])
    (ignores / f"ignore-{version}.txt").write_text("".join(
        f"plugins/{m.parent.name}/{m.name} validate-modules:missing-gplv3-license # MIT, not GPL\n"
        for kind in ("modules", "lookup") for m in sorted((coll / "plugins" / kind).glob("*.py"))))
    (coll / "meta").mkdir()
    (coll / "meta" / "runtime.yml").write_text("---\nrequires_ansible: '>=2.19.0'\n")
    git = ["git", "-c", "user.email=ci@wp502.invalid", "-c", "user.name=wp502 ci"]
    subprocess.run([*git, "init", "-q"], cwd=coll, check=True)
    subprocess.run([*git, "add", "-A"], cwd=coll, check=True)
    subprocess.run([*git, "commit", "-qm", "snapshot"], cwd=coll, check=True)
    return coll


def use_ansible_test(ansible_test: str) -> None:
    """Run again under the interpreter beside ``ansible_test`` (its venv's python), unless this is it."""
    bin_dir = Path(ansible_test).absolute().parent
    python = bin_dir / "python"
    if not (bin_dir / "ansible-test").is_file() or not python.exists():
        raise SystemExit(f"WP502_ANSIBLE_TEST={ansible_test}: no ansible-test with a python beside it")
    if bin_dir != BIN:
        raise SystemExit(subprocess.run([str(python), str(Path(__file__).resolve()), *sys.argv[1:]], check=False).returncode)


def docs_parse() -> list[str]:
    """Every plugin's DOCUMENTATION, EXAMPLES and RETURN (action and filter plugins too, which
    validate-modules does not read) must be YAML: the problems, as lines."""
    import ast

    import yaml

    problems = []
    for source in sorted((ROOT / "plugins").glob("*/*.py")):
        for node in ast.parse(source.read_text()).body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN")
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                try:
                    yaml.safe_load(node.value.value)
                except yaml.YAMLError as exc:
                    problems.append(f"{source.relative_to(ROOT)}: {node.targets[0].id} is not YAML: {exc}")
    return problems


def main() -> int:
    problems = docs_parse()
    if problems:
        print("\n".join(problems))
        return 1
    if os.environ.get("WP502_ANSIBLE_TEST"):
        use_ansible_test(os.environ["WP502_ANSIBLE_TEST"])
    from ansible.release import __version__

    print(f"validate-modules with ansible-core {__version__} on Python {sys.version.split()[0]} ({BIN})")
    ensure_get_pip()
    with tempfile.TemporaryDirectory(prefix="wp502-sanity-") as tmp:
        coll = build_collection(Path(tmp))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=tmp, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        proc = subprocess.run([str(BIN / "ansible-test"), "sanity", "--test", "validate-modules", "--python", py,
                               "--color", "no"], cwd=coll, env=env, check=False)
        if proc.returncode != 0:
            return proc.returncode
        for module in sorted((coll / "plugins" / "modules").glob("*.py")):
            name = f"wp502.wp502.{module.stem}"
            doc = subprocess.run([str(BIN / "ansible-doc"), name], env=env, capture_output=True, text=True, check=False)
            if doc.returncode != 0 or "OPTIONS" not in doc.stdout or doc.stderr.strip():
                print(f"ansible-doc {name} failed:\n{doc.stdout[-2000:]}\n{doc.stderr[-2000:]}")
                return 1
            print(f"ansible-doc {name}: rendered ({len(doc.stdout.splitlines())} lines)")
        for plugin in sorted((coll / "plugins" / "lookup").glob("*.py")):
            name = f"wp502.wp502.{plugin.stem}"
            doc = subprocess.run([str(BIN / "ansible-doc"), "-t", "lookup", name], env=env, capture_output=True, text=True,
                                 check=False)
            if doc.returncode != 0 or "OPTIONS" not in doc.stdout or doc.stderr.strip():
                print(f"ansible-doc -t lookup {name} failed:\n{doc.stdout[-2000:]}\n{doc.stderr[-2000:]}")
                return 1
            print(f"ansible-doc -t lookup {name}: rendered ({len(doc.stdout.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
