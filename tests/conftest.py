"""Shared helpers for wp502's tests."""

import importlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# lab/labctl.py is a script, not a package: make it importable for the lab tests.
sys.path.insert(0, str(ROOT / "lab"))
# module_utils are plain modules: importable on their own and under the name Ansible gives them
# (ansible.module_utils.NAME), which is how modules and other module_utils import them.
sys.path.insert(0, str(ROOT / "plugins" / "module_utils"))
sys.path.insert(0, str(ROOT / "plugins" / "modules"))


class _ModuleUtilsAlias:
    """Resolve ansible.module_utils.wp502_* to plugins/module_utils/wp502_*.py."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        prefix = "ansible.module_utils.wp502_"
        if name.startswith(prefix) and (ROOT / "plugins" / "module_utils" / (name.rsplit(".", 1)[1] + ".py")).exists():
            short = name.rsplit(".", 1)[1]
            module = importlib.import_module(short)
            sys.modules[name] = module
            return importlib.util.spec_from_loader(name, loader=None, origin=module.__file__)
        return None


sys.meta_path.insert(0, _ModuleUtilsAlias())

# ansible-runner and the lab tests run ansible-playbook from the same environment as pytest.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
