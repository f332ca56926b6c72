"""wp502_config and wp502_bom through Ansible's module interface: validated, backed up, journaled,
put back byte for byte when the validator refuses, and nothing written in check mode."""

from __future__ import annotations

import os
import subprocess

import pytest
import wp502_bom
import wp502_config
import wp502_journal
import wp502_run

POOL = b"[www]\nuser = www-data\nlisten = /run/php/php8.2-fpm.sock\npm = dynamic\npm.max_children = 5\n" \
       b"pm.start_servers = 2\npm.min_spare_servers = 1\npm.max_spare_servers = 3\n;pm.max_requests = 500\n"
RAISE = {"pm.max_children": 20, "pm.start_servers": 5, "pm.min_spare_servers": 2, "pm.max_spare_servers": 6}


def locked(tmp_path, run_id="run1"):
    journal = wp502_journal.Journal(run_id, str(tmp_path / "state"))
    journal.acquire()
    return journal


def test_a_pool_change_the_validator_accepts_is_written_and_backed_up(tmp_path, run_module):
    conf = tmp_path / "www.conf"
    conf.write_bytes(POOL)
    conf.chmod(0o640)
    journal = locked(tmp_path)
    out = run_module(wp502_config, kind="fpm_pool", path=str(conf), pool="www", settings=RAISE, validate=["true", "%s"],
                     run_id="run1", step="pool_limits", state_dir=str(tmp_path / "state"), _ansible_diff=True)
    assert out["_rc"] == 0 and out["changed"]
    assert b"pm.max_children = 20\n" in conf.read_bytes() and b";pm.max_requests = 500\n" in conf.read_bytes()
    assert oct(conf.stat().st_mode & 0o777) == "0o640"
    assert {"key": "pm.max_children", "before": "5", "after": "20"} in out["changes"]
    assert "pm.max_children = 5" in out["diff"]["before"] and "pm.max_children = 20" in out["diff"]["after"]
    with open(out["backup"], "rb") as fh:
        assert fh.read() == POOL
    # a second run with the same settings changes nothing
    again = run_module(wp502_config, kind="fpm_pool", path=str(conf), pool="www", settings=RAISE, validate=["true", "%s"],
                       run_id="run1", state_dir=str(tmp_path / "state"))
    assert again["_rc"] == 0 and not again["changed"]
    journal.rollback(step="pool_limits")
    assert conf.read_bytes() == POOL


def test_a_pool_change_the_validator_refuses_never_goes_live(tmp_path, run_module):
    conf = tmp_path / "www.conf"
    conf.write_bytes(POOL)
    before = conf.stat()
    locked(tmp_path)
    validator = tmp_path / "php-fpm-t"
    validator.write_text("#!/bin/sh\necho 'ERROR: [pool www] pm.max_spare_servers(9) must not be greater than pm.max_children(5)' >&2\n"
                         "echo 'ERROR: FPM initialization failed' >&2\nexit 78\n")
    validator.chmod(0o755)
    out = run_module(wp502_config, kind="fpm_pool", path=str(conf), pool="www", settings={"pm.max_spare_servers": 9},
                     validate=[str(validator), "-t", "-y", "%s"], run_id="run1", state_dir=str(tmp_path / "state"))
    assert out["_rc"] == 1 and not out["changed"] and "rejected the change" in out["msg"] and "live file was not touched" in out["msg"]
    assert "must not be greater than pm.max_children" in out["msg"]
    after = conf.stat()
    assert conf.read_bytes() == POOL and (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["php-fpm-t", "state", "www.conf"]  # no candidate left
    assert wp502_journal.Journal("run1", str(tmp_path / "state")).entries() == []  # nothing changed, nothing journaled


def _namespaces_work():
    try:
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "true"],
                              capture_output=True, check=False).returncode == 0
    except OSError:
        return False


needs_namespaces = pytest.mark.skipif(not _namespaces_work(), reason="needs root and unshare(1) (private mount namespaces)")
SITE = (b"server {\n    location ~ \\.php$ {\n        fastcgi_pass unix:/run/php/php8.2-fpm.sock;\n"
        b"        fastcgi_read_timeout 15s;\n    }\n}\n")


def debian_site(tmp_path):
    """sites-enabled/wordpress -> ../sites-available/wordpress, as Debian lays it out."""
    (tmp_path / "sites-available").mkdir()
    (tmp_path / "sites-enabled").mkdir()
    real = tmp_path / "sites-available" / "wordpress"
    real.write_bytes(SITE)
    real.chmod(0o640)
    link = tmp_path / "sites-enabled" / "wordpress"
    link.symlink_to("../sites-available/wordpress")
    return link, real


def seeing_validator(tmp_path, real, rc):
    """A validator that records what it reads at the real file's path (the candidate, in its namespace)."""
    script = tmp_path / "validator"
    seen = tmp_path / "seen"
    script.write_text(f"#!/bin/sh\ncat '{real}' > '{seen}'\necho 'checked'\nexit {rc}\n")
    script.chmod(0o755)
    return [str(script), "-t"]


@needs_namespaces
def test_a_symlinked_site_is_edited_through_the_link_validated_in_place_and_rolled_back(tmp_path, run_module):
    link, real = debian_site(tmp_path)
    journal = locked(tmp_path)
    out = run_module(wp502_config, kind="nginx", path=str(link), settings={"fastcgi_read_timeout": "120s"},
                     validate=seeing_validator(tmp_path, real, 0), run_id="run1", step="frontend",
                     state_dir=str(tmp_path / "state"), _ansible_diff=True)
    assert out["_rc"] == 0 and out["changed"], out
    edited = SITE.replace(b"15s", b"120s")
    assert (tmp_path / "seen").read_bytes() == edited  # the validator saw the candidate at the real path
    assert os.path.islink(link) and os.readlink(link) == "../sites-available/wordpress"
    assert real.read_bytes() == edited and oct(real.stat().st_mode & 0o777) == "0o640"
    assert out["real_path"] == str(real) and out["diff"]["before_header"] == str(real)
    assert sorted(os.listdir(real.parent)) == ["wordpress"]  # no candidate left beside it
    entry = journal.entries()[-1]
    assert entry["meta"]["type"] == "symlink" and entry["meta"]["link"] == "../sites-available/wordpress"
    assert entry["meta"]["real"] == str(real) and entry["meta"]["mode"] == 0o640
    journal.rollback(step="frontend")
    assert os.path.islink(link) and os.readlink(link) == "../sites-available/wordpress" and real.read_bytes() == SITE
    assert oct(real.stat().st_mode & 0o777) == "0o640"


@needs_namespaces
def test_a_candidate_the_validator_refuses_is_never_seen_outside_its_namespace(tmp_path, run_module):
    link, real = debian_site(tmp_path)
    before = real.stat()
    locked(tmp_path)
    out = run_module(wp502_config, kind="nginx", path=str(link), settings={"fastcgi_read_timeout": "120s"},
                     validate=seeing_validator(tmp_path, real, 1), run_id="run1", state_dir=str(tmp_path / "state"))
    assert out["_rc"] == 1 and "live file was not touched" in out["msg"] and "checked" in out["msg"]
    assert b"120s" in (tmp_path / "seen").read_bytes()  # the validator did see the candidate ...
    after = real.stat()  # ... and the live file never changed
    assert real.read_bytes() == SITE and (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert os.path.islink(link) and sorted(os.listdir(real.parent)) == ["wordpress"]


def test_without_a_way_to_validate_the_candidate_the_change_is_refused(tmp_path, run_module, monkeypatch):
    link, real = debian_site(tmp_path)
    locked(tmp_path)
    real_lookup = wp502_config.AnsibleModule.get_bin_path
    monkeypatch.setattr(wp502_config.AnsibleModule, "get_bin_path",
                        lambda self, name, *a, **k: None if name == "unshare" else real_lookup(self, name, *a, **k))
    out = run_module(wp502_config, kind="nginx", path=str(link), settings={"fastcgi_read_timeout": "120s"},
                     validate=["nginx", "-t"], run_id="run1", state_dir=str(tmp_path / "state"))
    assert out["_rc"] == 1 and "refusing to change" in out["msg"] and "unshare not found" in out["msg"]
    assert "%s" in out["msg"]  # says what else would work
    assert real.read_bytes() == SITE and os.path.islink(link) and sorted(os.listdir(real.parent)) == ["wordpress"]


def test_a_validator_with_a_placeholder_gets_the_candidate(tmp_path, run_module):
    link, real = debian_site(tmp_path)
    locked(tmp_path)
    out = run_module(wp502_config, kind="nginx", path=str(link), settings={"fastcgi_read_timeout": "120s"},
                     validate=["grep", "-q", "fastcgi_read_timeout 120s;", "%s"], run_id="run1",
                     state_dir=str(tmp_path / "state"))
    assert out["_rc"] == 0 and out["changed"] and b"120s" in real.read_bytes() and os.path.islink(link)


def test_a_validator_that_hangs_is_a_refusal_naming_it(tmp_path, run_module, monkeypatch):
    link, real = debian_site(tmp_path)
    locked(tmp_path)
    monkeypatch.setattr(wp502_config, "VALIDATE_TIMEOUT", 1)
    out = run_module(wp502_config, kind="nginx", path=str(link), settings={"fastcgi_read_timeout": "120s"},
                     validate=["sh", "-c", "sleep 30", "%s"], run_id="run1", state_dir=str(tmp_path / "state"))
    assert out["_rc"] == 1 and "`sh -c sleep 30 " in out["msg"] and "did not finish within 1 s" in out["msg"]
    assert real.read_bytes() == SITE and os.path.islink(link) and sorted(os.listdir(real.parent)) == ["wordpress"]


def test_check_mode_shows_the_diff_and_writes_nothing(tmp_path, run_module):
    conf = tmp_path / "wordpress"
    text = (b"server {\n    location ~ \\.php$ {\n        fastcgi_pass unix:/run/php/php8.2-fpm.sock;\n"
            b"        fastcgi_read_timeout 15s;\n    }\n}\n")
    conf.write_bytes(text)
    out = run_module(wp502_config, kind="nginx", path=str(conf), settings={"fastcgi_read_timeout": "120s"},
                     validate=["false"], run_id="run1", state_dir=str(tmp_path / "state"),
                     _ansible_check_mode=True, _ansible_diff=True)
    assert out["_rc"] == 0 and out["changed"] and "fastcgi_read_timeout 120s;" in out["diff"]["after"]
    assert conf.read_bytes() == text and not (tmp_path / "state").exists()


def test_changes_need_the_host_and_sane_settings(tmp_path, run_module):
    conf = tmp_path / "www.conf"
    conf.write_bytes(POOL)
    out = run_module(wp502_config, kind="fpm_pool", path=str(conf), pool="www", settings=RAISE, run_id="run1",
                     state_dir=str(tmp_path / "state"))
    assert out["_rc"] == 1 and "does not hold this host" in out["msg"] and conf.read_bytes() == POOL
    bad = run_module(wp502_config, kind="fpm_pool", path=str(conf), pool="www", settings={"pm.max_children": "5\nuser = root"},
                     run_id="run1")
    assert bad["_rc"] == 1 and "single-line values" in bad["msg"]
    missing = run_module(wp502_config, kind="fpm_pool", path=str(tmp_path / "nope.conf"), pool="www", settings=RAISE, run_id="run1")
    assert missing["_rc"] == 1 and "cannot read" in missing["msg"]
    nopool = run_module(wp502_config, kind="fpm_pool", path=str(conf), pool="shop", settings=RAISE, run_id="run1")
    assert nopool["_rc"] == 1 and "shop" in nopool["msg"]


def test_boms_are_stripped_with_backups_and_odd_paths_refused(tmp_path, run_module):
    root = tmp_path / "wordpress"
    plugin = root / "wp-content" / "plugins" / "shop" / "shop.php"
    plugin.parent.mkdir(parents=True)
    plugin.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbf<?php\necho 1;\n")
    (root / "clean.php").write_bytes(b"<?php\n")
    journal = locked(tmp_path)
    files = ["wp-content/plugins/shop/shop.php", "clean.php", "../outside.php", "missing.php"]
    plan = run_module(wp502_bom, path=str(root), files=files, run_id="run1", state_dir=str(tmp_path / "state"),
                      _ansible_check_mode=True, _ansible_diff=True)
    assert plan["changed"] and plan["stripped"] == [files[0]] and plugin.read_bytes().startswith(b"\xef\xbb\xbf")
    assert plan["diff"][0]["before"].startswith("<U+FEFF><U+FEFF><?php")
    out = run_module(wp502_bom, path=str(root), files=files, run_id="run1", state_dir=str(tmp_path / "state"))
    assert out["_rc"] == 0 and out["stripped"] == [files[0]] and plugin.read_bytes() == b"<?php\necho 1;\n"
    assert {s["file"]: s["reason"].split(" ")[0] for s in out["not_stripped"]} == {
        "clean.php": "no", "../outside.php": "not", "missing.php": "[Errno"}
    assert "skipped" not in out  # Ansible's own key: a list there made the task look skipped
    assert not run_module(wp502_bom, path=str(root), files=files, run_id="run1", state_dir=str(tmp_path / "state"))["changed"]
    journal.rollback()
    assert plugin.read_bytes() == b"\xef\xbb\xbf\xef\xbb\xbf<?php\necho 1;\n"


def test_a_symlinked_plugin_file_stays_a_symlink(tmp_path, run_module):
    root = tmp_path / "wordpress"
    shared = tmp_path / "shared" / "shop.php"
    shared.parent.mkdir()
    shared.write_bytes(b"\xef\xbb\xbf<?php\necho 1;\n")
    shared.chmod(0o640)
    plugin = root / "wp-content" / "plugins" / "shop" / "shop.php"
    plugin.parent.mkdir(parents=True)
    plugin.symlink_to(shared)
    journal = locked(tmp_path)
    out = run_module(wp502_bom, path=str(root), files=["wp-content/plugins/shop/shop.php", "../shared/shop.php"],
                     run_id="run1", state_dir=str(tmp_path / "state"), _ansible_diff=True)
    assert out["_rc"] == 0 and out["stripped"] == ["wp-content/plugins/shop/shop.php"]
    assert out["not_stripped"][0]["file"] == "../shared/shop.php"  # named outside the root: refused
    assert out["diff"][0]["before_header"] == str(shared)
    assert os.path.islink(plugin) and os.readlink(plugin) == str(shared)
    assert shared.read_bytes() == b"<?php\necho 1;\n" and oct(shared.stat().st_mode & 0o777) == "0o640"
    assert sorted(os.listdir(shared.parent)) == ["shop.php"]
    journal.rollback()
    assert os.path.islink(plugin) and shared.read_bytes() == b"\xef\xbb\xbf<?php\necho 1;\n"


def test_a_rollback_of_stripped_boms_names_the_php_fpm_that_runs_them(tmp_path, run_module):
    """OPcache may keep running the stripped copy after the file is back: the journal keeps the units the
    emergency named, and wp502_run's rollback returns them in reload (pool and vhost files name their own)."""
    root = tmp_path / "wordpress"
    plugin = root / "wp-content" / "plugins" / "shop" / "shop.php"
    plugin.parent.mkdir(parents=True)
    plugin.write_bytes(b"\xef\xbb\xbf<?php\n")
    locked(tmp_path)
    state = str(tmp_path / "state")
    out = run_module(wp502_bom, path=str(root), files=["wp-content/plugins/shop/shop.php"], run_id="run1",
                     state_dir=state, step="bom-3", services=["php8.2-fpm", "php8.4-fpm"])
    assert out["_rc"] == 0 and plugin.read_bytes() == b"<?php\n"
    back = run_module(wp502_run, state="rolled_back", run_id="run1", step="bom-3", state_dir=state)
    assert back["_rc"] == 0 and back["reload"] == ["php8.2-fpm", "php8.4-fpm"]
    assert plugin.read_bytes() == b"\xef\xbb\xbf<?php\n"
    plain = root / "plain.php"
    plain.write_bytes(b"\xef\xbb\xbf<?php\n")
    run_module(wp502_bom, path=str(root), files=["plain.php"], run_id="run1", state_dir=state, step="bom-4")
    assert run_module(wp502_run, state="rolled_back", run_id="run1", step="bom-4", state_dir=state)["reload"] == []
