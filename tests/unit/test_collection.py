"""The collection artifact (wp502.wp502): built from the checkout, it holds every module, module_util,
plugin and role with collection-style imports, and none of the lab, tests, caches or outputs."""

import importlib.util
import tarfile
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "collection.py"
# ansible-test units runs these tests in the installed collection, which does not ship tools/.
pytestmark = pytest.mark.skipif(not TOOL.exists(), reason="tools/collection.py is not in this copy")


def _tool():
    spec = importlib.util.spec_from_file_location("wp502_collection_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rewrite_imports_points_at_the_collection():
    tool = _tool()
    assert tool.rewrite_imports("from ansible.module_utils.wp502_fpm import parse\n") == (
        "from ansible_collections.wp502.wp502.plugins.module_utils.wp502_fpm import parse\n")
    assert tool.rewrite_imports("from ansible.module_utils.basic import AnsibleModule\n") == (
        "from ansible.module_utils.basic import AnsibleModule\n")


def test_artifact_has_the_content_and_not_the_junk(tmp_path, monkeypatch):
    tool = _tool()
    monkeypatch.setattr(tool, "OUT", tmp_path)
    artifact = tool.build()  # build() runs check_artifact: every plugin and role in, no junk, no old imports
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
    assert "plugins/modules/wp502_log_scan.py" in names
    assert "roles/wp502_emergency/tasks/main.yml" in names
    assert not [n for n in names if n.startswith(("molecule", "lab/", "tests/lab", "bench", ".venv", "artifacts"))]
