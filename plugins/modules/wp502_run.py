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
  - C(state=status) reports the lock, the last run and its journal without changing anything.
version_added: "0.1.0"
author:
  - wp502 contributors (@wp502)
options:
  state:
    description: What to do.
    type: str
    choices: [locked, unlocked, rolled_back, status]
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
    description: In check mode nothing is written; C(locked) still reports whether the lock could be taken.
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
journal:
  description: The journal entries of the run (latest state of each).
  returned: when state is status
  type: list
  elements: dict
"""

import json
import os
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wp502_host import deadline_runner, which
from ansible.module_utils.wp502_journal import RUN_ID, Journal, LockedError, ago, last_run, owner_from_env
from ansible.module_utils.wp502_wordpress import parse_wp_config
from ansible.module_utils.wp502_wpdb import DBError, WordPressDB


def _last_end(state_dir):
    try:
        with open(os.path.join(state_dir, "last_end"), "r") as fh:
            return json.load(fh)
    except (IOError, OSError, ValueError):
        return None



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
    db = WordPressDB(deadline_runner(module.run_command), client, cfg, password)
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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="status", choices=["locked", "unlocked", "rolled_back", "status"]),
            run_id=dict(type="str"),
            state_dir=dict(type="path", default="/var/lib/wp502"),
            stale_minutes=dict(type="int", default=15),
            storm_minutes=dict(type="int", default=10),
            force=dict(type="bool", default=False),
            step=dict(type="str"),
            result=dict(type="dict"),
            storm=dict(type="bool", default=True),
            owner=dict(type="dict", options=dict(
                controller=dict(type="str"),
                user=dict(type="str"),
                pid=dict(type="int"),
                host=dict(type="str"),
            )),
        ),
        required_if=[("state", "locked", ["run_id"]), ("state", "unlocked", ["run_id"])],
        supports_check_mode=True,
    )
    p = module.params
    state_dir = p["state_dir"]
    run_id = p["run_id"] or (last_run(state_dir) if p["state"] in ("rolled_back", "status") else None)
    if p["state"] == "rolled_back" and not run_id:
        module.fail_json(msg="no run to roll back: %s holds no journal (pass run_id)" % state_dir)
    if run_id and not RUN_ID.match(run_id):
        module.fail_json(msg="run_id %r must be letters, digits, dots, dashes or underscores" % run_id)
    result = {"changed": False, "run_id": run_id}
    journal = Journal(run_id, state_dir, stale_after=p["stale_minutes"] * 60) if run_id else None

    if p["state"] == "locked":
        held = journal.read_lock()
        owner = dict(owner_from_env(), **dict((k, v) for k, v in (p["owner"] or {}).items() if v not in (None, "")))
        ended = _last_end(state_dir)
        if (p["storm_minutes"] and not p["force"] and ended and ended.get("run_id") != run_id
                and time.time() - ended.get("at", 0) < p["storm_minutes"] * 60):
            module.fail_json(msg="run %s ended on this host %s ago: a new emergency run within %d minutes is refused "
                                 "(remediation storm). Look at that run's result (runs/%s/result.json under %s), or run "
                                 "again with -e wp502_emergency_force=true (module option force=true)."
                                 % (ended.get("run_id"), ago(time.time() - ended.get("at", 0)), p["storm_minutes"],
                                    ended.get("run_id"), state_dir),
                             lock=held, last_run=last_run(state_dir), run_id=run_id)
        if module.check_mode:
            why = journal.would_refuse(force=p["force"], owner=owner)
            if why:
                module.fail_json(msg=why, lock=held, run_id=run_id, last_run=last_run(state_dir))
            result.update(changed=not held or held.get("run_id") != run_id, lock=held, last_run=last_run(state_dir))
            module.exit_json(**result)
        try:
            got = journal.acquire(force=p["force"], owner=owner)
        except LockedError as exc:
            module.fail_json(msg=str(exc), lock=exc.holder, run_id=run_id, last_run=last_run(state_dir))
        except OSError as exc:
            module.fail_json(msg="cannot write the lock under %s: %s" % (state_dir, exc), run_id=run_id)
        result.update(changed=True, recovered=got["recovered"])
    elif p["state"] == "unlocked":
        if not module.check_mode:
            released = journal.release()
            if released and p["storm"]:
                data = json.dumps({"run_id": run_id, "at": time.time()}).encode()
                with open(os.path.join(state_dir, "last_end"), "wb") as fh:
                    fh.write(data)
                if p["result"] is not None:
                    with open(os.path.join(journal.run_dir, "result.json"), "w") as fh:
                        json.dump(p["result"], fh, indent=2, sort_keys=True, default=str)
            result["changed"] = released
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
