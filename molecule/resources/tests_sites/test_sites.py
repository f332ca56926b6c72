"""After emergency-502.yml on a three-site target with one site broken (or none, or the database):
the host's own state, per site (testinfra).

- every site answers 200 on / and /wp-login.php with its own Host header;
- the sites that were not broken are byte for byte as they were before the converge: active_plugins
  option bytes, plugin directory (every entry's type, mode, size, sha256), pool file, vhost file,
  wp-config.php, and their database files (no restore: same inodes) and rows;
- the broken site's culprits are inactive, every other plugin of it active as before;
- static_pool: the emergency changed nothing at all (no journal, the static pool file identical);
- mysql_down: MariaDB active again, every database's files and rows as before the fault.

The prepare (../prepare_sites.yml) kept the state in /root/.wp502-lab/before/ (before the fault) and
/root/.wp502-lab/broken/ (with the fault); the same tool writes /root/.wp502-lab/after/ here.
"""

from __future__ import annotations

import binascii
import glob
import json
import os
import re

import pytest

SNAPSHOT = "/root/.wp502-lab"
STATE = "/var/lib/wp502"
FILE_KEYS = ("plugins", "pool", "vhost", "wp_config")


@pytest.fixture(scope="module")
def expect(host):
    return host.ansible.get_variables()["wp502_mol_sites_expect"]


def load(host, name):
    return json.loads(host.file(f"{SNAPSHOT}/{name}/state.json").content_string)


@pytest.fixture(scope="module")
def snapshots(host):
    assert host.run(f"wp502-mol-snapshot {SNAPSHOT}/after").rc == 0
    return {name: load(host, name) for name in ("before", "broken", "after")}


@pytest.fixture(scope="module")
def sites(snapshots):
    return {s["name"]: s for s in snapshots["after"]["sites"]}


def plugin_list(hexed: str) -> list[str]:
    raw = binascii.unhexlify(hexed)
    return [m.group(2).decode() for m in re.finditer(rb's:(\d+):"(.*?)";', raw, re.S) if len(m.group(2)) == int(m.group(1))]


def test_three_sites(sites):
    assert list(sites) == ["wordpress", "siteb", "sitec"]


@pytest.mark.parametrize("site", ["wordpress", "siteb", "sitec"])
@pytest.mark.parametrize("path", ["/", "/wp-login.php"])
def test_every_site_answers_200(host, sites, site, path):
    header = "localhost" if site == "wordpress" else sites[site]["host"]
    code = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 -H 'Host: {header}' http://127.0.0.1{path}")
    assert code == "200", f"{site} ({header}) {path} answers {code}"


def test_the_sites_not_broken_are_untouched_byte_for_byte(snapshots, sites, expect):
    broken = expect.get("broken")
    for site in sites:
        if site == broken:
            continue
        then, now = snapshots["broken"]["state"][site], snapshots["after"]["state"][site]
        for key in FILE_KEYS:
            assert now[key] == then[key], f"{site}: {key} changed"
        # The database keys from before the fault (while MariaDB is down, the fault snapshot cannot read them).
        before = snapshots["before"]["state"][site]
        assert now["active_plugins"] == before["active_plugins"], f"{site}: active_plugins bytes changed"
        assert now["db_files"] == before["db_files"], f"{site}: database files replaced (a restore?)"
        assert now["db_rows"] == before["db_rows"], f"{site}: rows changed"


def test_the_broken_site_lost_only_its_culprits(snapshots, expect):
    broken = expect.get("broken")
    if not broken:
        pytest.skip("no site of this scenario has a plugin fault")
    before = plugin_list(snapshots["broken"]["state"][broken]["active_plugins"])
    now = plugin_list(snapshots["after"]["state"][broken]["active_plugins"])
    culprits = expect["culprits"]
    assert [f for f in before if f.split("/")[0] in culprits], f"the fault did not activate {culprits} in {broken}"
    assert now == [f for f in before if f.split("/")[0] not in culprits]
    # The site's own pool and vhost are those it had: the plugins rung works on plugins.
    for key in ("pool", "vhost", "wp_config"):
        assert snapshots["after"]["state"][broken][key] == snapshots["broken"]["state"][broken][key], key


def journal_entries(host) -> list[str]:
    out = host.run(f"cat {STATE}/runs/*/journal.jsonl 2>/dev/null")
    return [line for line in out.stdout.splitlines() if line.strip()]


def test_the_emergency_changed_nothing_when_nothing_failed(host, snapshots, sites, expect):
    if not expect.get("healthy"):
        pytest.skip("a site of this scenario was broken")
    assert journal_entries(host) == [], "a healthy host got a journal: the emergency changed something"
    for site in sites:
        for key in (*FILE_KEYS, "active_plugins", "db_files"):
            assert snapshots["after"]["state"][site][key] == snapshots["broken"]["state"][site][key], f"{site}: {key}"
    pool = host.file(sites[expect["static_site"]]["pool_file"]).content_string
    assert re.search(r"(?m)^pm = static$", pool), "the static pool is no longer static"


def test_mariadb_is_back_and_no_data_was_touched(host, snapshots, sites, expect):
    if not expect.get("database"):
        pytest.skip("MariaDB was not stopped in this scenario")
    assert host.service("mariadb").is_running
    assert host.run("mariadb -N -e 'SELECT 1'").stdout.strip() == "1"
    for site in sites:
        before, now = snapshots["before"]["state"][site], snapshots["after"]["state"][site]
        assert now["db_files"] == before["db_files"] and now["db_files"], f"{site}: database files replaced"
        assert now["db_rows"] == before["db_rows"], f"{site}: rows changed"
        assert now["active_plugins"] == before["active_plugins"], f"{site}: active_plugins changed"
        for key in FILE_KEYS:
            assert now[key] == before[key], f"{site}: {key} changed"


@pytest.fixture(scope="module")
def first_result(host):
    """What the converge's run said about this host (the idempotence step's run comes after it): the
    controller's report (written for a healthy host too), else the run's result.json on the host."""
    reports = sorted(glob.glob(os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"),
                                            "reports", "emergency-*", "results.json")))
    name = host.backend.get_hostname()
    for path in reports:
        with open(path, encoding="utf-8") as fh:
            results = json.load(fh)
        if name in results:
            return results[name]
    paths = host.run(f"ls -1tr {STATE}/runs/*/result.json").stdout.split()
    return json.loads(host.file(paths[0]).content_string) if paths else None


def test_the_emergency_said_what_it_did_per_site(first_result, expect):
    """Then what wp502 said, checked against the host's state above: each site's state and rung."""
    want = expect.get("result")
    if not want:
        pytest.skip("the scenario names no expected result")
    assert first_result is not None, "the emergency left no result.json"
    if "top_cause" in want:
        assert first_result["top_cause"] == want["top_cause"], first_result.get("verdict")
    if want.get("no_causes"):
        causes = {c.get("cause") for c in first_result.get("verdict") or []}
        assert not causes & set(want["no_causes"]), first_result.get("verdict")
    said = {s["site"]: s for s in first_result.get("sites") or []}
    for site, state in (want.get("sites") or {}).items():
        assert site in said, f"{site} is not in the result's sites: {sorted(said)}"
        for key, value in state.items():
            assert said[site].get(key) == value, f"{site}: {key} is {said[site].get(key)!r}, not {value!r}"


def test_the_host_is_released_and_no_guard_is_left(host, sites):
    assert not host.file(f"{STATE}/lock").exists
    for site in sites.values():
        assert not host.file(f"{site['path']}/wp-content/mu-plugins/wp502-guard.php").exists
