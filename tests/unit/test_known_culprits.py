"""Known culprit first: the plugins other hosts proved guilty (wp502_known_culprits lookup), matched against
a site's own evidence (wp502_ladder.known_culprit_matches), and the ladder order that follows."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import types
from pathlib import Path

import pytest
import wp502_ladder as lad
import wp502_verdict as v

ROOT = Path(__file__).resolve().parents[2]


def _load_lookup():
    """The lookup's pure functions, without importing Ansible's controller plugins or errors into this process:
    after those imports, in-process module tests (run_module) no longer see the modules' warnings in their
    results. LookupBase is a stand-in only while the file loads."""
    saved = sys.modules.get("ansible.plugins.lookup")
    sys.modules["ansible.plugins.lookup"] = types.SimpleNamespace(LookupBase=object)
    try:
        spec = importlib.util.spec_from_file_location("wp502_lookup_known", ROOT / "plugins" / "lookup" / "wp502_known_culprits.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["ansible.plugins.lookup"]
        else:
            sys.modules["ansible.plugins.lookup"] = saved
    return module


lookup = _load_lookup()

RECORD = {"plugin": "wp502-fault-segfault", "host": "web1", "site": "shop.test", "run_id": "20261202T030000-web1-0a",
          "at": "2026-12-02T03:01:00+00:00", "cause": "crashing_worker", "signatures": ["child_signal", "premature_close"]}


def wp_site(active=("akismet", "wp502-fault-segfault"), inactive=("hello",), signatures=(), suspects=(), cause="crashing_worker",
            db_readable=True):
    plugins = [{"slug": s, "file": f"{s}/{s}.php", "active": True if db_readable else None} for s in active]
    plugins += [{"slug": s, "file": f"{s}/{s}.php", "active": False if db_readable else None} for s in inactive]
    return {"id": "blog.test", "failing": True, "top_cause": cause, "pools": ["www"], "fpm_services": ["php8.2-fpm"],
            "verdict": [{"cause": cause, "confidence": 0.8, "rungs": list(v.RUNGS[cause])}],
            "wordpress": {"plugins": plugins}, "signatures": list(signatures), "suspects": list(suspects)}


def test_an_active_known_culprit_matches_weakly_and_changes_no_order():
    site = wp_site()
    (m,) = lad.known_culprit_matches(site, [RECORD])
    assert m["plugin"] == "wp502-fault-segfault" and m["reasons"] == ["active here"] and m["strong"] is False
    assert m["from"] == [{"host": "web1", "site": "shop.test", "run_id": RECORD["run_id"], "at": RECORD["at"]}]
    site["known_culprits"] = [m]
    assert [s["rung"] for s in lad.plan_ladder([site])] == ["restart_fpm", "plugins"]  # crashing_worker's own order


def test_the_same_signature_or_the_slowlog_naming_it_make_it_strong_and_put_plugins_first():
    site = wp_site(signatures=["child_signal"],
                   suspects=[{"type": "plugin", "slug": "wp502-fault-segfault", "count": 4, "sources": {"slowlog": 3, "error_log": 1}}])
    (m,) = lad.known_culprit_matches(site, [RECORD])
    assert m["strong"] and m["reasons"] == ["active here", "named by this site's error_log and slowlog",
                                            "the same signature here (child_signal)"]
    site["known_culprits"] = [m]
    assert [s["rung"] for s in lad.plan_ladder([site])] == ["plugins", "restart_fpm"]
    assert [s["rung"] for s in lad.plan_ladder([site], every=True)][:2] == ["plugins", "restart_fpm"]


@pytest.mark.parametrize("site", [
    wp_site(active=("akismet",), inactive=("wp502-fault-segfault",), signatures=["child_signal"]),  # installed, not active
    wp_site(db_readable=False, signatures=["child_signal"]),  # the database cannot say what is active
    wp_site(active=("akismet",), inactive=()),  # not installed here
], ids=["inactive", "database-unreadable", "absent"])
def test_a_culprit_that_is_not_active_here_never_matches(site):
    assert lad.known_culprit_matches(site, [RECORD]) == []


def test_a_cause_without_the_plugins_rung_keeps_its_ladder_even_with_a_strong_match():
    site = wp_site(cause="fpm_down", signatures=["child_signal"])
    site["known_culprits"] = lad.known_culprit_matches(site, [RECORD])
    assert site["known_culprits"][0]["strong"]
    assert [s["rung"] for s in lad.plan_ladder([site])] == list(v.RUNGS["fpm_down"])  # never adds a rung


def test_records_of_several_hosts_merge_per_plugin_strong_first():
    other = dict(RECORD, plugin="slow-shop", host="web2", signatures=["upstream_timeout"])
    again = dict(RECORD, host="web3", signatures=["fastcgi_stderr"])
    site = wp_site(active=("akismet", "wp502-fault-segfault", "slow-shop"), signatures=["upstream_timeout", "fastcgi_stderr"])
    matches = lad.known_culprit_matches(site, [RECORD, other, again, {"plugin": ""}, {"host": "x"}])
    assert [(m["plugin"], m["strong"]) for m in matches] == [("wp502-fault-segfault", True), ("slow-shop", True)]
    assert [f["host"] for f in matches[0]["from"]] == ["web1", "web3"]
    assert matches[0]["reasons"][-1] == "the same signature here (fastcgi_stderr)"


def test_diagnose_sites_keeps_each_sites_own_signatures_and_suspects():
    group = {"file": "/var/log/nginx/error.log", "server": "b.test", "upstream": None, "pool": None, "script": None,
             "total": 3, "signatures": {"premature_close": {"count": 3, "samples": []}, "upstream_timeout": {"count": 0}},
             "suspects": [{"type": "plugin", "slug": "x", "count": 3, "sources": {"error_log": 3}}]}
    sites = [{"id": "a.test", "names": ["a.test"], "http": {"origin_healthy": True}},
             {"id": "b.test", "names": ["b.test"], "http": {"origin_healthy": False}}]
    v.diagnose_sites({"sites": sites, "logs": {"attributed": [group], "signatures": group["signatures"]}})
    assert sites[0]["signatures"] == [] and sites[0]["suspects"] == []
    assert sites[1]["signatures"] == ["premature_close"]
    assert sites[1]["suspects"] == [{"type": "plugin", "slug": "x", "count": 3, "sources": {"error_log": 3}}]


def result(culprit="wp502-fault-segfault", state="healed", run_id="20261202T030000-web1-0a", **extra):
    return {"run_id": run_id, "healed": state == "healed", "culprits": [culprit],
            "sites": [{"site": "shop.test", "state": state, "culprits": [culprit] if state == "healed" else [],
                       "top_cause": "crashing_worker", "signatures": ["child_signal"]}], **extra}


def test_records_come_from_healed_sites_only_with_when_and_what_they_showed():
    records = lookup.culprit_records({"web1": result(finished_at="2026-12-02T03:01:00+00:00"),
                                      "web2": result(state="not_healed"), "web3": "not a result"})
    assert records == [dict(RECORD, signatures=["child_signal"])]
    (from_run_id,) = lookup.culprit_records({"web1": result()})
    assert from_run_id["at"] == "2026-12-02T03:00:00+00:00"  # no finished_at: the time in the run id
    old = {"run_id": "r", "healed": True, "culprits": ["x"], "top_cause": "slow_plugin"}  # a result from before sites
    assert [(r["plugin"], r["site"]) for r in lookup.culprit_records({"h": old})] == [("x", None)]


def test_recent_results_newest_first_within_the_window_and_broken_files_named(tmp_path):
    now = time.time()
    for name, age, body in (("emergency-1", 30 * 60, {"web1": result()}), ("emergency-2", 5 * 60, {"web2": result(culprit="b")}),
                            ("emergency-3", 300 * 60, {"web3": result(culprit="old")}), ("emergency-4", 60, None)):
        d = tmp_path / name
        d.mkdir()
        (d / "results.json").write_text(json.dumps(body) if body is not None else '{"web4": {"run_id"')  # 4: cut short
        os.utime(d / "results.json", (now - age, now - age))
    batches, problems = lookup.recent_results([str(tmp_path), str(tmp_path / "missing")], minutes=120, limit=20, now=now)
    assert [list(b) for b in batches] == [["web2"], ["web1"]]  # newest first; emergency-3 is too old
    assert len(problems) == 1 and "emergency-4/results.json" in problems[0]
    assert lookup.recent_results([str(tmp_path)], minutes=0, limit=20, now=now) == ([], [])
    # limit counts the newest files, a broken one included (emergency-4, then emergency-2)
    assert [list(b) for b in lookup.recent_results([str(tmp_path)], minutes=120, limit=2, now=now)[0]] == [["web2"]]


def test_the_lookup_puts_this_runs_records_first_and_each_once(tmp_path):
    d = tmp_path / "emergency-1"
    d.mkdir()
    (d / "results.json").write_text(json.dumps({"web1": result(), "web9": result(culprit="other")}))
    (tmp_path / "emergency-2").mkdir()
    (tmp_path / "emergency-2" / "results.json").write_text("not json")
    warnings = []
    records = lookup.known_culprits([str(tmp_path)], {"web5": result(culprit="newer")}, 60, 20, warn=warnings.append)
    assert [(r["plugin"], r["host"]) for r in records] == [("newer", "web5"), ("wp502-fault-segfault", "web1"), ("other", "web9")]
    assert len(warnings) == 1 and "emergency-2/results.json" in warnings[0]
    again = lookup.known_culprits([str(tmp_path)], {"web1": result()}, 60, 20)
    assert [(r["plugin"], r["host"]) for r in again] == [("wp502-fault-segfault", "web1"), ("other", "web9")]
