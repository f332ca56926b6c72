#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: wp502_run
short_description: Lock a host for an emergency run, guard against remediation storms, and roll a run back
description:
  - The host side of the emergency run's safety net, kept under O(state_dir) (default C(/var/lib/wp502)).
  - C(state=locked) takes the host for O(run_id). The lock belongs to exactly one run id (give each run a unique
    one, such as C(20261201T213005-wp1-3f9a2c)); it is taken atomically, so of two runs locking a host at the same
    moment exactly one wins, and it records where the run comes from (O(owner)), when it started and its last
    heartbeat. A second run refuses while the first is alive, with a message naming the run holding the host, since
    when, from which controller and user, its last heartbeat, and what to do. A lock whose heartbeat is older than
    O(stale_minutes) belongs to a dead run and is taken over (reported in RV(recovered)); of two runs taking over
    the same dead lock, exactly one wins. The same run id held from another controller or user refuses too (two
    runs given one id). A refused run writes nothing under O(state_dir). Storm control refuses a new run when the
    last one on this host ended less than O(storm_minutes) ago, unless O(force).
  - C(state=unlocked) releases the lock of O(run_id), records when the run ended, and keeps O(result) beside the
    run's journal (C(runs/RUN_ID/result.json)), so that the host itself tells what the last run did.
  - C(state=rolled_back) undoes, latest first, every change the journal of O(run_id) (default the last run) still
    holds in effect (only those of O(step) when given), file by file and rename by rename, byte for byte. WordPress
    plugin lists (C(active_plugins), C(active_sitewide_plugins)) kept in the journal are written back exactly,
    through the database client and the credentials of the site's wp-config.php. It refuses while a step of that
    run is still working on the host (a run whose controller was killed, say).
  - C(state=restarted) and C(state=reloaded) restart or reload the systemd units in O(services), in one round trip
    for all of them. A unit that systemd's start limit refuses (C(start-limit-hit)) is started once more after
    C(systemctl reset-failed); a reload of a unit that is not running starts it (as M(ansible.builtin.systemd_service)
    does); each command has the deadline O(service_timeout). Then, with O(wait_for), it waits up to O(wait_timeout)
    seconds for the addresses the units serve (PHP-FPM pools' sockets and ports, the database's socket) to listen
    again. A unit that could not be restarted or reloaded fails the task, with RV(services) saying which and why.
  - With O(probe), once every unit is back, every site is asked in the same round trip, exactly as
    C(wp502_probe) asks them with O(probe.sites), and RV(probe) is what C(wp502_probe) would return, so that the
    emergency's restart and reload rungs act and check in one round trip.
  - With O(release) as well, when that probe's judgement says the action healed (every site that failed answers
    and every site that answered still does), the run ends in the same round trip, as C(state=unlocked) would end
    it. The rung is recorded, the run's result worked out (the same code the controller's role uses) and kept as
    C(result.json), and the lock released (RV(released)). Otherwise nothing of the run changes.
  - C(state=status) reports the lock, the last run and its journal without changing anything.
version_added: "0.1.0"
author:
  - wp502 contributors (@wp502)
options:
  state:
    description: What to do.
    type: str
    choices: [locked, unlocked, rolled_back, restarted, reloaded, status]
    default: status
  run_id:
    description:
      - The run's id (letters, digits, dashes, dots, underscores). Required for C(locked) and C(unlocked);
        C(rolled_back) defaults to the last run on the host.
    type: str
  state_dir:
    description: Where locks, journals and backups live on the host.
    type: path
    default: /var/lib/wp502
  stale_minutes:
    description: A lock without a heartbeat for this long belongs to a dead run.
    type: int
    default: 15
  storm_minutes:
    description: Refuse a new run this soon after the last one ended (0 turns storm control off).
    type: int
    default: 10
  force:
    description: Take a live lock or ignore storm control. Only after checking the other run is gone.
    type: bool
    default: false
  step:
    description: With C(state=rolled_back), undo only the changes of this step (a rung that failed its probe).
    type: str
  result:
    description: With C(state=unlocked), the run's outcome, kept on the host beside its journal as C(result.json).
    type: dict
  storm:
    description:
      - With C(state=unlocked), whether this run counts for storm control (O(storm_minutes)). A run that changed
        nothing on the host (no rung acted) passes C(false), so that it does not hold off the next run.
    type: bool
    default: true
  services:
    description: With C(state=restarted) or C(state=reloaded), the systemd units to act on, in this order.
    type: list
    elements: str
  service_timeout:
    description: Deadline (seconds) of each C(systemctl) command; a unit still starting or stopping then fails.
    type: int
    default: 120
  wait_for:
    description:
      - With C(state=restarted) or C(state=reloaded), the addresses to wait for after the units are back, each a unix
        socket (O(wait_for[].path), which must exist) or a TCP address (O(wait_for[].host), O(wait_for[].port), which
        must accept a connection). Not listening in time is reported in RV(waited), not a failure; the HTTP probe
        that follows decides whether the sites answer.
    type: list
    elements: dict
    suboptions:
      path:
        description: A unix socket.
        type: path
      host:
        description: A TCP address's host (a wildcard address is asked on the loopback).
        type: str
      port:
        description: A TCP address's port.
        type: int
  wait_timeout:
    description: How long, in seconds, to wait for all of O(wait_for).
    type: float
    default: 10
  probe:
    description:
      - With C(state=restarted) or C(state=reloaded), the sites to ask once every unit is back (not in check mode,
        and not when a unit failed), as C(wp502_probe) asks them; see its options of the same names.
    type: dict
    suboptions:
      sites:
        description: Every site of the host, each a dict with C(id), C(host) or C(probe_host), C(port), C(scheme), C(url).
        type: list
        elements: dict
        required: true
      answering:
        description: The ids of the sites that answered before; the result then has a C(judgement).
        type: list
        elements: str
      expect:
        description: With O(probe.answering), the ids of the sites the action is meant to heal.
        type: list
        elements: str
      paths:
        description: Paths that must all answer.
        type: list
        elements: str
        default: [/, /wp-login.php]
      deadline:
        description: Seconds each path has to answer.
        type: float
        default: 5
      accept:
        description: Status codes that count as healthy.
        type: list
        elements: int
        default: [200]
      cookie_paths:
        description: Paths whose answer must also set a cookie.
        type: list
        elements: str
        default: [/wp-login.php]
      retries:
        description: How many more times to ask while the sites do not answer as they should.
        type: int
        default: 0
      delay:
        description: Seconds between two tries.
        type: float
        default: 2
  release:
    description:
      - With C(state=restarted) or C(state=reloaded) and O(probe), end the run on the host when the probe says the
        action healed (see the description). The emergency role passes it from its restart and reload rungs.
    type: dict
    suboptions:
      run:
        description:
          - The run so far, as the role keeps it (C(run_id), C(state_dir), C(host), C(locked), C(rungs), C(sites),
            C(baseline), C(site_probes), C(answering), ...; see C(wp502_outcome.run_result)). Nothing happens unless
            C(locked) is true and C(run_id) holds the lock.
        type: dict
        required: true
      rung:
        description: This rung's name (C(restart_fpm)).
        type: str
        required: true
      step:
        description: The ladder's step this action is (C(step), C(sites), C(cause)).
        type: dict
        required: true
      elapsed:
        description: Seconds the step had taken on the controller before this round trip (the rung's time adds this one).
        type: float
        default: 0
  owner:
    description:
      - With C(state=locked), where the run comes from, recorded in the lock and named in the refusal another run
        gets. Keys left out are taken, where possible, from the environment on the host (the SSH client's address
        for O(owner.controller), C(SUDO_USER) for O(owner.user)).
      - A lock held by the same O(run_id) from another O(owner.controller) or O(owner.user) refuses.
    type: dict
    suboptions:
      controller:
        description: The controller's host name.
        type: str
      user:
        description: Who runs the playbook on the controller.
        type: str
      pid:
        description: The controller process running the playbook (C(ansible-playbook), C(ansible-runner)), when known.
        type: int
      host:
        description: This host's name in the controller's inventory, used in the rollback command of a refusal.
        type: str
attributes:
  check_mode:
    support: full
    description:
      - In check mode nothing is written; C(locked) still reports whether the lock could be taken, C(restarted) and
        C(reloaded) what they would do to each unit.
  diff_mode:
    support: none
    description: Locks and journals are the module's own state, not configuration.
notes:
  - Rollback restores files and renames itself; it does not reload services. The caller reloads what the run
    touched (RV(undone) lists the steps).
"""

EXAMPLES = r"""
- name: Take the host for this emergency run
  wp502_run:
    state: locked
    run_id: "{{ wp502_run_id }}"
    owner:
      controller: "{{ lookup('ansible.builtin.pipe', 'hostname') }}"
      user: "{{ lookup('ansible.builtin.env', 'USER') }}"
      host: "{{ inventory_hostname }}"

- name: Restart PHP-FPM, once more after reset-failed if its start limit refuses, and wait for its socket
  wp502_run:
    state: restarted
    services: [php8.2-fpm]
    wait_for:
      - path: /run/php/php8.2-fpm.sock

- name: Restart PHP-FPM and ask every site, in one round trip
  wp502_run:
    state: restarted
    services: [php8.2-fpm]
    probe:
      sites: "{{ wp502_evidence.probe.targets }}"
      answering: []
      expect: ["/var/www/wordpress"]
      retries: 3
  register: wp502_restart

- name: Put everything back from the last run
  wp502_run:
    state: rolled_back
  register: wp502_rollback

- name: Release the host
  wp502_run:
    state: unlocked
    run_id: "{{ wp502_run_id }}"
"""

RETURN = r"""
run_id:
  description: The run the action applied to.
  returned: always
  type: str
  sample: "20261123T214005-wp1"
lock:
  description: The lock on the host after the action (null when none).
  returned: always
  type: dict
  sample: {"run_id": "20261201T213005-wp1-3f9a2c", "token": "5be0c1d2e3f4a596", "pid": 4242,
           "owner": {"controller": "ops1", "user": "alice", "pid": 31337, "host": "wp1"},
           "started": 1796160605.1, "started_utc": "2026-12-01T21:30:05Z", "heartbeat": 1796160605.1}
recovered:
  description: The stale lock of a dead run that was taken over, if any.
  returned: when state is locked
  type: dict
last_run:
  description: The id of the last run on the host.
  returned: always
  type: str
undone:
  description: The journal entries rollback undid, latest first.
  returned: when state is rolled_back
  type: list
  elements: dict
restored_values:
  description:
    - Values the journal kept (name, exact previous value, where it lives) that were written back (in check mode,
      that would be).
    - Formerly C(values), a name ansible-core 2.21's validate-modules refuses.
  returned: when state is rolled_back
  type: list
  elements: dict
touched:
  description: What the undone changes touched (C(fpm), C(nginx), C(apache), C(plugins)).
  returned: when state is rolled_back
  type: list
  elements: str
reload:
  description:
    - The services to reload after the rollback, for the configuration files it put back and for the PHP files
      whose changing module named the PHP-FPM units that run them (the C(services) option of C(wp502_bom), for OPcache).
  returned: when state is rolled_back
  type: list
  elements: str
  sample: [php8.2-fpm, nginx]
services:
  description: What was done to each unit of O(services) (in check mode, what would be).
  returned: when state is restarted or reloaded
  type: list
  elements: dict
  sample: [{"name": "php8.2-fpm", "action": "restart", "ok": true, "msg": "", "was": "failed", "seconds": 0.41}]
cautions:
  description: What an operator should know, such as a start limit that C(systemctl reset-failed) cleared.
  returned: when state is restarted or reloaded
  type: list
  elements: str
timed_out:
  description:
    - The units whose C(systemctl) command outlived O(service_timeout) (killed; systemd may still be working on them).
      The emergency ends its ladder on one, where a refused restart only means the rung did not heal.
  returned: when state is restarted or reloaded
  type: list
  elements: str
probe:
  description:
    - With O(probe), what C(wp502_probe) returns for O(probe.sites) (C(healthy), C(sites), C(tries), C(failing),
      C(not_asked), C(seconds), and C(judgement) with O(probe.answering)), asked once every unit was back.
  returned: when state is restarted or reloaded, O(probe) is given, every unit is back, and not in check mode
  type: dict
  sample: {"healthy": true, "tries": 1, "failing": [], "not_asked": [], "seconds": 0.31,
           "judgement": {"healed": true, "fixed": ["/var/www/wordpress"], "broke": [], "failing": [],
                         "answering": ["/var/www/wordpress"]}}
note:
  description: What the restart or reload did, in a line (the cautions, or why it failed), as the rung's note.
  returned: when state is restarted or reloaded
  type: str
released:
  description:
    - With O(release), when the probe said the action healed, C(released) (whether this run's lock was released)
      and C(result), the run's result as kept on the host in C(result.json), with its outcome (C(state), C(ok), C(line)).
  returned: when state is restarted or reloaded, O(release) is given and the probe said the action healed
  type: dict
  sample: {"released": true, "result": {"run_id": "20261201T213005-wp1-3f9a2c", "healed": true,
                                        "healed_by": "restart_fpm", "state": "healed", "ok": true}}
waited:
  description: Each address of O(wait_for), with C(ready) saying whether it listened within O(wait_timeout).
  returned: when state is restarted or reloaded
  type: list
  elements: dict
  sample: [{"path": "/run/php/php8.2-fpm.sock", "ready": true}]
journal:
  description: The journal entries of the run (latest state of each).
  returned: when state is status
  type: list
  elements: dict
"""

import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wp502_ask import ask_sites, probe_options
from ansible.module_utils.wp502_host import deadline_runner, which
from ansible.module_utils.wp502_journal import DEFAULT_STATE_DIR, RUN_ID, Journal, last_run, lock_options, take_host
from ansible.module_utils.wp502_outcome import run_result, rung_record
from ansible.module_utils.wp502_services import Units, wait_listening
from ansible.module_utils.wp502_wordpress import parse_wp_config
from ansible.module_utils.wp502_wpdb import DBError, WordPressDB


def _worker_alive(lock):
    pid = (lock or {}).get("worker")
    if not isinstance(pid, int) or pid <= 1:
        return None
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            cmdline = fh.read()
    except (IOError, OSError):
        return None
    return pid if b"python" in cmdline or b"ansible" in cmdline.lower() else None


def _restore_value(module, name, before, where):
    """Write a plugin list back, exactly, into the site's database."""
    import binascii

    if where.get("encoding") != "hex" or not where.get("config"):
        raise DBError("%s has no database to go back to in the journal" % name)
    with open(where["config"], "rb") as fh:
        cfg = parse_wp_config(fh.read().decode("utf-8", "replace"))
    client = which("mariadb", "mysql")
    if not client:
        raise DBError("no mysql or mariadb client on the host to write %s back" % name)
    password = cfg.pop("db_password", None)
    db = WordPressDB(deadline_runner(), client, cfg, password)
    db.set(where.get("list") or name, binascii.unhexlify(before))


def _touched(entries):
    """What to reload after undoing ``entries``: ``(kinds, units)``, kinds among fpm, nginx, apache,
    plugins, and the systemd units that serve the files touched."""
    kinds, units = [], []
    for e in entries:
        path = e.get("path") or ""
        kind = {"pool_limits": "fpm", "plugins": "plugins"}.get(e["step"])
        unit = None
        if e["step"] == "pool_limits":
            m = re.match(r"^/etc/php/(\d+\.\d+)/fpm/", path)
            unit = "php%s-fpm" % m.group(1) if m else "php-fpm"
        elif e["step"] == "frontend":
            kind = "apache" if "apache" in path or "httpd" in path else "nginx"
            unit = "nginx" if kind == "nginx" else ("apache2" if path.startswith("/etc/apache2/") else "httpd")
        if kind and kind not in kinds:
            kinds.append(kind)
        # What the changing module said must reload once this file is back (PHP-FPM after a PHP file, as
        # OPcache may still run the changed copy).
        for name in [unit, *(e.get("reload") or [])]:
            if name and name not in units:
                units.append(name)
    return kinds, units


def services(module, p):
    """Restart or reload every unit of ``services``, then wait for ``wait_for``; fails naming the units that did not come back."""
    if not 0 < p["service_timeout"] <= 3600 or not 0 <= p["wait_timeout"] <= 600:
        module.fail_json(msg="service_timeout must be 1-3600 s and wait_timeout 0-600 s")
    bad = [t for t in p["wait_for"] or [] if not t.get("path") and not (t.get("host") is not None and t.get("port"))]
    if bad:
        module.fail_json(msg="each wait_for entry needs a path, or a host and a port: %s" % bad)
    started = time.time()
    cautions = []
    units = Units(deadline_runner(), which("systemctl") or "systemctl", p["services"], [], cautions,
                  restart_timeout=p["service_timeout"])
    action = "restart" if p["state"] == "restarted" else "reload"
    done = [units.act(unit, action, check_mode=module.check_mode) for unit in p["services"]]
    targets = [dict((k, v) for k, v in t.items() if v is not None) for t in p["wait_for"] or []]
    waited = wait_listening(targets, p["wait_timeout"]) if targets and not module.check_mode else []
    result = {"changed": bool(done), "services": done, "waited": waited, "cautions": cautions,
              "timed_out": [d["name"] for d in done if d.get("timed_out")]}
    failed = [d for d in done if not d["ok"]]
    if failed:
        msg = "; ".join(d["msg"] for d in failed)
        module.fail_json(msg=msg, note=msg, **result)
    # The rung's note: what an operator should know of it.
    result["note"] = "; ".join(cautions) if action == "restart" or done else "nothing was running to reload"
    ask = p["probe"]
    if ask and not module.check_mode:
        try:
            result["probe"] = ask_sites(ask["sites"], ask["deadline"], accept=ask["accept"], cookie_paths=ask["cookie_paths"],
                                        paths=ask["paths"], retries=ask["retries"], delay=ask["delay"],
                                        answering=ask["answering"], expect=ask["expect"])
        except ValueError as exc:
            module.fail_json(msg="probe: %s" % exc, **result)
        if p["release"] and (result["probe"].get("judgement") or {}).get("healed"):
            result["released"] = end_healed_run(p["release"], result, time.time() - started)
    return result


def end_healed_run(release, result, seconds):
    """End a run that this restart or reload healed, in its round trip: the rung recorded and the result worked
    out as the role's tasks do (wp502_outcome), kept beside the journal, and the lock released. The role then
    skips its own release."""
    run = dict(release["run"])
    if not run.get("locked") or not run.get("run_id") or not RUN_ID.match(str(run["run_id"])):
        return {"released": False, "result": None}
    probe = result["probe"]
    judged = probe["judgement"]
    record = rung_record(release["rung"], release["step"], probe, changed=result["changed"],
                         seconds=float(release["elapsed"] or 0) + seconds, note=result["note"])
    site_probes = dict(run.get("site_probes") or {})
    site_probes.update(probe.get("sites") or {})
    run.update(rungs=[*(run.get("rungs") or []), record], healed=True, site_probes=site_probes,
               answering=judged.get("answering", run.get("answering")), finished_at=None)
    ended = run_result(run)
    journal = Journal(run["run_id"], run.get("state_dir") or DEFAULT_STATE_DIR)
    # Storm control counts runs that acted on the host (as the role's release: a rung that changed something).
    released = journal.end(ended, storm=any(r.get("changed") for r in ended["rungs"]))
    return {"released": released, "result": ended if released else None}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="status",
                       choices=["locked", "unlocked", "rolled_back", "restarted", "reloaded", "status"]),
            run_id=dict(type="str"),
            step=dict(type="str"),
            result=dict(type="dict"),
            storm=dict(type="bool", default=True),
            services=dict(type="list", elements="str"),
            service_timeout=dict(type="int", default=120),
            wait_for=dict(type="list", elements="dict", options=dict(
                path=dict(type="path"),
                host=dict(type="str"),
                port=dict(type="int"),
            )),
            wait_timeout=dict(type="float", default=10),
            probe=dict(type="dict", options=dict(sites=dict(type="list", elements="dict", required=True), **probe_options())),
            release=dict(type="dict", options=dict(
                run=dict(type="dict", required=True),
                rung=dict(type="str", required=True),
                step=dict(type="dict", required=True),
                elapsed=dict(type="float", default=0),
            )),
            **lock_options()
        ),
        required_if=[("state", "locked", ["run_id"]), ("state", "unlocked", ["run_id"]),
                     ("state", "restarted", ["services"]), ("state", "reloaded", ["services"])],
        supports_check_mode=True,
    )
    p = module.params
    if p["state"] in ("restarted", "reloaded"):
        module.exit_json(**services(module, p))
    state_dir = p["state_dir"]
    run_id = p["run_id"] or (last_run(state_dir) if p["state"] in ("rolled_back", "status") else None)
    if p["state"] == "rolled_back" and not run_id:
        module.fail_json(msg="no run to roll back: %s holds no journal (pass run_id)" % state_dir)
    if run_id and not RUN_ID.match(run_id):
        module.fail_json(msg="run_id %r must be letters, digits, dots, dashes or underscores" % run_id)
    result = {"changed": False, "run_id": run_id}
    journal = Journal(run_id, state_dir, stale_after=p["stale_minutes"] * 60) if run_id else None

    if p["state"] == "locked":
        got = take_host(run_id, state_dir, stale_minutes=p["stale_minutes"], storm_minutes=p["storm_minutes"],
                        force=p["force"], owner=p["owner"], check_mode=module.check_mode)
        if "msg" in got:
            module.fail_json(**got)
        module.exit_json(**got)
    elif p["state"] == "unlocked":
        if not module.check_mode:
            result["changed"] = journal.end(p["result"], storm=p["storm"])
        else:
            held = journal.read_lock()
            result["changed"] = bool(held and held.get("run_id") == run_id)
    elif p["state"] == "rolled_back":
        pending = [e for e in journal.entries() if e["state"] != "undone" and (p["step"] is None or e["step"] == p["step"])]
        values = [{"name": e["name"], "before": e["before"], "where": e.get("where") or {}} for e in pending if e["op"] == "value"]
        worker = _worker_alive(journal.read_lock()) if journal.holds_lock() else None
        if worker and not p["force"]:
            module.fail_json(msg="run %s is still working on this host (pid %d): wait for it to end, or kill it, then "
                                 "roll back" % (run_id, worker), run_id=run_id, lock=journal.read_lock())
        if module.check_mode:
            kinds, units = _touched(pending)
            result.update(changed=bool(pending), undone=pending, restored_values=values, touched=kinds, reload=units)
        else:
            kept = []

            def restore(name, before, where):
                _restore_value(module, name, before, where)
                kept.append({"name": name, "before": before, "where": where})

            try:
                undone = journal.rollback(restore_value=restore, step=p["step"])
            except (IOError, OSError, DBError, ValueError) as exc:
                module.fail_json(msg="rollback of %s stopped: %s; what was undone so far is journaled, run it again after "
                                     "fixing the cause" % (run_id, exc), run_id=run_id)
            kinds, units = _touched(undone)
            result.update(changed=bool(undone), undone=undone, restored_values=kept, touched=kinds, reload=units)
    else:
        result["journal"] = journal.entries() if journal else []
    result["lock"] = journal.read_lock() if journal else None
    result.setdefault("last_run", last_run(state_dir))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
