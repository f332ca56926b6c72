"""The wp502_write_report action plugin and the wp502_report role through ansible-playbook on the controller: nested files,
check mode still writes, odd names refused with a clear message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def play(tmp_path, files, *args):
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "write", "wp502_write_report": {"dir": str(tmp_path / "out" / "run1"), "files": files}}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(book), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_files_are_written_with_their_directories_even_in_check_mode(tmp_path):
    proc = play(tmp_path, {"report.html": "<p>ok</p>", "hosts/web1.json": '{"a": 1}'}, "--check")
    assert proc.returncode == 0, proc.stdout[-2000:]
    out = tmp_path / "out" / "run1"
    assert (out / "report.html").read_text() == "<p>ok</p>" and json.loads((out / "hosts" / "web1.json").read_text()) == {"a": 1}
    assert not list(out.rglob(".wp502-*"))  # no temporary file left behind


def test_names_outside_the_directory_are_refused(tmp_path):
    proc = play(tmp_path, {"../escape.txt": "x"})
    assert proc.returncode != 0 and "must be relative paths inside dir" in proc.stdout
    assert not (tmp_path / "out" / "escape.txt").exists()


def test_the_report_role_writes_a_row_per_site(tmp_path):
    """The wp502_report role end to end on the controller: summary.json, summary.md, report.html and
    wp502.prom from evidence with three sites, one failing behind a CDN with an odd id."""
    site = {"names": ["x"], "docroot": "/var/www/x", "server": "nginx", "pools": ["x"], "wordpress": {"path": "/var/www/x"}}
    ok = {"origin": {"/": {"status": 200}, "/wp-login.php": {"status": 200}}, "origin_healthy": True}
    bad = {"origin": {"/": {"status": 502}, "/wp-login.php": {"status": 502}}, "origin_healthy": False}
    cause = {"cause": "slow_plugin", "confidence": 0.8, "evidence": ["slow: heavy-analytics 31 s"], "rungs": ["plugins"],
             "site": 'b"ad\\site'}
    sites = [dict(site, id="sitea.test", verdict=[{"cause": "healthy", "confidence": 0.9}], top_cause="healthy",
                  failing=False, http=ok),
             dict(site, id='b"ad\\site', verdict=[cause], top_cause="slow_plugin", failing=True, http=bad),
             dict(site, id="sitec.test", verdict=[{"cause": "healthy", "confidence": 0.9}], top_cause="healthy",
                  failing=True, http=dict(ok, public={"/": {"status": 522}}, cdn="cloudflare", ray_id="8f1c-AMS"))]
    evidence = {"sites": sites, "verdict": [cause], "top_cause": "slow_plugin", "fpm": {"pools": [{"name": "x"}]},
                "wordpress": [s["wordpress"] for s in sites], "http": bad, "logs": {}}
    book = tmp_path / "report.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "evidence", "ansible.builtin.set_fact": {"wp502_evidence_result": evidence}},
        {"name": "report", "ansible.builtin.include_role": {"name": "wp502_report"},
         "vars": {"wp502_report_hosts": ["localhost"], "wp502_report_dir": str(tmp_path / "reports")}}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_SHOW_CUSTOM_STATS="1",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(book)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    # set_stats (what AWX and the wp502 command read): each host's sites in brief.
    stats = json.loads(proc.stdout.split("CUSTOM STATS:", 1)[1].split("RUN:", 1)[1].strip().splitlines()[0])["wp502_audit"]
    assert stats["sites"]["localhost"][1] == {"site": 'b"ad\\site', "top_cause": "slow_plugin", "failing": True}
    (run,) = (tmp_path / "reports").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    (row,) = summary["rows"]
    assert (row["top_cause"], row["site"]) == ("slow_plugin", 'b"ad\\site')
    assert [(s["site"], s["failing"], s["top_cause"]) for s in row["sites"]] == [
        ("sitea.test", False, "healthy"), ('b"ad\\site', True, "slow_plugin"), ("sitec.test", True, "healthy")]
    assert row["sites"][2]["ray_id"] == "8f1c-AMS" and row["sites"][1]["evidence"] == ["slow: heavy-analytics 31 s"]
    assert summary["failing_sites"] == [{"host": "localhost", "site": 'b"ad\\site', "top_cause": "slow_plugin"},
                                        {"host": "localhost", "site": "sitec.test", "top_cause": "healthy"}]
    prom = (run / "wp502.prom").read_text()
    assert 'wp502_site_failing{host="localhost",site="b\\"ad\\\\site"} 1' in prom
    assert 'wp502_verdict{host="localhost",cause="slow_plugin"} 1' in prom
    assert "| localhost | audited, 2 of 3 sites failing | sitea.test | no | healthy |" in (run / "summary.md").read_text()
    assert (run / "report.html").read_text().count("data-site=") == 3


def test_the_emergency_summary_writes_a_row_per_site(tmp_path):
    """roles/wp502_emergency/tasks/summary.yml on the controller: results.json and report.html carry
    each site's decided outcome; the console shows the sites of a host that has several."""
    def site(sid, before, after, healed_by=None, culprits=(), state="?"):
        return {"site": sid, "before": before, "after": after, "answering_before": before == "200",
                "answering_after": after == "200", "top_cause": "slow_plugin", "healed_by": healed_by,
                "culprits": list(culprits), "state": state}
    wp1 = {"top_cause": "slow_plugin", "rungs": [{"rung": "plugins", "healed": True, "seconds": 4.2}],
           "sites": [site("sitea.test", "200", "200", state="healthy"),
                     site("siteb.test", "502", "200", "plugins", ["wp502-fault-slow"], state="healed"),
                     # Given as healthy, but it answered and fails now: the answers decide.
                     site("sitec.test", "200", "502", state="healthy")]}
    wp2 = {"top_cause": "fpm_down", "healed_by": "restart_fpm", "healed": True, "rungs": []}
    done = [{"inventory_hostname": "wp1", "wp502_emergency_result": wp1},
            {"inventory_hostname": "wp2", "wp502_emergency_result": wp2}]
    book = tmp_path / "summary.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "summary", "ansible.builtin.include_role": {"name": "wp502_emergency", "tasks_from": "summary.yml"},
         "vars": {"__wp502_emergency_done": done, "wp502_report_dir": str(tmp_path / "reports")}}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(book)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "wp1: broke: sitec.test answered 200 before, 502 now after plugins; healed 1 of 1 failing site: " \
           "siteb.test by plugins (culprit wp502-fault-slow)" in proc.stdout
    console = proc.stdout.split("Show every host's outcome")[1]
    per_site = console.split("Each site of the hosts with more than one:")[1]
    assert '"wp1: healed: siteb.test by plugins (culprit wp502-fault-slow)"' in per_site
    assert '"wp1: broke: sitec.test answered 200 before, 502 now after plugins"' in per_site and "wp2:" not in per_site
    assert '"wp2: fpm_down, healed by restart_fpm"' in console
    (run,) = (tmp_path / "reports").iterdir()
    results = json.loads((run / "results.json").read_text())
    assert (results["wp1"]["state"], results["wp1"]["ok"]) == ("broke", False)
    assert [(s["site"], s["state"], s["ok"]) for s in results["wp1"]["sites"]] == [
        ("sitea.test", "healthy", True), ("siteb.test", "healed", True), ("sitec.test", "broke", False)]
    assert results["wp1"]["sites"][1]["culprits"] == ["wp502-fault-slow"] and results["wp1"]["sites"][1]["before"] == "502"
    assert (results["wp2"]["state"], results["wp2"]["ok"], "sites" in results["wp2"]) == ("healed", True, False)
    page = (run / "report.html").read_text()
    assert page.count('data-host="wp1" data-site=') == 3 and 'data-site="sitec.test" data-state="broke"' in page


class _Console:
    """The action plugin's console_text, run in a child Python: importing an action plugin here would set up
    ansible's controller state in this process and change how the module tests after it see warnings."""

    _CODE = ("import importlib.util, json, sys\n"
             "spec = importlib.util.spec_from_file_location('wp502_write_report', sys.argv[1])\n"
             "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
             "args, kwargs = json.load(sys.stdin)\n"
             "print(json.dumps({'lines': m.console_text(*args, **kwargs), 'groups': m.CONSOLE_GROUPS}))\n")

    def _run(self, *args, **kwargs):
        proc = subprocess.run([sys.executable, "-c", self._CODE, str(ROOT / "plugins" / "action" / "wp502_write_report.py")],
                              input=json.dumps([args, kwargs]), capture_output=True, text=True, timeout=60, check=True)
        return json.loads(proc.stdout)

    def console_text(self, *args, **kwargs):
        return self._run(*args, **kwargs)["lines"]

    @property
    def CONSOLE_GROUPS(self):  # noqa: N802 - the action's constant, by its name
        return self._run({"hosts": 0, "statuses": {}}, "x")["groups"]


def _console():
    return _Console()


def test_the_console_is_bounded_whatever_the_fleet_size():
    """5000 hosts, 40 groups, 3000 unhealthy: the counts, the 5 largest groups, 20 unhealthy hosts with their cause,
    "and N more", the report's path: as many lines as for a fleet a hundred times smaller."""
    action = _console()

    def summary(n):
        rows = [{"host": f"web{i:05d}", "top_cause": "slow_plugin" if i % 5 < 3 else "healthy", "site": f"s{i}.test"}
                for i in range(n)]
        unhealthy = [r["host"] for r in rows if r["top_cause"] != "healthy"]
        groups = [{"key": {"kind": "culprit", "value": f"plugin-{g}"}, "hosts": unhealthy[g::40]} for g in range(40)]
        return {"hosts": n, "statuses": {"ok": n - 7, "unreachable": 7}, "causes": {"slow_plugin": len(unhealthy)},
                "groups": groups, "unhealthy": unhealthy, "rows": rows}

    big = action.console_text(summary(5000), "/r/audit-1/report.html", limit=20, when="2026-12-02T02:00:00Z")
    small = action.console_text(summary(50), "/r/audit-2/report.html", limit=20)
    assert len(big) == 1 + 1 + 1 + action.CONSOLE_GROUPS + 1 + 1 + 20 + 1 + 1
    assert big[0] == "wp502 fleet audit, 2026-12-02T02:00:00Z: 5000 hosts: 4993 audited, 7 unreachable"
    assert big[1] == "Causes: slow_plugin 3000" and big[2] == "Largest groups (40 in all):"
    assert big[3].startswith("  75 hosts share the culprit plugin-0: web00000, web00066, ") and big[3].endswith(" and 70 more")
    assert "  and 35 more groups" in big
    assert "Unhealthy hosts (3000):" in big and "  web00000: slow_plugin (site s0.test)" in big
    assert "  and 2980 more (summary.json lists them all)" in big and big[-1] == "Report: /r/audit-1/report.html"
    assert len(small) == len(big)  # 30 unhealthy of 50: 20 named, 10 counted
    assert small[-2] == "  and 10 more (summary.json lists them all)"
    assert action.console_text({"hosts": 0, "statuses": {}}, "x/report.html")[-2:] == ["Unhealthy hosts: none", "Report: x/report.html"]


def test_the_action_writes_each_host_evidence_from_its_variables(tmp_path):
    """hosts: each host's wp502_evidence_result as hosts/HOST.json (to_nice_json's text), a host without any as
    {"collected": false}; the console comes back in the result, limited by console_limit."""
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": [
        {"name": "evidence", "ansible.builtin.set_fact": {"wp502_evidence_result": {"top_cause": "fpm_down", "x": [1, "é"]}},
         "when": "inventory_hostname != 'c'"},
        {"name": "write", "run_once": True, "register": "out", "wp502_write_report": {
            "dir": str(tmp_path / "out"), "hosts": ["a", "b", "c"], "console_limit": 1,
            "summary": {"hosts": 3, "statuses": {"ok": 2, "failed": 1}, "causes": {"fpm_down": 2}, "unhealthy": ["a", "b"],
                        "rows": [{"host": "a", "top_cause": "fpm_down"}, {"host": "b", "top_cause": "fpm_down"}]}}},
        {"name": "show", "run_once": True, "ansible.builtin.debug": {"var": "out.console"}}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "a,b,c,", "-c", "local", str(book)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    hosts = tmp_path / "out" / "hosts"
    assert json.loads((hosts / "a.json").read_text()) == {"top_cause": "fpm_down", "x": [1, "é"]}
    assert (hosts / "a.json").read_text().startswith('{\n    "top_cause": "fpm_down",')
    assert json.loads((hosts / "c.json").read_text()) == {"collected": False}
    assert "'  and 1 more (summary.json lists them all)'" in proc.stdout and "'  a: fpm_down'" in proc.stdout
