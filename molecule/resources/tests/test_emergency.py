"""After emergency-502.yml on a target broken for real (testinfra): the site answers, the rung the
scenario expects healed it, the culprit is out and every other plugin is active exactly as before,
the backups and the journal are on the host, and the host is released."""

from __future__ import annotations

import binascii
import json
import re

import pytest

STATE = "/var/lib/wp502"


@pytest.fixture(scope="module")
def expect(host):
    return host.ansible.get_variables()["wp502_mol_expect"]


@pytest.fixture(scope="module")
def run_dir(host):
    last = host.file(f"{STATE}/last")
    assert last.exists, "no emergency run left its id on the host"
    return f"{STATE}/runs/{last.content_string.strip()}"


@pytest.fixture(scope="module")
def result(host, run_dir):
    return json.loads(host.file(f"{run_dir}/result.json").content_string)


@pytest.fixture(scope="module")
def journal(host, run_dir):
    """The journal's entries (none when the healing rung changed no file, such as a restart)."""
    latest = {}
    path = host.file(f"{run_dir}/journal.jsonl")
    for line in path.content_string.splitlines() if path.exists else []:
        entry = json.loads(line)
        latest[entry["seq"]] = entry
    return [latest[k] for k in sorted(latest)]


def plugin_list(raw: bytes) -> list[str]:
    """The plugin files of a serialized active_plugins value (lengths are byte counts)."""
    return [m.group(2).decode() for m in re.finditer(rb's:(\d+):"(.*?)";', raw, re.S) if len(m.group(2)) == int(m.group(1))]


def active_raw(host) -> bytes:
    out = host.check_output("mysql -N wordpress -e \"SELECT HEX(option_value) FROM wp_options WHERE option_name = 'active_plugins'\"")
    return binascii.unhexlify(out.strip())


@pytest.mark.parametrize("path", ["/", "/wp-login.php"])
def test_the_site_answers_200_in_time(host, path):
    code = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 http://127.0.0.1{path}")
    assert code == "200"


def test_the_expected_rung_healed_it(result, expect):
    assert result["top_cause"] in expect["top_causes"], result["verdict"]
    assert result["healed"] is True and result["healed_by"] == expect["healed_by"], result["rungs"]
    assert result["rungs"][-1]["rung"] == expect["healed_by"]


def test_the_culprits_are_out_and_named(host, result, expect):
    assert result["culprits"] == expect["culprits"]
    active = plugin_list(active_raw(host))
    for slug in expect["culprits"]:
        assert not [f for f in active if f.startswith(slug + "/")], f"{slug} is still active"
        assert not host.file(f"/var/www/wordpress/wp-content/plugins/{slug}/{slug}.php").exists


def test_every_other_plugin_is_active_exactly_as_before(host, journal, expect):
    now = active_raw(host)
    saved = [e for e in journal if e["op"] == "value" and e["name"] == "active_plugins"]
    if saved:
        before = plugin_list(binascii.unhexlify(saved[0]["before"]))
        kept = [f for f in before if f.split("/")[0] not in expect["culprits"]]
        assert plugin_list(now) == kept
        # and byte for byte as WordPress keeps a list: a:N:{i:0;s:LEN:"file";...}
        body = "".join(f'i:{n};s:{len(f.encode())}:"{f}";' for n, f in enumerate(kept))
        assert now == f"a:{len(kept)}:{{{body}}}".encode()
    assert plugin_list(now) == expect["active_after"]


def test_backups_and_journal_are_on_the_host(host, result, journal):
    changed = [r for r in result["rungs"] if r.get("backups") or r.get("culprits")]
    assert bool(journal) == bool(changed), "every change is journaled, and only changes are"
    for rung in result["rungs"]:
        backups = rung.get("backups") or []
        for path in backups.values() if isinstance(backups, dict) else backups:
            assert host.file(path).exists, f"{rung['rung']}: backup {path} is missing"


def test_the_host_is_released_and_no_guard_is_left(host):
    assert not host.file(f"{STATE}/lock").exists
    assert not host.file("/var/www/wordpress/wp-content/mu-plugins/wp502-guard.php").exists
