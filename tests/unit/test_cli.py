"""The wp502 command without a run: arguments, progress lines from runner events, verdict tables and
exit codes."""

from __future__ import annotations

import io

import pytest

from wp502cli import main as cli


def test_extravars_keep_their_types(tmp_path):
    f = tmp_path / "vars.yml"
    f.write_text("wp502_emergency_serial: 2\n")
    assert cli.parse_extravars(["a=1", "b=true", "c=text", 'd={"x": 1}', '{"e": [1]}', f"@{f}", "empty="]) == {
        "a": 1, "b": True, "c": "text", "d": {"x": 1}, "e": [1], "wp502_emergency_serial": 2, "empty": ""}
    with pytest.raises(ValueError, match="expected VAR=VALUE"):
        cli.parse_extravars(["novalue"])


def test_bad_usage_exits_64(capsys):
    assert cli.main(["emergency"]) == cli.USAGE  # -l is required: no fleet-wide emergency by accident
    assert cli.main(["audit", "-e", "oops"]) == cli.USAGE
    assert "expected VAR=VALUE" in capsys.readouterr().err


def event(kind, host, task, action="wp502_plugins", **res):
    return {"event": kind, "event_data": {"host": host, "task": task, "task_action": action, "res": res}}


def test_progress_prints_what_hosts_do_and_say():
    out = io.StringIO()
    progress = cli.Progress(out)
    progress(event("runner_on_ok", "wp1", "Take the plugins out and find the culprit", changed=True))
    progress(event("runner_on_ok", "wp1", "Keep the run's result", action="ansible.builtin.set_fact"))
    progress(event("runner_on_skipped", "wp1", "Reload PHP-FPM", action="ansible.builtin.systemd_service"))
    progress(event("runner_on_ok", "wp1", "Say what happened", action="ansible.builtin.debug", msg="wp1: slow_plugin, healed by plugins"))
    progress(event("runner_on_unreachable", "wp2", "Read the evidence and the verdict", msg="ssh: connect refused"))
    progress({"event": "playbook_on_stats", "event_data": {"artifact_data": {"wp502_emergency": {}}}})
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert "wp1" in lines[0] and "Take the plugins out" in lines[0] and lines[0].endswith("changed")
    assert lines[1].endswith("wp1: slow_plugin, healed by plugins")
    assert "UNREACHABLE: ssh: connect refused" in lines[2]
    assert progress.stats == {"wp502_emergency": {}}


def test_emergency_table_and_exit_codes():
    healed = {"top_cause": "crashing_worker", "healed_by": "plugins", "culprits": ["bad-plugin"],
              "rungs": [{"rung": "restart_fpm", "seconds": 3.1}, {"rung": "plugins", "seconds": 9.8}],
              "rollback": "ansible-playbook playbooks/rollback-502.yml -l wp1 -e wp502_run_id=X"}
    rows, code = cli.emergency_table({"wp1": healed, "wp2": {"top_cause": "healthy", "stopped": "healthy"}})
    assert code == cli.OK and "healed by plugins" in rows[1] and "bad-plugin" in rows[1] and "plugins (9.8)" in rows[1]
    assert "undo: ansible-playbook playbooks/rollback-502.yml" in rows[2]
    _rows, code = cli.emergency_table({"wp1": healed, "wp3": {"top_cause": "oom", "next_step": "add memory", "rungs": []}})
    assert code == cli.UNHEALTHY
    rows, code = cli.emergency_table({"wp3": {"top_cause": "oom"}, "wp4": {"unreachable": "ssh: timed out"}})
    assert code == cli.FAILED and any("ssh: timed out" in r for r in rows)


def test_audit_table_exit_code_says_whether_a_host_is_unhealthy():
    rows, code = cli.audit_table({"verdicts": {"wp1": "fpm_down", "wp2": "healthy"}, "unhealthy": ["wp1"],
                                  "statuses": {"ok": 2}, "report_dir": "/r"})
    # A summary without sites (older wp502): one row per host, site "-".
    assert code == cli.UNHEALTHY and rows[1].split() == ["wp1", "-", "fpm_down", "502s:", "run", "the", "emergency"]
    assert rows[2].split() == ["wp2", "-", "healthy", "ok"] and "report: /r/report.html" in rows[-1]
    assert cli.audit_table({"verdicts": {"wp2": "healthy"}, "unhealthy": []})[1] == cli.OK


def test_the_installed_command_works_from_a_shell_without_the_venv_on_path(tmp_path):
    """README writes `.venv/bin/wp502 audit`: it must find ansible-playbook beside itself (it exited 127)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "wp502"
    if not script.exists():
        pytest.skip("the wp502 console script is installed by `make venv`")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all: {children: {wordpress: {hosts: {}}}}\n")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    proc = subprocess.run([str(script), "audit", "-i", str(inventory)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == cli.OK, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "no host matched" in proc.stdout  # ansible-playbook really ran the audit


def test_audit_table_has_a_row_per_site():
    rows, code = cli.audit_table({
        "verdicts": {"wp1": "slow_plugin", "wp2": "healthy", "ghost": None}, "unhealthy": ["wp1"],
        "sites": {"wp1": [{"site": "sitea.test", "top_cause": "healthy", "failing": False},
                          {"site": "siteb.test", "top_cause": "slow_plugin", "failing": True},
                          {"site": "sitec.test", "top_cause": "capacity", "failing": False}],
                  "wp2": [{"site": "/var/www/html", "top_cause": "healthy", "failing": False}], "ghost": []},
        "statuses": {"ok": 2, "unreachable": 1}, "report_dir": "/r"})
    assert code == cli.UNHEALTHY
    # The report's order: the unhealthy host first, the others as given.
    assert [r.split()[:3] for r in rows[1:-1]] == [
        ["wp1", "sitea.test", "healthy"], ["wp1", "siteb.test", "slow_plugin"],
        ["wp1", "sitec.test", "capacity"], ["wp2", "/var/www/html", "healthy"], ["ghost", "-", "-"]]
    assert rows[5].endswith("not audited") and rows[2].endswith("502s: run the emergency") and rows[1].endswith(" ok")
    assert rows[3].endswith("answers (see the report)")


def em_site(sid, before, after, healed_by=None, culprits=(), **extra):
    return dict({"site": sid, "before": before, "after": after, "answering_before": before == "200",
                 "answering_after": after == "200", "top_cause": "slow_plugin", "healed_by": healed_by,
                 "culprits": list(culprits), "state": "?"}, **extra)


def test_emergency_table_has_a_row_per_site_and_a_broken_site_fails_the_run():
    healed = {"top_cause": "slow_plugin", "rungs": [{"rung": "plugins", "seconds": 9.8}],
              "sites": [em_site("sitea.test", "200", "200"), em_site("siteb.test", "502", "200", "plugins", ["wp502-fault-slow"]),
                        em_site("sitec.test", "500", "200", "restart_db")]}
    rows, code = cli.emergency_table({"wp1": healed})
    assert code == cli.OK
    assert rows[1].split()[:3] == ["wp1", "3", "sites"] and "healed" in rows[1] and "plugins (9.8)" in rows[1]
    assert rows[2].split() == ["wp1", "sitea.test", "slow_plugin", "answers", "-"]
    assert rows[3].split() == ["wp1", "siteb.test", "slow_plugin", "healed", "by", "plugins", "wp502-fault-slow"]
    assert rows[4].split()[:6] == ["wp1", "sitec.test", "slow_plugin", "healed", "by", "restart_db"]
    assert rows[5].strip() == "healed 2 of 2 failing sites: siteb.test by plugins (culprit wp502-fault-slow), sitec.test by restart_db"
    # A rung healed B and broke A: the host is not ok, the run exits 1, the table names A.
    broke = dict(healed, sites=[em_site("sitea.test", "200", "502"), em_site("siteb.test", "502", "200", "plugins")],
                 next_step="roll back: ansible-playbook playbooks/rollback-502.yml -l wp1")
    rows, code = cli.emergency_table({"wp1": broke})
    assert code == cli.UNHEALTHY and "NOT ok: a site broke" in rows[1] and "BROKE (200 -> 502)" in rows[2]
    assert sum("next: roll back" in r for r in rows) == 1
    cdn = {"top_cause": "healthy", "stopped": "cdn_only", "rungs": [],
           "sites": [em_site("sitec.test", "200", "200", state="cdn_only", cdn="cloudflare", ray_id="8f1c-AMS")]}
    rows, code = cli.emergency_table({"wp1": cdn})
    assert code == cli.UNHEALTHY and "stopped: cdn_only Ray ID 8f1c-AMS" in rows[2]
    assert rows[3].strip() == "cdn_only: sitec.test fails only through cloudflare (Ray ID 8f1c-AMS)"


def fleet_stats(n, every=3):
    """An audit's set_stats (wp502_audit) for n hosts, two sites each, every ``every``-th host unhealthy, in the
    report's order (unhealthy first) as the role publishes it."""
    hosts = [f"web{i:04d}" for i in range(n)]
    bad = [h for i, h in enumerate(hosts) if i % every == 0]
    order = bad + [h for h in hosts if h not in bad]
    return {"verdicts": {h: "slow_plugin" if h in bad else "healthy" for h in order}, "unhealthy": sorted(bad),
            "sites": {h: [{"site": "sitea.test", "top_cause": "healthy", "failing": False},
                          {"site": "siteb.test", "top_cause": "slow_plugin" if h in bad else "healthy", "failing": h in bad}]
                      for h in hosts},
            "statuses": {"ok": n}, "report_dir": "/r/audit-1"}, bad


def test_the_audit_table_is_bounded_whatever_the_fleet_size():
    """300 hosts (100 unhealthy): 20 hosts by default, unhealthy first, then how many more the report holds and where;
    3000 hosts print as many lines; --show 0 prints every host."""
    stats, bad = fleet_stats(300)
    rows, code = cli.audit_table(stats)
    assert code == cli.UNHEALTHY
    assert len(rows) == 1 + 20 * 2 + 2  # the header, 20 hosts of two sites each, statuses, the last line
    assert [r.split()[0] for r in rows[1:-2:2]] == bad[:20]  # the unhealthy hosts first, in the report's order
    assert rows[-2] == "statuses: {'ok': 300}"
    assert rows[-1] == "... and 280 more hosts (80 unhealthy) in the report: /r/audit-1/report.html (--show 0 lists every host)"
    assert len(cli.audit_table(fleet_stats(3000)[0])[0]) == len(rows)
    assert cli.audit_table(stats, 5)[0][-1].startswith("... and 295 more hosts (95 unhealthy) in the report: ")
    every, code = cli.audit_table(stats, 0)
    assert code == cli.UNHEALTHY and len(every) == 1 + 300 * 2 + 1
    assert sorted({r.split()[0] for r in every[1:-1]}) == sorted(stats["sites"])
    assert every[-1] == "statuses: {'ok': 300}; report: /r/audit-1/report.html"
    # A report of no more hosts than the bound: every host, no "more" line, as before.
    small, _code = cli.audit_table(fleet_stats(20)[0])
    assert len(small) == 1 + 20 * 2 + 1 and small[-1].endswith("report: /r/audit-1/report.html")


def test_show_is_an_option_of_audit_and_merge_beside_the_host_limit(capsys):
    args = cli.build_parser().parse_args(["audit", "-l", "wp1", "--show", "0"])
    assert (args.limit, args.show) == ("wp1", 0)
    assert cli.build_parser().parse_args(["report", "merge", "a", "-o", "b", "--show", "50"]).show == 50
    assert cli.build_parser().parse_args(["audit"]).show is None  # the bound's default (20)
    assert cli.main(["audit", "--show", "-1"]) == cli.USAGE
    assert "a number of hosts, 0 for all" in capsys.readouterr().err


def test_report_merge_prints_a_bounded_table(tmp_path, capsys):
    """wp502 report merge of a 300-host report: 20 hosts in the table, the count of the others and the merged
    report's path; --show 0 prints them all."""
    import json

    hosts = tmp_path / "audit-20261201T200000Z" / "hosts"
    hosts.mkdir(parents=True)
    for i in range(300):
        cause = "fpm_down" if i % 4 == 1 else "healthy"
        site = {"id": "sitea.test", "top_cause": cause, "failing": cause != "healthy", "verdict": [{"cause": cause}]}
        (hosts / f"web{i:03d}.json").write_text(json.dumps({"verdict": [{"cause": cause}], "sites": [site],
                                                            "fpm": {"pools": [{"name": "www"}]}, "wordpress": [{}]}))
    out = tmp_path / "fleet"
    assert cli.main(["report", "merge", str(hosts.parent), "-o", str(out)]) == cli.UNHEALTHY
    said = capsys.readouterr().out.splitlines()
    assert said[0] == f"merged 300 hosts from 1 report directories into {out}"
    table = said[1:]
    assert len(table) == 1 + 20 + 2
    assert [r.split()[:3] for r in table[1:3]] == [["web001", "sitea.test", "fpm_down"], ["web005", "sitea.test", "fpm_down"]]
    assert table[-1] == f"... and 280 more hosts (55 unhealthy) in the report: {out}/report.html (--show 0 lists every host)"
    assert cli.main(["report", "merge", str(hosts.parent), "-o", str(out), "--force", "--show", "0"]) == cli.UNHEALTHY
    every = capsys.readouterr().out.splitlines()[1:]
    assert len(every) == 1 + 300 + 1 and every[-1].endswith(f"report: {out}/report.html")
    assert json.loads((out / "summary.json").read_text())["hosts"] == 300  # the report has every host either way
