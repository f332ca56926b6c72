"""wp502: run the fleet audit, the emergency ladder or a rollback through ansible-runner (as AWX
does), with progress as the run goes and the verdict table at the end (a row per site under each host).

    wp502 audit      [-i INVENTORY] [-l LIMIT] [-e VAR=VALUE ...] [--check] [--show N]
    wp502 emergency  -l HOSTS [-i INVENTORY] [-e VAR=VALUE ...] [--check] [--diff] [--force]
    wp502 rollback   -l HOSTS [-i INVENTORY] [--run-id ID] [--check]
    wp502 report merge DIR... -o OUT [--force] [--title TITLE] [--show N]

The audit's table (and the merge's) shows N hosts, 20 by default, unhealthy first as the report
orders them, and says how many more the report holds and where it is: a fleet of 5000 hosts prints
as many lines as one of 50. --show 0 shows every host.

Exit status: 0 when nothing is left broken, 1 when a host is still unhealthy (audit: a host has a
cause of 502s; emergency: a host was not healed, i.e. one of its sites still fails or broke), 2 when
the run itself failed (a host unreachable or refused, a task failed), 64 for bad usage.
`wp502 report merge` exits as the audit does (1 when a merged host is unhealthy), and 2 when a report
directory cannot be read (missing, no hosts/, a corrupt JSON file) or OUT is not empty: then it
names what is wrong and writes nothing.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import ansible_runner
import yaml

PROJECT = Path(os.environ.get("WP502_PROJECT") or Path(__file__).resolve().parent.parent)
PLAYBOOKS = {"audit": "audit-502.yml", "emergency": "emergency-502.yml", "rollback": "rollback-502.yml"}
# Tasks that only talk to the controller: not worth a progress line.
QUIET_ACTIONS = {"ansible.builtin.set_fact", "set_fact", "ansible.builtin.include_tasks", "include_tasks",
                 "ansible.builtin.import_tasks", "ansible.builtin.include_role", "ansible.builtin.set_stats",
                 "ansible.builtin.validate_argument_spec", "validate_argument_spec", "ansible.builtin.debug", "debug"}
OK, UNHEALTHY, FAILED, USAGE = 0, 1, 2, 64
# Where ansible-playbook and its siblings are: beside the interpreter running this command (the
# virtualenv's bin/), whether or not that directory is on the caller's PATH.
BINDIR = Path(sys.executable).parent


def ansible_env() -> dict:
    """The environment for ansible-runner: this interpreter's bin/ first on PATH, so that
    `.venv/bin/wp502` works from any shell (ansible-runner looks ansible-playbook up on PATH)."""
    path = os.environ.get("PATH", "")
    parts = [p for p in path.split(os.pathsep) if p and Path(p) != BINDIR]
    return {"PATH": os.pathsep.join([str(BINDIR), *parts]), "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")}


def parse_extravars(pairs: list[str]) -> dict:
    """-e VAR=VALUE (VALUE read as YAML, so numbers and booleans keep their type), -e JSON, -e @FILE."""
    out: dict = {}
    for pair in pairs:
        if pair.startswith("@"):
            out.update(yaml.safe_load(Path(pair[1:]).read_text()) or {})
        elif pair.lstrip().startswith("{"):
            out.update(json.loads(pair))
        elif "=" in pair:
            key, value = pair.split("=", 1)
            out[key.strip()] = yaml.safe_load(value) if value else ""
        else:
            raise ValueError(f"-e {pair!r}: expected VAR=VALUE, a JSON object or @FILE")
    return out


class Progress:
    """Prints one line per task result on a host, and the outcome lines the playbooks print."""

    def __init__(self, out=sys.stdout):
        self.out = out
        self.started = time.monotonic()
        self.stats: dict = {}

    def __call__(self, event: dict) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind == "playbook_on_stats":
            self.stats = data.get("artifact_data") or {}
        elif kind.startswith("runner_on_") and kind != "runner_on_start":
            self.line(kind[len("runner_on_"):], data)
        elif kind == "playbook_on_no_hosts_matched":
            self.write(f"no host matched: {data.get('play', 'a play')} skipped")
        return True

    def line(self, state: str, data: dict) -> None:
        host, task, action = data.get("host", "?"), data.get("task", ""), data.get("task_action", "")
        res = data.get("res") or {}
        if action in ("ansible.builtin.debug", "debug") and host != "localhost" and state == "ok":
            msg = res.get("msg")
            if msg:
                self.write(f"{host:<14} {msg if isinstance(msg, str) else json.dumps(msg)}")
            return
        if action in QUIET_ACTIONS or state == "skipped" or host == "localhost":
            return
        status = "changed" if state == "ok" and res.get("changed") else state
        if state in ("failed", "unreachable"):
            status = f"{state.upper()}: {str(res.get('msg', ''))[:160]}"
            if data.get("ignore_errors"):
                status += " (ignored)"
        self.write(f"{host:<14} {task[:70]:<70} {status}")

    def write(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=self.out, flush=True)


def audit_table(summary: dict, show: int | None = None) -> tuple[list[str], int]:
    """A row per site under each host (host, site, top cause, state); a host whose summary has no
    sites (older wp502, or not audited) has one row with site "-". The hosts in the report's order
    (unhealthy first), at most ``show`` of them (None: the report filter's BOUNDED_HOSTS, as the
    audit's console; 0: all), then how many more the report holds and its path. The exit status is
    every host's, shown or not."""
    filters = _report_filters()
    unhealthy = set(summary.get("unhealthy") or [])
    sites = summary.get("sites") or {}
    verdicts = summary.get("verdicts") or {}
    # The order and the cut are the report filter's (the summary's rows, the audit's console): one decision.
    hosts = [r["host"] for r in filters.wp502_unhealthy_first({"host": h, "top_cause": c} for h, c in verdicts.items())]
    shown, more = filters.wp502_bounded(hosts, filters.BOUNDED_HOSTS if show is None else show or None)
    rows = [f"{'host':<14} {'site':<24} {'top cause':<18} state"]
    for host in shown:
        cause = verdicts[host]
        if not sites.get(host):
            state = "502s: run the emergency" if host in unhealthy else ("not audited" if cause is None else "ok")
            rows.append(f"{host:<14} {'-':<24} {cause or '-':<18} {state}")
            continue
        for site in sites[host]:
            if site.get("failing"):
                state = "502s: run the emergency"
            elif site.get("top_cause") not in (None, "healthy"):
                state = "answers (see the report)"
            else:
                state = "ok"
            rows.append(f"{host:<14} {site.get('site') or '-':<24} {site.get('top_cause') or '-':<18} {state}")
    report = f"{summary.get('report_dir')}/report.html"
    if more:
        left = sum(1 for h in hosts[len(shown):] if h in unhealthy)
        rows.append(f"statuses: {summary.get('statuses')}")
        rows.append(f"... and {more} more host{'s' if more != 1 else ''} ({left} unhealthy) in the report: {report} "
                    "(--show 0 lists every host)")
    else:
        rows.append(f"statuses: {summary.get('statuses')}; report: {report}")
    return rows, UNHEALTHY if unhealthy else OK


@functools.cache
def _report_filters():
    spec = importlib.util.spec_from_file_location("wp502_report", PROJECT / "plugins" / "filter" / "wp502_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcome(result: dict) -> dict:
    """The host's outcome as the playbook decided it, or as the same filter decides it for older results."""
    if "state" in result and "ok" in result:
        return result
    return {**result, **_report_filters().wp502_emergency_outcome(result)}


class MergeError(Exception):
    """A report directory that cannot be merged, or an OUT that must not be written (exit 2)."""


_AUDIT_DIR_TIME = re.compile(r"(\d{8}T\d{6}Z)$")


def _parse_time(text) -> float | None:
    """Unix time of an ISO-8601 timestamp (``collected_at``, ``2026-12-01T21:30:05Z``), or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _dir_time(directory: Path) -> float:
    """When a report directory was written: the time in its name (the role names it
    ``audit-YYYYmmddTHHMMSSZ``), else its summary.json's mtime, else its own mtime."""
    named = _AUDIT_DIR_TIME.search(directory.name)
    if named:
        try:
            return datetime.strptime(named.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            pass  # not a time after all (month 13, say): the files' times then
    summary = directory / "summary.json"
    return (summary if summary.is_file() else directory).stat().st_mtime


def _load_json(path: Path, keep: dict | None = None):
    """The JSON in ``path`` (its text kept in ``keep["text"]`` when given)."""
    try:
        text = path.read_text(encoding="utf-8")
        if keep is not None:
            keep["text"] = text
        return json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MergeError(f"{path}: not readable JSON ({exc})") from exc


def read_report_dir(directory: Path) -> dict:
    """The hosts of one audit report directory (as roles/wp502_report writes it):
    ``{host: {"evidence", "status", "time", "path", "text"}}``. ``evidence`` is None for a host the audit
    could not collect (its file says ``collected: false``); its status (unreachable or failed) is
    the directory's summary.json's. Every corrupt file is named in one MergeError."""
    if not directory.is_dir():
        raise MergeError(f"{directory}: no such report directory")
    hosts_dir = directory / "hosts"
    if not hosts_dir.is_dir():
        raise MergeError(f"{directory}: not an audit report (no hosts/ directory; a report directory is "
                         "one audit-YYYYmmddTHHMMSSZ under wp502_report_dir)")
    errors, statuses = [], {}
    if (directory / "summary.json").is_file():
        try:
            summary = _load_json(directory / "summary.json")
            statuses = {r.get("host"): r.get("status") for r in summary.get("rows") or [] if isinstance(r, dict)}
        except MergeError as exc:
            errors.append(str(exc))
        except AttributeError:
            errors.append(f"{directory / 'summary.json'}: not a wp502 summary (no rows)")
    when = _dir_time(directory)
    out = {}
    for path in sorted(hosts_dir.glob("*.json")):
        kept: dict = {}
        try:
            evidence = _load_json(path, kept)
        except MergeError as exc:
            errors.append(str(exc))
            continue
        if not isinstance(evidence, dict):
            errors.append(f"{path}: not a host's evidence (a JSON object)")
            continue
        collected = evidence.get("collected", True) is not False
        status = "unreachable" if statuses.get(path.stem) == "unreachable" else "failed"
        out[path.stem] = {"evidence": evidence if collected else None, "status": None if collected else status,
                          "time": (_parse_time(evidence.get("collected_at")) or when) if collected else when,
                          "path": path, "text": kept["text"]}
    if errors:
        raise MergeError("\n".join(errors))
    return out


def _host_key(host: str):
    """Hosts in natural order (wp2 before wp10)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", host) if part]


def merge_reports(directories: list[Path]) -> dict:
    """Per host, the newest collected evidence across the report directories (its ``collected_at``,
    else its directory's time; a tie goes to the directory named later). A host no directory could
    collect keeps the newest directory's status for it. Returns each host's winner (as read_report_dir
    gives it), hosts in natural order. Every unreadable directory and file is named in one MergeError."""
    errors, chosen = [], {}
    for directory in directories:
        try:
            hosts = read_report_dir(directory)
        except MergeError as exc:
            errors.append(str(exc))
            continue
        for host, entry in hosts.items():
            best = chosen.get(host)
            rank = (entry["evidence"] is not None, entry["time"])
            if best is None or rank >= (best["evidence"] is not None, best["time"]):
                chosen[host] = entry
    if errors:
        raise MergeError("\n".join(errors))
    return {host: chosen[host] for host in sorted(chosen, key=_host_key)}


def _nice_json(data) -> str:
    """As Ansible's to_nice_json writes it (the role's summary.json)."""
    return json.dumps(data, indent=4, sort_keys=True, separators=(",", ": "))


def _write_atomic(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=".wp502-", dir=target.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp_path, 0o644)
    os.rename(tmp_path, target)


def report_merge(directories: list[str], out: str, force: bool = False, title: str = "wp502 fleet audit",
                 show: int | None = None) -> int:
    """wp502 report merge: one fleet report in OUT from several audit report directories, the
    summary, Markdown, HTML and Prometheus files and each host's page computed by the role's own
    filters. Every input is read and checked before anything is written: an error writes nothing.
    The table printed shows ``show`` hosts (audit_table)."""
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise MergeError(f"{target}: exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise MergeError(f"{target}: exists and is not empty (--force replaces its report files)")
    chosen = merge_reports([Path(d) for d in directories])
    if not chosen:
        raise MergeError("no host in " + ", ".join(directories))
    filters = _report_filters()
    hostvars = {h: {"wp502_evidence_result": e["evidence"]} for h, e in chosen.items() if e["evidence"] is not None}
    unreachable = [h for h, e in chosen.items() if e["evidence"] is None and e["status"] == "unreachable"]
    failed = [h for h, e in chosen.items() if e["evidence"] is None and e["status"] != "unreachable"]
    summary = filters.wp502_fleet_summary(hostvars, list(chosen), unreachable, failed)
    now = time.time()
    when = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Each host's file as its audit wrote it.
    files = {f"hosts/{host}.json": entry["text"] for host, entry in chosen.items()}
    files.update({"summary.json": _nice_json(summary), "summary.md": filters.wp502_report_markdown(summary, title, when),
                  "report.html": filters.wp502_report_html(summary, title, when),
                  "wp502.prom": filters.wp502_report_prometheus(summary, now)})
    # Each host's own page, which report.html links to (hosts/<file>.html), as the role writes them.
    files.update(filters.wp502_host_pages(summary, title, when))
    if force and (target / "hosts").is_dir():
        # A forced merge replaces the report: hosts of the report it replaces (evidence, pages) do not linger.
        for stale in [*(target / "hosts").glob("*.json"), *(target / "hosts").glob("*.html")]:
            if f"hosts/{stale.name}" not in files:
                stale.unlink()
    for name, text in files.items():
        _write_atomic(target / name, text)
    print(f"merged {len(chosen)} hosts from {len(directories)} report directories into {target}")
    rows, code = audit_table({"verdicts": {r["host"]: r["top_cause"] for r in summary["rows"]},
                              "sites": filters.wp502_site_verdicts(summary), "unhealthy": summary["unhealthy"],
                              "statuses": summary["statuses"], "report_dir": str(target)}, show)
    for row in rows:
        print(row)
    return code


_SITE_WORDS = {"healthy": "answers", "planned": "check mode: planned", "cdn_only": "stopped: cdn_only"}


def _site_outcome(site: dict) -> str:
    """A site's outcome in the table's words (the site's own state, decided by the report filter)."""
    state = site.get("state")
    if state == "healed":
        return f"healed by {site.get('healed_by')}" if site.get("healed_by") else f"healed ({site.get('after')})"
    if state == "broke":
        return f"BROKE ({site.get('before')} -> {site.get('after')})"
    if state == "not_healed":
        return f"NOT healed ({site.get('after') or 'no answer'})"
    return _SITE_WORDS.get(state, state or "?")


def emergency_table(results: dict) -> tuple[list[str], int]:
    """A row per host (its outcome, rungs) and, when its result has sites, a row per site under it
    (site, top cause, outcome, culprits). The exit status is the hosts' outcomes'."""
    rows = [f"{'host':<14} {'site':<24} {'top cause':<18} {'outcome':<28} {'culprits':<28} rungs (seconds)"]
    code = OK
    for host, given in sorted(results.items()):
        # The playbook decides the outcome (plugins/filter/wp502_report.py's wp502_emergency_outcome).
        r = _outcome(given or {})
        state = r["state"]
        if state in ("refused", "unreachable"):
            outcome, code = state, FAILED
        elif state == "healed":
            outcome = f"healed by {r.get('healed_by')}" if r.get("healed_by") else "healed"
        elif state == "healthy":
            outcome = "stopped: healthy"
        else:
            outcome = {"cdn_only": "stopped: cdn_only", "planned": "check mode: planned", "stopped": "NOT healed (stopped)",
                       "broke": "NOT ok: a site broke"}.get(state, "NOT healed")
        if not r.get("ok", False) and state not in ("refused", "unreachable"):
            code = max(code, UNHEALTHY)
        sites = _report_filters().wp502_emergency_sites(r) if r.get("sites") else []
        rungs = ", ".join(f"{x['rung']} ({x.get('seconds')})" for x in r.get("rungs") or []) or "-"
        where = f"{len(sites)} site{'s' if len(sites) != 1 else ''}" if sites else "-"
        rows.append(f"{host:<14} {where:<24} {r.get('top_cause') or '-':<18} {outcome:<28} "
                    f"{', '.join(r.get('culprits') or []) or '-':<28} {rungs}")
        for site in sites:
            extra = f" Ray ID {site['ray_id']}" if site.get("state") == "cdn_only" and site.get("ray_id") else ""
            rows.append(f"{host:<14} {site['site']:<24} {site.get('top_cause') or '-':<18} {_site_outcome(site) + extra:<28} "
                        f"{', '.join(str(c) for c in site.get('culprits') or []) or '-'}")
        # A host with sites: its outcome line names them (and may already say what to do next).
        said = r.get("line") or "" if sites else ""
        if said:
            rows.append(f"{'':<14} {said}")
        if not r.get("ok", False) and r.get("next_step") and state not in ("refused", "unreachable") \
                and f"next: {r['next_step']}" not in said:
            rows.append(f"{'':<14} next: {r['next_step']}")
        if r.get("refused") or r.get("unreachable"):
            rows.append(f"{'':<14} {r.get('refused') or r.get('unreachable')}")
        if r.get("rollback"):
            rows.append(f"{'':<14} undo: {r['rollback']}")
    return rows, code


def report_command(args) -> int:
    """wp502 report merge, its errors named on stderr (exit 2)."""
    try:
        return report_merge(args.dirs, args.output, force=args.force, title=args.title, show=args.show)
    except MergeError as exc:
        print(f"wp502 report merge: {exc}\nwp502 report merge: nothing written", file=sys.stderr)
    except OSError as exc:
        print(f"wp502 report merge: {exc}", file=sys.stderr)
    return FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wp502", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("audit", "read-only fleet audit with its report"),
                            ("emergency", "the emergency ladder, host by host"),
                            ("rollback", "undo an emergency run from its journal")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("-i", "--inventory", help="inventory (default: ansible.cfg's, the lab)")
        p.add_argument("-l", "--limit", required=name != "audit", help="hosts (a pattern, as ansible-playbook -l)")
        p.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VAR=VALUE")
        p.add_argument("--check", action="store_true", help="change nothing, show what would be done")
        if name == "emergency":
            p.add_argument("--diff", action="store_true", help="show every file change")
            p.add_argument("--force", action="store_true", help="take a live lock or ignore storm control (after checking)")
        if name == "rollback":
            p.add_argument("--run-id", help="the run to undo (default: each host's last run)")
        if name == "audit":
            _show_argument(p)
    report = sub.add_parser("report", help="work on audit reports").add_subparsers(dest="report_command", required=True)
    merge = report.add_parser("merge", help="one fleet report from several audit report directories (AWX slices)")
    merge.add_argument("dirs", nargs="+", metavar="DIR", help="audit report directories (each with hosts/)")
    merge.add_argument("-o", "--output", required=True, metavar="OUT", help="directory to write the merged report into")
    merge.add_argument("--force", action="store_true", help="write into OUT even when it is not empty")
    merge.add_argument("--title", default="wp502 fleet audit", help="title of the Markdown and HTML pages")
    _show_argument(merge)
    return parser


def _show_argument(parser: argparse.ArgumentParser) -> None:
    """--show N: hosts in the table (not --limit, which is ansible-playbook's host pattern, -l)."""

    def count(text: str) -> int:
        value = int(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text}: a number of hosts, 0 for all")
        return value

    parser.add_argument("--show", type=count, default=None, metavar="N",
                        help="hosts in the table, unhealthy first (default 20; 0: every host); the report has them all")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return USAGE if exc.code else OK
    if args.command == "report":
        return report_command(args)
    return run_playbook(args)


def run_playbook(args) -> int:
    """wp502 audit, emergency or rollback: the playbook through ansible-runner, then its table."""
    try:
        extravars = parse_extravars(args.extra_vars)
    except (ValueError, OSError, yaml.YAMLError) as exc:
        print(f"wp502: {exc}", file=sys.stderr)
        return USAGE
    if args.command == "emergency" and args.force:
        extravars["wp502_emergency_force"] = True
    if args.command == "rollback" and args.run_id:
        extravars["wp502_run_id"] = args.run_id
    cmdline = " ".join(flag for flag, on in (("--check", args.check), ("--diff", getattr(args, "diff", False))) if on)
    progress = Progress()
    env = ansible_env()
    playbook_bin = BINDIR / "ansible-playbook"
    if not playbook_bin.exists():
        print(f"wp502: no ansible-playbook beside {sys.executable}: install wp502 with `make venv`", file=sys.stderr)
        return USAGE
    # ansible-runner finds ansible-playbook through this process's PATH.
    os.environ["PATH"] = env["PATH"]
    with tempfile.TemporaryDirectory(prefix="wp502-") as private:
        kwargs = {"private_data_dir": private, "project_dir": str(PROJECT), "playbook": f"playbooks/{PLAYBOOKS[args.command]}",
                  "extravars": extravars, "envvars": env,
                  "quiet": True, "event_handler": progress, "cmdline": cmdline or None}
        if args.inventory:
            kwargs["inventory"] = str(Path(args.inventory).resolve())
        if args.limit:
            kwargs["limit"] = args.limit
        runner = ansible_runner.run(**kwargs)
    print()
    code = OK
    if args.command == "audit" and "wp502_audit" in progress.stats:
        rows, code = audit_table(progress.stats["wp502_audit"], args.show)
    elif args.command == "emergency" and "wp502_emergency" in progress.stats:
        rows, code = emergency_table(progress.stats["wp502_emergency"])
    else:
        rows = []
    for row in rows:
        print(row)
    if runner.rc != 0 or runner.status != "successful":
        print(f"wp502 {args.command}: the run ended {runner.status} (rc {runner.rc})", file=sys.stderr)
        # emergency-502.yml fails each host left broken: the table already says which and why.
        return code if args.command == "emergency" and code != OK else FAILED
    return code
