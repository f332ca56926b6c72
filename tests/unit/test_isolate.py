"""The plugins rung without Ansible: plugin lists byte for byte, bisection on a real directory tree,
the guard, and rollback from a journal left by a run killed at any probe."""

from __future__ import annotations

import binascii
import math
import os

import pytest
import wp502_isolate
import wp502_journal
import wp502_wpdb
from wp502_isolate import Isolation, units_of
from wp502_wpdb import DBError, WordPressDB, php_array_dump, php_array_items, plugin_files, without


def ser(values):
    """active_plugins as WordPress serializes a list of plugin files."""
    body = "".join(f'i:{n};s:{len(v.encode())}:"{v}";' for n, v in enumerate(values))
    return f"a:{len(values)}:{{{body}}}".encode()


# ---- serialized lists -----------------------------------------------------------------------------
REAL = b'a:2:{i:0;s:19:"akismet/akismet.php";i:1;s:27:"xrds-simple/xrds-simple.php";}'
SITEWIDE = b'a:2:{s:19:"akismet/akismet.php";i:1700000000;s:9:"hello.php";i:1700000001;}'


def test_lists_read_as_wordpress_wrote_them():
    assert plugin_files("active_plugins", REAL) == ["akismet/akismet.php", "xrds-simple/xrds-simple.php"]
    assert plugin_files("active_sitewide_plugins", SITEWIDE) == ["akismet/akismet.php", "hello.php"]
    # a list WordPress left with a gap after deactivating one plugin
    gap = b'a:2:{i:0;s:9:"hello.php";i:2;s:19:"akismet/akismet.php";}'
    assert plugin_files("active_plugins", gap) == ["hello.php", "akismet/akismet.php"]
    # byte lengths, not characters
    utf8 = ser(["caf\u00e9/caf\u00e9.php"])
    assert plugin_files("active_plugins", utf8) == ["caf\u00e9/caf\u00e9.php"]
    assert php_array_dump(php_array_items(REAL)) == REAL


def test_taking_a_culprit_out_keeps_everything_else():
    three = ser(["akismet/akismet.php", "slow/slow.php", "hello.php"])
    assert without("active_plugins", three, ["slow/slow.php"]) == ser(["akismet/akismet.php", "hello.php"])
    assert without("active_plugins", three, ["absent.php"]) is three  # untouched, same bytes
    assert without("active_sitewide_plugins", SITEWIDE, ["hello.php"]) == b'a:1:{s:19:"akismet/akismet.php";i:1700000000;}'
    assert without("active_plugins", b"a:0:{}", ["x.php"]) == b"a:0:{}"


@pytest.mark.parametrize(("raw", "message"), [
    (b'a:3:{i:0;s:9:"hello.php";}', "says 3 entries"),
    (b'a:1:{i:0;s:12:"hello.php";}', "does not end where its length says"),
    (b'a:1:{i:0;s:9:"hello.php";', "cut short"),
    (b'a:1:{i:0;a:0:{}}', "nested"),
    (b"s:5:\"hello\";", "not a serialized PHP array"),
    (b'a:0:{}trailing', "bytes after"),
])
def test_lists_wordpress_would_not_read_are_refused(raw, message):
    with pytest.raises(ValueError, match=message):
        php_array_items(raw)


# ---- the database, through a recorded client ---------------------------------------------------------
class FakeClient:
    """Stands in for the mysql client binary: records argv and env, answers from a dict by hex."""

    def __init__(self, values, fail=None):
        self.values = values
        self.calls = []
        self.fail = fail

    def __call__(self, argv, env=None, timeout=None):
        self.calls.append((argv, env))
        sql = argv[-1]
        if self.fail:
            return 1, "", self.fail
        if sql.startswith("SELECT HEX"):
            name = sql.split("'")[1]
            value = self.values.get(name)
            return 0, ("" if value is None else binascii.hexlify(value).decode().upper() + "\n"), ""
        if sql.startswith("UPDATE"):
            name = sql.split("= '")[1].split("'")[0]
            hexed = sql.split("UNHEX('")[1].split("')")[0] if "UNHEX" in sql else ""
            self.values[name] = binascii.unhexlify(hexed)
            return 0, "", ""
        return 1, "", "unexpected " + sql


CFG = {"db_name": "wordpress", "db_user": "wp", "db_host": "localhost:/run/mysqld/mysqld.sock", "table_prefix": "wp_"}


def test_values_travel_as_hex_and_the_password_never_in_argv():
    client = FakeClient({"active_plugins": REAL})
    db = WordPressDB(client, "/usr/bin/mariadb", dict(CFG), "s3cr'et")
    assert db.get("active_plugins") == REAL
    db.set("active_plugins", ser(["hello.php"]))
    assert client.values["active_plugins"] == ser(["hello.php"])
    argv, env = client.calls[1]
    assert "wp_options" in argv[-1] and "UNHEX('" in argv[-1] and "hello.php" not in argv[-1]
    assert "--socket=/run/mysqld/mysqld.sock" in argv and all("s3cr" not in a for a in argv)
    assert env == {"MYSQL_PWD": "s3cr'et"}
    assert "wp_sitemeta" in WordPressDB(client, "mysql", dict(CFG), None)._where("active_sitewide_plugins")[0]


def test_database_errors_are_clear_and_hide_the_password():
    db = WordPressDB(FakeClient({}, fail="Access denied for user 'wp' using password hunter2"), "mysql", dict(CFG), "hunter2")
    with pytest.raises(DBError, match=r"Access denied.*\*\*\*\*\*\*\*\*"):
        db.get("active_plugins")
    with pytest.raises(ValueError, match="unusual table prefix"):
        WordPressDB(FakeClient({}), "mysql", dict(CFG, table_prefix="wp_; DROP"), None)


# ---- the rung on a real directory tree ---------------------------------------------------------------
PLUGINS = ["akismet/akismet.php", "contact/contact.php", "hello.php", "seo/seo.php", "cache/cache.php",
           "forms/forms.php", "shop/shop.php", "slow/slow.php"]


class DB:
    def __init__(self, lists):
        self.lists = dict(lists)

    def get(self, name):
        return self.lists.get(name)

    def set(self, name, raw):
        self.lists[name] = raw


def make_site(tmp_path, plugins=PLUGINS, inactive=("inactive/inactive.php",)):
    plugin_dir = tmp_path / "wp-content" / "plugins"
    for f in list(plugins) + list(inactive):
        path = plugin_dir / f
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"<?php /* Plugin Name: " + f.encode() + b" */\n")
    return plugin_dir


def tree(root):
    """Every file (with its bytes) and every directory (None) under root."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.relpath(os.path.join(dirpath, name), root) + "/"] = None
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = fh.read()
    return out


def rung(tmp_path, culprits, plugins=PLUGINS, on_probe=None, reset=None):
    plugin_dir = make_site(tmp_path, plugins)
    journal = wp502_journal.Journal("run1", str(tmp_path / "state"))
    journal.acquire()
    db = DB({"active_plugins": ser(plugins)})
    probes = []

    def probe():
        present = [u for u in culprits if (plugin_dir / u).exists()]
        probes.append(present)
        if on_probe:
            on_probe(len(probes), db)
        return not present

    iso = Isolation(journal, str(plugin_dir), str(plugin_dir) + "-off", str(tmp_path / "wp-content" / "mu-plugins"), db,
                    probe, reset or (lambda: None), where={"config": "/srv/wp-config.php"})
    return iso, db, journal, plugin_dir, probes


@pytest.mark.parametrize("culprit", ["akismet", "hello.php", "cache", "slow"])
def test_one_culprit_is_found_within_the_budget_and_everything_else_is_back(tmp_path, culprit):
    iso, db, journal, _dir, _probes = rung(tmp_path, [culprit])
    before = tree(tmp_path / "wp-content")
    result = iso.run("run1")
    assert result["healed"] and result["culprits"] == [culprit]
    # one probe with everything out, then bisection: ceil(log2 8) + 1
    assert result["probes"] <= 1 + math.ceil(math.log2(len(PLUGINS))) + 1
    assert result["still_out"] == [culprit]
    files = [f for f in PLUGINS if units_of([f])[0]["unit"] != culprit]
    assert db.lists["active_plugins"] == ser(files)
    assert result["lists"]["active_plugins"]["after"] == files
    now = tree(tmp_path / "wp-content")
    moved = {k: v for k, v in before.items() if k.startswith("plugins/" + culprit)}
    assert {k: v for k, v in now.items() if not k.startswith("plugins-off/")} == {k: v for k, v in before.items() if k not in moved}
    assert not (tmp_path / "wp-content" / "mu-plugins" / wp502_isolate.GUARD_NAME).exists()
    # and rollback puts the culprit and the exact list back
    restored = {}
    journal.rollback(restore_value=lambda name, before, where: restored.update({name: (before, where)}))
    assert tree(tmp_path / "wp-content") == before
    assert binascii.unhexlify(restored["active_plugins"][0]) == ser(PLUGINS)
    assert restored["active_plugins"][1] == {"config": "/srv/wp-config.php", "list": "active_plugins", "encoding": "hex"}


def test_two_culprits_are_both_left_out(tmp_path):
    iso, db, _journal, _dir, _probes = rung(tmp_path, ["contact", "shop"])
    result = iso.run("run1")
    assert result["healed"] and sorted(result["culprits"]) == ["contact", "shop"]
    assert plugin_files("active_plugins", db.lists["active_plugins"]) == [
        f for f in PLUGINS if not f.startswith(("contact/", "shop/"))]


def test_when_plugins_are_not_the_cause_everything_goes_back(tmp_path):
    iso, db, _journal, _dir, probes = rung(tmp_path, [])
    iso.probe = lambda: probes.append("x") and False
    before = tree(tmp_path / "wp-content")
    result = iso.run("run1")
    assert not result["healed"] and "plugins are not the cause" in result["note"] and result["probes"] == 1
    assert tree(tmp_path / "wp-content") == before and db.lists["active_plugins"] == ser(PLUGINS)


def test_workers_are_reset_after_each_failed_probe(tmp_path):
    resets = []
    iso, _db, _journal, _dir, probes = rung(tmp_path, ["slow"], reset=lambda: resets.append(len(probes)))
    result = iso.run("run1")
    failed = sum(1 for t in result["trail"] if not t["healthy"])
    # before the first probe (the site was broken) and after every failed one
    assert len(resets) == 1 + failed


def test_the_plugins_screen_meanwhile_cannot_lose_the_list(tmp_path):
    def someone_opens_the_plugins_screen(n, db):
        if n == 2:  # validate_active_plugins() would drop every plugin whose file is missing
            db.lists["active_plugins"] = ser(["slow/slow.php"])

    iso, db, _journal, _dir, _probes = rung(tmp_path, ["slow"], on_probe=someone_opens_the_plugins_screen)
    guard = tmp_path / "wp-content" / "mu-plugins" / wp502_isolate.GUARD_NAME
    seen = []
    iso.probe, probe = (lambda: seen.append(guard.read_text()) or probe()), iso.probe
    result = iso.run("run1")
    assert "pre_update_option_active_plugins" in seen[0] and "return $old" in seen[0]
    assert db.lists["active_plugins"] == ser([f for f in PLUGINS if f != "slow/slow.php"])
    assert any("changed while plugins were out" in w for w in result["cautions"])


@pytest.mark.parametrize("killed_at", [1, 2, 3, 4])
def test_a_run_killed_at_any_probe_rolls_back_losing_nothing(tmp_path, killed_at):
    class Killed(BaseException):
        pass

    def kill(n, _db):
        if n == killed_at:
            raise Killed

    iso, _db, journal, _dir, _probes = rung(tmp_path, ["forms"], on_probe=kill)
    before = tree(tmp_path / "wp-content")
    with pytest.raises(Killed):
        iso.run("run1")
    assert tree(tmp_path / "wp-content") != before  # plugins were out when it died
    restored = {}
    undone = journal.rollback(restore_value=lambda name, b, where: restored.update({name: binascii.unhexlify(b)}))
    assert undone and tree(tmp_path / "wp-content") == before
    assert restored == {"active_plugins": ser(PLUGINS)}
    assert journal.rollback(restore_value=lambda *a: None) == []  # a second rollback has nothing left to do


def test_a_budget_that_runs_out_leaves_every_plugin_out_and_the_list_alone(tmp_path):
    iso, db, _journal, _dir, _probes = rung(tmp_path, ["slow"])
    result = iso.run("run1", max_probes=2)
    assert result["culprits"] == [] and "probe budget ran out" in result["note"]
    assert result["healed"] and result["still_out"] == sorted(units_of(PLUGINS)[i]["unit"] for i in range(len(PLUGINS)))
    assert db.lists["active_plugins"] == ser(PLUGINS)


def test_without_a_database_every_plugin_on_disk_is_a_suspect(tmp_path):
    iso, _db, _journal, _dir, _probes = rung(tmp_path, ["slow"])
    iso.db = None
    result = iso.run("run1")
    assert "inactive" in result["suspects"] and result["culprits"] == ["slow"] and result["lists"] == {}
    assert any("database did not answer" in w for w in result["cautions"])


def test_something_in_the_way_stops_the_move_before_it_happens(tmp_path):
    iso, _db, journal, plugin_dir, _probes = rung(tmp_path, ["slow"])
    (tmp_path / "wp-content" / "plugins-off" / "akismet").mkdir(parents=True)
    with pytest.raises(OSError, match="is in the way"):
        iso.run("run1")
    assert (plugin_dir / "akismet" / "akismet.php").exists()
    journal.rollback(restore_value=lambda *a: None)
    assert sorted(os.listdir(plugin_dir)) == sorted({units_of([f])[0]["unit"] for f in PLUGINS} | {"inactive"})


def test_units_group_files_and_refuse_odd_names():
    assert units_of(["a/a.php", "a/b.php", "hello.php", "../etc/passwd", "x\\y.php"]) == [
        {"unit": "a", "files": ["a/a.php", "a/b.php"]}, {"unit": "hello.php", "files": ["hello.php"]}]
    assert wp502_wpdb.LISTS["active_plugins"][0] == "options"


def test_where_directories_cannot_move_the_plugin_files_are_renamed_in_place(tmp_path, monkeypatch):
    """overlayfs (containers) refuses to rename a directory of a lower layer: EXDEV."""
    import errno

    real_rename = os.rename

    def rename(src, dst):
        if os.path.isdir(src) and "plugins-off" in dst:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst)

    monkeypatch.setattr(wp502_isolate.os, "rename", rename)
    iso, db, journal, plugin_dir, _probes = rung(tmp_path, ["slow"])
    iso.probe = lambda: not (plugin_dir / "slow" / "slow.php").exists()
    before = tree(tmp_path / "wp-content")
    result = iso.run("run1")
    assert result["healed"] and result["culprits"] == ["slow"]
    assert result["moved"] == [{"from": str(plugin_dir / "slow" / "slow.php"), "to": str(plugin_dir / "slow" / "slow.php") + ".wp502-off"}]
    assert (plugin_dir / "slow" / "slow.php.wp502-off").exists() and (plugin_dir / "akismet" / "akismet.php").exists()
    assert plugin_files("active_plugins", db.lists["active_plugins"]) == [f for f in PLUGINS if f != "slow/slow.php"]
    journal.rollback(restore_value=lambda *a: None)
    assert tree(tmp_path / "wp-content") == before
