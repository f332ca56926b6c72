"""wp502_config and wp502_bom through Ansible's module interface: validated, backed up, journaled,
put back byte for byte when the validator refuses, and nothing written in check mode."""

from __future__ import annotations

import wp502_bom
import wp502_config
import wp502_journal

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
    out = run_module(wp502_config, kind="fpm_pool", path=str(conf), pool="www", settings=RAISE, validate=["true"],
                     run_id="run1", step="pool_limits", state_dir=str(tmp_path / "state"), _ansible_diff=True)
    assert out["_rc"] == 0 and out["changed"]
    assert b"pm.max_children = 20\n" in conf.read_bytes() and b";pm.max_requests = 500\n" in conf.read_bytes()
    assert oct(conf.stat().st_mode & 0o777) == "0o640"
    assert {"key": "pm.max_children", "before": "5", "after": "20"} in out["changes"]
    assert "pm.max_children = 5" in out["diff"]["before"] and "pm.max_children = 20" in out["diff"]["after"]
    with open(out["backup"], "rb") as fh:
        assert fh.read() == POOL
    # a second run with the same settings changes nothing
    again = run_module(wp502_config, kind="fpm_pool", path=str(conf), pool="www", settings=RAISE, validate=["true"],
                       run_id="run1", state_dir=str(tmp_path / "state"))
    assert again["_rc"] == 0 and not again["changed"]
    journal.rollback(step="pool_limits")
    assert conf.read_bytes() == POOL


def test_a_pool_change_the_validator_refuses_never_stays(tmp_path, run_module):
    conf = tmp_path / "www.conf"
    conf.write_bytes(POOL)
    locked(tmp_path)
    validator = tmp_path / "php-fpm-t"
    validator.write_text("#!/bin/sh\necho 'ERROR: [pool www] pm.max_spare_servers(9) must not be greater than pm.max_children(5)' >&2\n"
                         "echo 'ERROR: FPM initialization failed' >&2\nexit 78\n")
    validator.chmod(0o755)
    out = run_module(wp502_config, kind="fpm_pool", path=str(conf), pool="www", settings={"pm.max_spare_servers": 9},
                     validate=[str(validator)], run_id="run1", state_dir=str(tmp_path / "state"))
    assert out["_rc"] == 1 and "rejected the change" in out["msg"] and "byte for byte" in out["msg"]
    assert "must not be greater than pm.max_children" in out["msg"]
    assert conf.read_bytes() == POOL


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
    assert {s["file"]: s["reason"].split(" ")[0] for s in out["skipped"]} == {
        "clean.php": "no", "../outside.php": "not", "missing.php": "[Errno"}
    assert not run_module(wp502_bom, path=str(root), files=files, run_id="run1", state_dir=str(tmp_path / "state"))["changed"]
    journal.rollback()
    assert plugin.read_bytes() == b"\xef\xbb\xbf\xef\xbb\xbf<?php\necho 1;\n"
