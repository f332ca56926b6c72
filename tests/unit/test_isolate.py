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
PLUGINS = ("akismet/akismet.php", "contact/contact.php", "hello.php", "seo/seo.php", "cache/cache.php",
           "forms/forms.php", "shop/shop.php", "slow/slow.php")


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


def rung(tmp_path, culprits, plugins=PLUGINS, on_probe=None, reset=None, **kwargs):
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
                    probe, reset or (lambda: None), where={"config": "/srv/wp-config.php"}, **kwargs)
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


def test_a_budget_that_runs_out_puts_everything_back_and_says_so(tmp_path):
    iso, db, _journal, _dir, _probes = rung(tmp_path, ["slow"])
    before = tree(tmp_path / "wp-content")
    with pytest.raises(wp502_isolate.RungFailedError, match="probe budget") as failed:
        iso.run("run1", max_probes=2)
    assert failed.value.restored and failed.value.still_out == []
    assert tree(tmp_path / "wp-content") == before and db.lists["active_plugins"] == ser(PLUGINS)


def test_without_a_database_every_plugin_on_disk_is_a_suspect(tmp_path):
    iso, _db, _journal, _dir, _probes = rung(tmp_path, ["slow"])
    iso.db = None
    result = iso.run("run1")
    assert "inactive" in result["suspects"] and result["culprits"] == ["slow"] and result["lists"] == {}
    assert any("database did not answer" in w for w in result["cautions"])


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


# ---- a rung that cannot finish puts everything back -------------------------------------------------
def unit_names(plugins=PLUGINS):
    return sorted({units_of([f])[0]["unit"] for f in plugins})


def assert_all_back(tmp_path, before, db, journal, plugins=PLUGINS):
    """The site as the rung found it: every file and directory, the exact list, no guard; and a rollback
    afterwards (the operator's command) changes nothing."""
    assert tree(tmp_path / "wp-content") == before
    assert db.lists["active_plugins"] == ser(plugins)
    assert not (tmp_path / "wp-content" / "mu-plugins" / wp502_isolate.GUARD_NAME).exists()
    journal.rollback(restore_value=lambda name, b, where: db.lists.update({name: binascii.unhexlify(b)}))
    assert tree(tmp_path / "wp-content") == before and db.lists["active_plugins"] == ser(plugins)


class Fpm:
    """PHP-FPM as systemd runs it: a restart refused by the start limit leaves it down. ``down_after``:
    the restarts (1-based) that systemd refuses; ``raises``: reset() says so, as the module's does
    (otherwise it stays silent, as the module's did before)."""

    def __init__(self, down_after=(), raises=False):
        self.down_after = set(down_after)
        self.raises = raises
        self.restarts = 0
        self.up = True

    def reset(self):
        self.restarts += 1
        self.up = self.restarts not in self.down_after
        if not self.up and self.raises:
            raise wp502_isolate.PoolsDownError("php8.2-fpm did not come back: ActiveState=failed Result=start-limit-hit")

    def pools(self):
        return None if self.up else "php8.2-fpm is failed (Result=start-limit-hit)"


FORTY = [f"p{i:02d}/p{i:02d}.php" for i in range(40)] + ["zz-innocent-40/zz-innocent-40.php"]


def fpm_rung(tmp_path, fpm, culprit, plugins):
    iso, db, journal, plugin_dir, _probes = rung(tmp_path, [culprit], plugins=plugins, reset=fpm.reset, pools=fpm.pools)
    probe = iso.probe
    iso.probe = lambda: fpm.up and probe()  # a stopped FPM: nginx answers 502 whatever is in place
    return iso, db, journal, plugin_dir


@pytest.mark.parametrize(("culprit", "down_after"), [
    ("p17", {3}),            # the issue: the restart after a failed bisection probe is refused once
    ("p17", {2, 4, 6}),      # refused again and again, each time once
    ("p00", {2}),
    ("zz-innocent-40", {1}),
    ("p39", {1}),            # refused before the very first probe
])
def test_a_probe_while_the_pools_are_down_does_not_count(tmp_path, culprit, down_after):
    fpm = Fpm(down_after)
    iso, db, _journal, plugin_dir = fpm_rung(tmp_path, fpm, culprit, FORTY)
    result = iso.run("run1")
    assert result["healed"] and result["culprits"] == [culprit]
    assert result["still_out"] == [culprit]
    assert sorted(os.listdir(plugin_dir)) == sorted(set(unit_names(FORTY)) - {culprit} | {"inactive"})
    assert db.lists["active_plugins"] == ser([f for f in FORTY if not f.startswith(culprit + "/")])
    uncounted = [t for t in result["trail"] if not t["counted"]]
    assert uncounted and all(not t["healthy"] and "start-limit-hit" in t["pools_down"] for t in uncounted)
    assert any("was not counted" in c for c in result["cautions"])


@pytest.mark.parametrize(("down_after", "raises"), [
    ({1}, True),              # systemd refuses the restart before the first probe: nothing decided
    ({2}, True),              # ... after the first failed bisection probe
    ({2, 3}, False),          # the pools stay down, asked twice: the rung gives up
    (set(range(1, 99)), False),
])
def test_pools_that_stay_down_stop_the_rung_with_everything_back(tmp_path, down_after, raises):
    fpm = Fpm(down_after, raises=raises)
    iso, db, journal, _dir = fpm_rung(tmp_path, fpm, "p17", FORTY)
    before = tree(tmp_path / "wp-content")
    with pytest.raises(wp502_isolate.RungFailedError, match="start-limit-hit") as failed:
        iso.run("run1")
    assert isinstance(failed.value.cause, wp502_isolate.PoolsDownError)
    assert failed.value.restored and failed.value.still_out == [] and failed.value.problems == []
    assert_all_back(tmp_path, before, db, journal, plugins=FORTY)


@pytest.mark.parametrize(("in_the_way", "moves"), [
    ("plugins-off/run1/akismet/", False),         # this run's own directory already holds a name
    ("plugins-off/run1/hello.php", False),
    ("plugins/slow/slow.php.wp502-off", False),    # the in-place fallback's name
    ("plugins-off", False),                        # a file where the directory should be
    ("plugins-off/akismet/", True),                # an earlier run or a person: not in this run's way
    ("plugins-off/other-run/slow/", True),
])
def test_destinations_in_the_way_are_found_before_anything_moves(tmp_path, in_the_way, moves):
    iso, db, journal, plugin_dir, _probes = rung(tmp_path, ["slow"])
    path = tmp_path / "wp-content" / in_the_way
    if in_the_way.endswith("/"):
        path.mkdir(parents=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"someone else's\n")
    before = tree(tmp_path / "wp-content")
    if moves:
        result = iso.run("run1")
        assert result["culprits"] == ["slow"] and result["still_out"] == ["slow"]
        assert sorted(os.listdir(plugin_dir)) == sorted(set(unit_names()) - {"slow"} | {"inactive"})
        assert (tmp_path / "wp-content" / "plugins-off" / "run1" / "slow" / "slow.php").exists()
        assert tree(tmp_path / "wp-content").get(in_the_way) == before[in_the_way]  # left alone
        return
    with pytest.raises(wp502_isolate.RungFailedError) as failed:
        iso.run("run1")
    assert failed.value.restored and (in_the_way.rstrip("/") in str(failed.value) or "File exists" in str(failed.value))
    assert not [e for e in journal.entries() if e["op"] == "rename"]  # nothing moved
    assert_all_back(tmp_path, before, db, journal)


def failing_rename(monkeypatch, fail):
    """os.rename as the rung sees it, failing (PermissionError) for the calls ``fail(n, src, dst)`` picks."""
    real = os.rename
    calls = []

    def rename(src, dst):
        calls.append((src, dst))
        if fail(len(calls), src, dst):
            raise PermissionError(13, "Permission denied", src)
        return real(src, dst)

    monkeypatch.setattr(wp502_isolate.os, "rename", rename)
    return calls


@pytest.mark.parametrize("case", [
    "third_move_out",        # the first arrange: two units out, the third refuses
    "mid_bisection",         # a move while bisecting
    "first_put_back",        # bisection puts half of them back: the first refuses
])
def test_a_move_failing_half_way_puts_everything_back(tmp_path, monkeypatch, case):
    iso, db, journal, _dir, _probes = rung(tmp_path, ["slow"])
    guard = tmp_path / "wp-content" / "mu-plugins" / wp502_isolate.GUARD_NAME
    gets = []
    get = db.get
    db.get = lambda name: gets.append(guard.exists()) or get(name)
    before = tree(tmp_path / "wp-content")
    gets.clear()
    refused = []
    picks = {"third_move_out": lambda n, src, dst: n == 3,
             "mid_bisection": lambda n, src, dst: n == len(PLUGINS) + 2,
             "first_put_back": lambda n, src, dst: "plugins-off" in src and not refused and not refused.append(n)}
    failing_rename(monkeypatch, picks[case])
    with pytest.raises(wp502_isolate.RungFailedError, match="Permission denied") as failed:
        iso.run("run1")
    monkeypatch.undo()
    assert failed.value.restored and failed.value.still_out == []
    assert gets and gets[-1] is True  # the lists were checked whole while the guard still stood
    assert_all_back(tmp_path, before, db, journal)


def test_a_put_back_that_fails_keeps_the_guard_and_says_so(tmp_path, monkeypatch):
    iso, db, journal, plugin_dir, _probes = rung(tmp_path, ["slow"])
    before = tree(tmp_path / "wp-content")
    # the third move out fails, and so does putting "contact" back: it stays out
    failing_rename(monkeypatch, lambda n, src, dst: n == 3 or src.endswith("plugins-off/run1/contact"))
    with pytest.raises(wp502_isolate.RungFailedError) as failed:
        iso.run("run1")
    monkeypatch.undo()
    assert not failed.value.restored and failed.value.still_out == ["contact"]
    assert any("contact could not be put back" in p for p in failed.value.problems)
    assert any("guard" in p and "stays" in p for p in failed.value.problems)
    assert (tmp_path / "wp-content" / "mu-plugins" / wp502_isolate.GUARD_NAME).exists()
    assert (plugin_dir / "akismet").exists() and not (plugin_dir / "contact").exists()
    assert db.lists["active_plugins"] == ser(PLUGINS)
    # the operator's rollback brings the rest back
    journal.rollback(restore_value=lambda name, b, where: db.lists.update({name: binascii.unhexlify(b)}))
    assert tree(tmp_path / "wp-content") == before


@pytest.mark.parametrize(("broken", "restored"), [
    ("set", True),    # the list cannot be written at the end: it still holds the saved bytes
    ("get", False),   # the database went away: the list cannot be checked, so the guard stays
])
def test_a_database_failing_at_the_end_puts_the_plugins_back(tmp_path, broken, restored):
    iso, db, _journal, plugin_dir, _probes = rung(tmp_path, ["slow"])
    before = tree(tmp_path / "wp-content")

    def cannot_connect(*_args):
        raise DBError("ERROR 2002: Can't connect")

    def on_probe(n, _db):
        if n == 3:
            setattr(db, broken, cannot_connect)

    iso.probe, probe = (lambda: (on_probe(len(iso.trail) + 1, db), probe())[1]), iso.probe
    with pytest.raises(wp502_isolate.RungFailedError, match="Can't connect") as failed:
        iso.run("run1")
    assert failed.value.restored is restored and failed.value.still_out == []
    assert sorted(os.listdir(plugin_dir)) == sorted(set(unit_names()) | {"inactive"})
    guard = tmp_path / "wp-content" / "mu-plugins" / wp502_isolate.GUARD_NAME
    assert guard.exists() is (not restored)
    if restored:
        assert tree(tmp_path / "wp-content") == before


def test_a_finished_rung_leaves_out_the_culprits_and_nothing_else(tmp_path):
    for culprits in (["slow"], ["contact", "shop"], ["akismet", "hello.php", "slow"]):
        sub = tmp_path / "-".join(culprits)
        sub.mkdir()
        iso, _db, _journal, plugin_dir, _probes = rung(sub, culprits)
        result = iso.run("run1")
        assert result["healed"] and sorted(result["culprits"]) == sorted(culprits) == result["still_out"]
        assert sorted(os.listdir(plugin_dir)) == sorted(set(unit_names()) - set(culprits) | {"inactive"})
        assert result["moved_to"] == str(plugin_dir) + "-off/run1"
        assert sorted(os.listdir(result["moved_to"])) == sorted(culprits)


def test_a_pool_accepts_or_says_why_not(tmp_path):
    import socket

    path = str(tmp_path / "pool.sock")
    assert "does not accept connections" in wp502_isolate.accepts(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(1)
    try:
        assert wp502_isolate.accepts(path) is None
        assert wp502_isolate.accepts(f"127.0.0.1:{tcp.getsockname()[1]}") is None
    finally:
        server.close()
        tcp.close()
    assert "not a pool address" in wp502_isolate.accepts("not a socket")


# ---- the module's PHP-FPM: systemd's start limit, and deadlines -----------------------------------------
class Systemd:
    """Answers systemctl as a unit with a start limit would: ``refusals`` restarts are refused (with
    ``result`` as systemd's reason) until reset-failed is called; records every argv."""

    def __init__(self, refusals=0, result="start-limit-hit", clears=True):
        self.refusals = refusals
        self.result = result
        self.clears = clears
        self.active = True
        self.calls = []

    def __call__(self, argv, env=None, timeout=None):
        self.calls.append(" ".join(argv[1:]))
        verb = argv[1]
        if verb == "restart":
            if self.refusals:
                self.refusals -= 1
                self.active = False
                return 1, "", "Job for php8.2-fpm.service failed.\nSee \"systemctl status php8.2-fpm.service\"\n"
            self.active = True
            return 0, "", ""
        if verb == "reset-failed":
            if not self.clears:
                self.refusals += 1
            return 0, "", ""
        if verb == "show":
            state = ("active", "running", "success") if self.active else ("failed", "failed", self.result)
            return 0, "ActiveState={}\nSubState={}\nResult={}\n".format(*state), ""
        return 1, "", "unexpected"


def fpm_of(systemd, sockets=()):
    import wp502_plugins

    clock = iter(range(10 ** 6))
    cautions = []
    return wp502_plugins.Fpm(systemd, "/usr/bin/systemctl", ["php8.2-fpm"], list(sockets), cautions,
                             sleep=lambda s: None, now=lambda: next(clock)), cautions


@pytest.mark.parametrize(("systemd", "calls", "error", "caution"), [
    (Systemd(0), ["restart php8.2-fpm"], None, None),
    # the start limit refuses once: reset-failed clears it and the restart goes through
    (Systemd(1), ["restart php8.2-fpm", "reset-failed php8.2-fpm", "restart php8.2-fpm"], None, "start-limit-hit"),
    # refused again after reset-failed: the pools are down, and the message says which unit and why
    (Systemd(2), ["restart php8.2-fpm", "reset-failed php8.2-fpm", "restart php8.2-fpm"],
     r"php8\.2-fpm is failed/failed \(Result=start-limit-hit: systemd's start limit.*reset-failed php8\.2-fpm", "start-limit-hit"),
    # another reason: no reset-failed (that only clears a start limit), the reason is named
    (Systemd(1, result="exit-code"), ["restart php8.2-fpm"], r"Result=exit-code: the service exited with an error", None),
])
def test_a_restart_the_start_limit_refuses_is_retried_once_after_reset_failed(systemd, calls, error, caution):

    fpm, cautions = fpm_of(systemd)
    if error:  # (by name: the test session holds wp502_isolate under two import names)
        with pytest.raises(RuntimeError, match=error) as raised:
            fpm.reset()
        assert type(raised.value).__name__ == "PoolsDownError"
    else:
        fpm.reset()
    restarts = [c for c in systemd.calls if not c.startswith("show")]
    assert restarts == calls
    assert bool(caution) == bool(cautions) and (not caution or caution in cautions[0])


def test_pools_down_names_the_unit_and_the_socket(tmp_path):
    systemd = Systemd(1)
    fpm, _cautions = fpm_of(systemd, sockets=[str(tmp_path / "gone.sock")])
    systemd.active = False
    said = fpm.down()
    assert "php8.2-fpm is failed/failed (Result=start-limit-hit" in said and "gone.sock does not accept" in said
    systemd.active = True
    assert "php8.2-fpm" not in fpm.down()  # the unit is up, the pool still does not accept


def test_a_systemctl_that_hangs_is_named(tmp_path):
    import wp502_plugins
    from wp502_plugins import CommandTimeoutError, deadline_runner

    def run_command(argv, environ_update=None):
        return (124, "", "") if "restart" in argv else (0, "ActiveState=active\n", "")

    fpm = wp502_plugins.Fpm(deadline_runner(run_command, timeout_bin="/usr/bin/timeout"), "/usr/bin/systemctl",
                            ["php8.2-fpm"], [], [])
    with pytest.raises(CommandTimeoutError, match=r"`/usr/bin/systemctl restart php8.2-fpm` did not finish within 90 s"):
        fpm.reset()


MANY = [f"p{i:02d}/p{i:02d}.php" for i in range(20)]


def test_a_known_culprit_is_taken_out_alone_and_heals_in_two_probes(tmp_path):
    iso, db, _journal, _dir, probes = rung(tmp_path, ["p13"], plugins=MANY)
    result = iso.run("run1", known=["p13", "not-here"])
    assert result["healed"] and result["culprits"] == ["p13"] and result["known_culprit"]
    assert result["probes"] == len(probes) <= 2  # out alone (healed), then the rest confirmed with it out
    assert plugin_files("active_plugins", db.lists["active_plugins"]) == [f for f in MANY if not f.startswith("p13/")]


def test_a_known_culprit_that_is_not_this_sites_falls_back_to_bisection(tmp_path):
    iso, db, _journal, _dir, _probes = rung(tmp_path, ["p04"], plugins=MANY)
    result = iso.run("run1", known=["p13"])
    assert result["healed"] and result["culprits"] == ["p04"] and "known_culprit" not in result
    assert any("p13, the culprit named on another host, is not this site's" in c for c in result["cautions"])
    assert plugin_files("active_plugins", db.lists["active_plugins"]) == [f for f in MANY if not f.startswith("p04/")]
    # one probe for the known one, then the normal ladder: all out, bisection, confirmation
    assert result["probes"] <= 1 + 1 + math.ceil(math.log2(len(MANY))) + 1


def test_two_known_culprits_only_the_one_that_breaks_stays_out(tmp_path):
    iso, db, _journal, _dir, _probes = rung(tmp_path, ["p07"], plugins=MANY)
    result = iso.run("run1", known=["p07", "p15"])
    assert result["healed"] and result["culprits"] == ["p07"]  # p15 was only named elsewhere: it goes back
    assert plugin_files("active_plugins", db.lists["active_plugins"]) == [f for f in MANY if not f.startswith("p07/")]
