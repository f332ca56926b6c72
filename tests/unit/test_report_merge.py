"""wp502 report merge: report directories of sliced (or repeated) audits, written as the report role
writes them, merged into one fleet report equal to the one a single audit would have written."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from wp502cli import main as cli

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "filter"))
import wp502_report as rep

CAUSES = ("healthy", "slow_plugin", "max_children", "healthy", "crashing_worker")


def evidence(i, collected_at="2026-12-01T20:00:00Z", cause=None):
    """A host's evidence (two sites, the second failing on unhealthy hosts), varied by ``i``."""
    cause = cause or CAUSES[i % len(CAUSES)]
    slug = f"plugin-{i % 3}" if cause != "healthy" else None
    top = {"cause": cause, "confidence": 0.5 + (i % 5) / 10, "evidence": [f"why {cause} on host {i}"],
           "rungs": ["plugins"], "site": "siteb"}
    if slug:
        top["slug"] = slug
    status = 200 if cause == "healthy" else 502

    def site(sid, failing, code):
        return {"id": sid, "names": [sid + ".example"], "docroot": "/var/www/" + sid, "pools": ["www"],
                "top_cause": "healthy" if not failing else cause, "failing": failing, "wordpress": True,
                "verdict": [top if failing else {"cause": "healthy", "confidence": 0.9}],
                "http": {"origin": {"/": {"status": code}, "/wp-login.php": {"status": code}}}}

    return {
        "collected_at": collected_at, "verdict": [top], "top_cause": cause,
        "sites": [site("sitea", False, 200), site("siteb", cause != "healthy", status)],
        "fpm": {"pools": [{"name": "www", "workers": 5, "pm.max_children": 5, "rss_p95": 80 << 20,
                           "recommendation": {"pm.max_children": 30, "basis": {"available_bytes": 3 << 30}}}]},
        "wordpress": [{"path": "/var/www/sitea"}],
        "logs": {"signatures": {"connect_unavailable": {"count": i % 4}},
                 "suspects": [{"type": "plugin", "slug": slug, "count": 3}] if slug else []},
        "peak_hours": {"by_hour": {"2026-12-01T19": i % 7}}, "frontend": {"kind": "nginx"},
    }


def nice(data):
    return json.dumps(data, indent=4, sort_keys=True, separators=(",", ": "))


def write_audit(directory, hostvars, hosts, unreachable=()):
    """A report directory as roles/wp502_report writes it (the same filters, the same files)."""
    (directory / "hosts").mkdir(parents=True)
    for host in hosts:
        result = (hostvars.get(host) or {}).get("wp502_evidence_result", {"collected": False})
        (directory / "hosts" / f"{host}.json").write_text(nice(result))
    summary = rep.wp502_fleet_summary(hostvars, hosts, list(unreachable), [])
    (directory / "summary.json").write_text(nice(summary))
    (directory / "summary.md").write_text(rep.wp502_report_markdown(summary, "t", "2026-12-01T20:00:00Z"))
    (directory / "report.html").write_text(rep.wp502_report_html(summary, "t", "2026-12-01T20:00:00Z"))
    (directory / "wp502.prom").write_text(rep.wp502_report_prometheus(summary, 0))
    return summary


def fleet(n=100, unreachable=("web007", "web042")):
    hosts = [f"web{i:03d}" for i in range(n)]
    hostvars = {h: {"wp502_evidence_result": evidence(i)} for i, h in enumerate(hosts) if h not in unreachable}
    return hosts, hostvars


def test_ten_slices_merge_into_the_summary_of_one_audit(tmp_path, capsys):
    hosts, hostvars = fleet()
    unreachable = ["web007", "web042"]
    whole = rep.wp502_fleet_summary(hostvars, hosts, unreachable, [])
    slices = []
    for k in range(10):
        part = hosts[k * 10:(k + 1) * 10]
        slices.append(tmp_path / f"audit-20261201T20{k:02d}00Z")
        write_audit(slices[-1], hostvars, part, [h for h in unreachable if h in part])
    out = tmp_path / "fleet"
    assert cli.main(["report", "merge", *map(str, reversed(slices)), "-o", str(out)]) == cli.UNHEALTHY

    merged = json.loads((out / "summary.json").read_text())
    assert merged == json.loads(json.dumps(whole))
    assert sorted(r["host"] for r in merged["rows"]) == hosts
    assert merged["statuses"] == {"ok": 98, "unreachable": 2}
    assert {r["host"]: r["top_cause"] for r in merged["rows"]} == {r["host"]: r["top_cause"] for r in whole["rows"]}
    assert sorted(p.name for p in (out / "hosts").glob("*.json")) == [f"{h}.json" for h in hosts]
    # Each host's page, which report.html links to, as the role writes them.
    assert sorted(p.name for p in (out / "hosts").glob("*.html")) == [f"{h}.html" for h in hosts]
    assert (out / "hosts" / "web003.json").read_text() == (slices[0] / "hosts" / "web003.json").read_text()
    assert "<html" in (out / "report.html").read_text()
    prom = (out / "wp502.prom").read_text()
    assert prom.count("wp502_audited{") == 100 and "wp502_audit_timestamp_seconds" in prom
    assert "web099" in (out / "summary.md").read_text()
    said = capsys.readouterr().out
    assert "merged 100 hosts from 10 report directories" in said and f"{out}/report.html" in said


def test_the_newest_evidence_of_a_host_wins(tmp_path):
    newer = tmp_path / "audit-20261201T210000Z"
    older = tmp_path / "audit-20261201T200000Z"
    # web1: collected_at decides (the directory named older holds the newer evidence).
    # web2: no collected_at, the directory's time decides. web3: evidence beats a newer "unreachable".
    write_audit(older, {"web1": {"wp502_evidence_result": evidence(1, "2026-12-01T22:00:00Z", "slow_plugin")},
                        "web2": {"wp502_evidence_result": dict(evidence(2, cause="healthy"), collected_at=None)},
                        "web3": {"wp502_evidence_result": evidence(3, cause="max_children")}},
                ["web1", "web2", "web3"])
    write_audit(newer, {"web1": {"wp502_evidence_result": evidence(1, "2026-12-01T21:00:00Z", "healthy")},
                        "web2": {"wp502_evidence_result": dict(evidence(2, cause="max_children"), collected_at=None)},
                        "web4": {"wp502_evidence_result": evidence(4, cause="healthy")}},
                ["web1", "web2", "web3", "web4"], unreachable=["web3"])
    out = tmp_path / "out"
    assert cli.main(["report", "merge", str(newer), str(older), "-o", str(out)]) == cli.UNHEALTHY
    rows = {r["host"]: r for r in json.loads((out / "summary.json").read_text())["rows"]}
    assert {h: r["top_cause"] for h, r in rows.items()} == {
        "web1": "slow_plugin", "web2": "max_children", "web3": "max_children", "web4": "healthy"}
    assert json.loads((out / "hosts" / "web1.json").read_text())["collected_at"] == "2026-12-01T22:00:00Z"


def test_a_host_no_slice_reached_stays_unreachable(tmp_path):
    write_audit(tmp_path / "a", {"web1": {"wp502_evidence_result": evidence(0, cause="healthy")}},
                ["web1", "web2"], unreachable=["web2"])
    out = tmp_path / "out"
    assert cli.main(["report", "merge", str(tmp_path / "a"), "-o", str(out)]) == cli.OK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["statuses"] == {"ok": 1, "unreachable": 1}


@pytest.mark.parametrize("name, text", [
    ("hosts/web013.json", '{"verdict": ['),  # cut short
    ("hosts/web014.json", "[]"),  # JSON, but no host's evidence
    ("hosts/web015.json", b"\xff\xfe{}"),  # not UTF-8
    ("summary.json", "{"),
])
def test_a_corrupt_file_is_named_and_nothing_is_written(tmp_path, capsys, name, text):
    hosts, hostvars = fleet(20, unreachable=())
    write_audit(tmp_path / "a", hostvars, hosts[:10])
    write_audit(tmp_path / "b", hostvars, hosts[10:])
    bad = tmp_path / "b" / name
    bad.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "out"
    assert cli.main(["report", "merge", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out)]) == cli.FAILED
    err = capsys.readouterr().err
    assert str(bad) in err and "nothing written" in err
    assert not out.exists()


@pytest.mark.parametrize("make, said", [
    (lambda d: None, "no such report directory"),
    (lambda d: d.mkdir(), "no hosts/ directory"),
])
def test_a_directory_that_is_no_report_is_refused(tmp_path, capsys, make, said):
    make(tmp_path / "x")
    assert cli.main(["report", "merge", str(tmp_path / "x"), "-o", str(tmp_path / "out")]) == cli.FAILED
    assert said in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_non_empty_out_is_refused_unless_forced(tmp_path, capsys):
    hosts, hostvars = fleet(3, unreachable=())
    write_audit(tmp_path / "a", hostvars, hosts)
    out = tmp_path / "out"
    (out / "hosts").mkdir(parents=True)
    (out / "hosts" / "gone.json").write_text("{}")
    (out / "hosts" / "gone.html").write_text("<p>gone</p>")
    args = ["report", "merge", str(tmp_path / "a"), "-o", str(out)]
    assert cli.main(args) == cli.FAILED
    assert "not empty" in capsys.readouterr().err and not (out / "summary.json").exists()
    assert cli.main([*args, "--force"]) == cli.UNHEALTHY
    assert sorted(p.name for p in (out / "hosts").iterdir()) == [
        "web000.html", "web000.json", "web001.html", "web001.json", "web002.html", "web002.json"]


def test_merge_needs_an_output():
    assert cli.main(["report", "merge", "somewhere"]) == cli.USAGE


ROOT = Path(__file__).resolve().parents[2]


def role_audits(tmp_path, hostvars, hosts, audits):
    """Reports written by the real code path, the wp502_report role (its summary filter and its wp502_write_report
    action) in one ansible-playbook on the controller: ``audits`` is ``[(report_dir, hosts, unreachable, failed)]``,
    each an include of the role as audit-502.yml's report task makes it. Returns each report's run directory."""
    import os
    import subprocess

    inventory = {"all": {"hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
                         "children": {"fleet": {"hosts": {h: hostvars.get(h, {}) for h in hosts}}}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    tasks = [{"name": f"audit {k}", "ansible.builtin.include_role": {"name": "wp502_report"},
              "vars": {"wp502_report_hosts": part, "wp502_report_unreachable": unreachable, "wp502_report_failed": failed,
                       "wp502_report_dir": str(directory), "wp502_report_set_stats": False}}
             for k, (directory, part, unreachable, failed) in enumerate(audits)]
    (tmp_path / "audits.yml").write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "inventory.json"),
                           str(tmp_path / "audits.yml")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = []
    for directory, *_rest in audits:
        (run,) = directory.iterdir()  # the role's audit-YYYYmmddTHHMMSSZ
        runs.append(run)
    return runs


def realistic_fleet(n):
    """n hosts named web1..webN (natural order, which is not the names' sorted order) with the evidence of
    evidence(): healthy hosts and four causes, culprits plugin-0..2, suspects and signatures shared across
    hosts; every 97th host also fails a site only through its CDN, every 61st site has a non-ASCII name; some
    hosts unreachable, some whose evidence task failed (neither has evidence)."""
    hosts = [f"web{i}" for i in range(1, n + 1)]
    unreachable = hosts[6::113]
    failed = hosts[40::331]
    hostvars = {}
    for i, host in enumerate(hosts):
        if host in unreachable or host in failed:
            continue
        ev = evidence(i, collected_at=f"2026-12-01T20:{i % 60:02d}:00Z")
        if i % 97 == 0:
            ev["sites"][0].update(failing=True, http=dict(ev["sites"][0]["http"], public={"/": {"status": 522}},
                                                          cdn="cloudflare", ray_id=f"8f1c{i}-AMS"))
        if i % 61 == 0:
            ev["sites"][1]["names"].append(f"café-{i}.example")
        hostvars[host] = {"wp502_evidence_result": ev}
    return hosts, hostvars, unreachable, failed


def test_ten_100_host_slices_written_by_the_role_merge_into_its_1000_host_report(tmp_path, capsys):
    """Issue #12: `wp502 report merge` of ten 100-host slices gives the report one 1000-host audit gives. Every report
    is written by the role itself (one 1000-host audit, ten slices dealt round robin as AWX's job slicing deals
    hosts), then merged by the real merge."""
    hosts, hostvars, unreachable, failed = realistic_fleet(1000)
    slices = [hosts[k::10] for k in range(10)]
    audits = [(tmp_path / "whole", hosts, unreachable, failed)] + [
        (tmp_path / f"slice{k}", part, [h for h in unreachable if h in part], [h for h in failed if h in part])
        for k, part in enumerate(slices)]
    whole, *parts = role_audits(tmp_path, hostvars, hosts, audits)
    out = tmp_path / "merged"
    assert cli.main(["report", "merge", *map(str, reversed(parts)), "-o", str(out)]) == cli.UNHEALTHY
    said = capsys.readouterr().out.splitlines()
    assert said[0] == f"merged 1000 hosts from 10 report directories into {out}" and len(said) < 60  # a bounded table

    # summary.json has no field that may differ (no time, no directory): the merged one is the whole audit's,
    # value for value (totals, rows and their order, groups with their keys and hosts), and byte for byte.
    expected = json.loads((whole / "summary.json").read_text())
    merged = json.loads((out / "summary.json").read_text())
    assert merged == expected
    assert (out / "summary.json").read_text() == (whole / "summary.json").read_text()
    # What the equality covers, said explicitly.
    assert merged["hosts"] == 1000 and merged["statuses"] == {"ok": 1000 - 12, "unreachable": 9, "failed": 3}
    assert [r["host"] for r in merged["rows"]] == [r["host"] for r in expected["rows"]]
    assert merged["rows"][0]["top_cause"] != "healthy" and merged["rows"][-1]["top_cause"] in ("healthy", None)
    assert [(g["key"], g["hosts"]) for g in merged["groups"]] == [(g["key"], g["hosts"]) for g in expected["groups"]]
    kinds = {g["key"]["kind"] for g in merged["groups"]}
    assert kinds == {"cause", "culprit", "signature", "suspect"} and len(merged["groups"]) >= 10
    assert merged["unhealthy"] == expected["unhealthy"] and len(merged["unhealthy"]) > 500

    # Each host's evidence file: as the audit that collected it wrote it.
    names = sorted(p.name for p in (whole / "hosts").glob("*.json"))
    assert len(names) == 1000 and sorted(p.name for p in (out / "hosts").glob("*.json")) == names
    assert all((out / "hosts" / name).read_bytes() == (whole / "hosts" / name).read_bytes() for name in names)

    # The pages and the metrics: the same but for when each report was generated (the one field that legitimately
    # differs: the audit's time in summary.md, report.html and every host page, and the timestamp sample of wp502.prom).
    def when(report):
        return re.search(r"^(\S+)\. 1000 hosts: ", (report / "summary.md").read_text(), re.M).group(1)

    def page(report, name):
        return (report / name).read_text().replace(when(report), "WHEN")

    pages = sorted(str(p.relative_to(whole)) for p in (whole / "hosts").glob("*.html"))
    assert len(pages) == 1000 and sorted(str(p.relative_to(out)) for p in (out / "hosts").glob("*.html")) == pages
    for name in ["summary.md", "report.html", *pages]:
        assert page(out, name) == page(whole, name), name

    def metrics(report):
        return [line for line in (report / "wp502.prom").read_text().splitlines() if not line.startswith("wp502_audit_timestamp_seconds ")]

    assert metrics(out) == metrics(whole)
