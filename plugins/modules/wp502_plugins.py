#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: wp502_plugins
short_description: Take WordPress plugins out until the site answers, and find the culprit by bisection
description:
  - The plugins rung of the emergency ladder, done on the host in one round trip.
  - Reads the exact bytes of C(active_plugins) (and C(active_sitewide_plugins) on multisite) with the host's
    C(mysql)/C(mariadb) client and the credentials of C(wp-config.php), and journals them before anything moves.
  - Installs a temporary must-use plugin that refuses every change to those lists, so that someone opening the
    Plugins screen meanwhile cannot make WordPress's C(validate_active_plugins()) drop plugins whose files are out.
  - Moves every active plugin out of the plugins directory (to C(plugins-off/RUN_ID) beside it, a directory of the
    run's own; every destination is checked before anything moves; WordPress skips an active
    plugin whose file is missing, whatever a persistent object cache holds; where a directory cannot be moved
    there, its plugin files are renamed in place to C(*.wp502-off)), restarts PHP-FPM (workers held by a
    hung plugin would fail any probe) and asks the site. If it answers, finds the culprit(s) by bisection (at most
    ceil(log2 n)+1 probes for one culprit among n plugins), puts every other plugin back, writes the lists back
    exactly minus the culprits, and leaves the culprits' files in C(plugins-off/RUN_ID).
  - A probe counts only while the pools it depends on are up, each service in O(fpm_services) active and each
    address in O(fpm_sockets) accepting a connection. A restart that systemd's start limit refuses
    (C(start-limit-hit)) is followed by C(systemctl reset-failed) and one more restart. A failed answer while the
    pools are down is not counted (FPM is reset and the site asked again); pools that stay down stop the rung.
  - If the site does not answer with every plugin out, puts everything back (plugins are not the cause).
  - A rung that cannot finish (pools that stay down, a move or the database failing, a command past its deadline,
    the probe budget spent) puts every plugin and the exact lists back, removes the guard only once the lists are
    whole again, and fails with C(restored), C(trail), C(cautions) and a message that says what state the site is in
    and gives the rollback command. It never returns C(healed=true) while a plugin other than a culprit is out.
  - Every command it runs (C(systemctl), the database client) has a deadline; one that outlives it is named in the
    failure.
  - Every move and value is journaled under O(state_dir) for O(run_id) before it happens; the run must hold the host
    (C(wp502_run) with C(state=locked)). C(wp502_run state=rolled_back) undoes it all.
version_added: "0.1.0"
author:
  - wp502 contributors (@wp502)
options:
  path:
    description: The WordPress root (where C(wp-config.php) is, or its parent directory holds it).
    type: path
    required: true
  run_id:
    description: The emergency run that holds the host; its journal records every change.
    type: str
    required: true
  state_dir:
    description: Where locks, journals and backups live on the host.
    type: path
    default: /var/lib/wp502
  host:
    description: Host header of the site's probe.
    type: str
    default: localhost
  port:
    description: Port of the origin's front-end on the host.
    type: int
    default: 80
  scheme:
    description: C(https) for an origin that only listens with TLS.
    type: str
    choices: [http, https]
    default: http
  paths:
    description: Paths that must answer 200 within O(deadline) for the site to count as healthy.
    type: list
    elements: str
    default: [/, /wp-login.php]
  deadline:
    description: Seconds each path has to answer.
    type: float
    default: 5
  cookie_paths:
    description: Paths whose answer must also set a cookie (see C(wp502_probe)).
    type: list
    elements: str
    default: [/wp-login.php]
  fpm_services:
    description:
      - PHP-FPM services to restart after a probe that failed, before the next one. Each must be active for a probe
        to count.
    type: list
    elements: str
    default: []
  fpm_sockets:
    description:
      - Addresses of the pools the site depends on, as FPM's C(listen) gives them (a unix socket path, C(host:port),
        C([v6]:port) or a port). Waited for after a restart; each must accept a connection for a probe to count.
    type: list
    elements: str
    default: []
  inventory_host:
    description: The host's name in the inventory, for the rollback command in messages (default, the host's name).
    type: str
  max_probes:
    description: Give up the bisection after this many probes (0 lets bisection take what it needs).
    type: int
    default: 0
  known_culprits:
    description:
      - Plugins (their directory or file name under the plugins directory, as RV(culprits) names them) found to be
        culprits on other hosts of the same incident. Those active here are taken out first, alone, with every other
        plugin active. If the site answers, the culprits among them are named (one probe more to confirm, a
        bisection among them when several), otherwise they go back and the normal bisection follows.
    type: list
    elements: str
    default: []
  step:
    description:
      - The journal step its moves and values are recorded under, so that C(wp502_run state=rolled_back step=...)
        undoes exactly this rung (the emergency gives each rung of a run its own, such as C(plugins-3)).
    type: str
    default: plugins
attributes:
  check_mode:
    support: full
    description: Lists the plugins that would be taken out; nothing moves and no probe is sent.
  diff_mode:
    support: full
    description: Shows the active plugin list before and after.
notes:
  - Runs on the WordPress host; needs the C(mysql) or C(mariadb) client. Without a database answer, every plugin
    on disk is a suspect and the lists are not written.
  - Must-use plugins and drop-ins are not taken out.
  - Overrides the start limit of O(fpm_services) (C(systemctl reset-failed)) when it refuses a restart the rung needs.
"""

EXAMPLES = r"""
- name: Find the plugin holding the workers
  wp502_plugins:
    path: /var/www/wordpress
    run_id: "{{ wp502_run_id }}"
    host: www.example.com
    fpm_services: [php8.2-fpm]
    fpm_sockets: [/run/php/php8.2-fpm.sock]
  register: wp502_plugins
"""

RETURN = r"""
healed:
  description: The site answers with the plugins now in place.
  returned: always
  type: bool
culprits:
  description: Plugins (directory or file names under the plugins directory) left out.
  returned: always
  type: list
  elements: str
  sample: [wp502-fault-slow]
known_culprit:
  description: True when a plugin of O(known_culprits), out alone, healed the site (no bisection was needed).
  returned: when a known culprit healed the site
  type: bool
  sample: true
culprit_files:
  description: The plugin files of the culprits, as the active list names them.
  returned: always
  type: list
  elements: str
suspects:
  description: The active plugins that were taken out at first.
  returned: always
  type: list
  elements: str
probes:
  description: How many probes the rung sent.
  returned: always
  type: int
trail:
  description: Each probe, with the plugins in place, whether the site answered, and how long it took.
  returned: always
  type: list
  elements: dict
moved_to:
  description: Where plugins taken out are kept (this run's directory under C(plugins-off)).
  returned: always
  type: str
  sample: /var/www/wordpress/wp-content/plugins-off/20261201T212000-wp1-1a2b3c4d
still_out:
  description: Plugins whose files are out at the end (the culprits on success; on failure, those that could not be
    put back).
  returned: when plugins were taken out, and on failure
  type: list
  elements: str
moved:
  description:
    - The renames that keep them out, C(from) and C(to). A directory that cannot be renamed into C(plugins-off)
      (another filesystem, an overlayfs lower layer) has its plugin files renamed in place to C(*.wp502-off).
  returned: when plugins were taken out
  type: list
  elements: dict
lists:
  description: Each plugin list before and after, as plugin files.
  returned: always
  type: dict
cautions:
  description: What the rung could not do as intended (a probe not counted, a start limit reset, ...).
  returned: always
  type: list
  elements: str
restored:
  description:
    - On failure, whether everything was put back (every plugin in place, the lists as saved, the guard removed).
      When false, the message names what is still out, and the guard stays while the lists may not be whole.
  returned: when the rung fails
  type: bool
problems:
  description: On failure, what could not be put back.
  returned: when the rung fails
  type: list
  elements: str
rollback:
  description: The command that undoes this run on the host.
  returned: when the rung fails
  type: str
  sample: ansible-playbook playbooks/rollback-502.yml -l wp1 -e wp502_run_id=20261201T212000-wp1-1a2b3c4d
"""

import os
import re
import socket

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wp502_fpm import listen_address
from ansible.module_utils.wp502_host import CommandTimeoutError, deadline_runner, which
from ansible.module_utils.wp502_http import healthy, probe_paths
from ansible.module_utils.wp502_isolate import Isolation, PoolsDownError, RungFailedError, accepts
from ansible.module_utils.wp502_journal import RUN_ID, Journal
from ansible.module_utils.wp502_services import Units
from ansible.module_utils.wp502_wordpress import parse_wp_config
from ansible.module_utils.wp502_wpdb import DBError, WordPressDB

# The pools then have POOLS_WAIT seconds to accept connections after a restart.
POOLS_WAIT = 15.0


class Fpm(Units):
    """The PHP-FPM services and pools the site depends on: restarted (wp502_services) and checked while the rung bisects."""

    def down(self):
        """None when every service is active and every pool accepts a connection, else why not."""
        reasons = []
        for service in self.services:
            st = self.state(service)
            if st.get("ActiveState") != "active":
                reasons.append(self.said(service, st))
        reasons += [why for why in (accepts(listen) for listen in self.sockets) if why]
        return "; ".join(reasons) or None

    def reset(self):
        """Restart every service, then wait (bounded) until the pools accept; PoolsDownError when they do not."""
        refused = [why for why in (self.restart(s) for s in self.services) if why]
        deadline = self.now() + POOLS_WAIT
        while True:
            down = self.down()
            if not down:
                return
            if self.now() >= deadline:
                break
            self.sleep(0.5)
        units = " ".join(self.services) or "the PHP-FPM service"
        raise PoolsDownError("PHP-FPM's pools are not up %d s after a restart: %s. See `systemctl status %s` and "
                             "`journalctl -u %s`; `systemctl reset-failed %s` clears a start limit"
                             % (POOLS_WAIT, "; ".join([*refused, down]), units, units, units))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            run_id=dict(type="str", required=True),
            state_dir=dict(type="path", default="/var/lib/wp502"),
            host=dict(type="str", default="localhost"),
            port=dict(type="int", default=80),
            scheme=dict(type="str", default="http", choices=["http", "https"]),
            paths=dict(type="list", elements="str", default=["/", "/wp-login.php"]),
            deadline=dict(type="float", default=5),
            cookie_paths=dict(type="list", elements="str", default=["/wp-login.php"]),
            fpm_services=dict(type="list", elements="str", default=[]),
            fpm_sockets=dict(type="list", elements="str", default=[]),
            max_probes=dict(type="int", default=0),
            inventory_host=dict(type="str"),
            step=dict(type="str", default="plugins"),
            known_culprits=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not RUN_ID.match(p["run_id"]):
        module.fail_json(msg="run_id %r must be letters, digits, dots, dashes or underscores" % p["run_id"])
    if not RUN_ID.match(p["step"]):
        module.fail_json(msg="step %r must be letters, digits, dots, dashes or underscores" % p["step"])
    if not 0 < p["deadline"] <= 120 or not 0 < p["port"] < 65536 or p["max_probes"] < 0:
        module.fail_json(msg="deadline must be in (0, 120], port in 1..65535 and max_probes >= 0")
    bad = [s for s in p["fpm_services"] if not re.match(r"^[A-Za-z0-9@._-]+$", s)]
    if bad:
        module.fail_json(msg="not a service name: %s" % ", ".join(bad))
    for listen in p["fpm_sockets"]:
        try:
            listen_address(listen)
        except ValueError as exc:
            module.fail_json(msg="fpm_sockets: %s" % exc)

    root = p["path"].rstrip("/") or "/"
    config = next((c for c in (os.path.join(root, "wp-config.php"), os.path.join(os.path.dirname(root), "wp-config.php"))
                   if os.path.isfile(c)), None)
    if not config:
        module.fail_json(msg="no wp-config.php in %s or its parent: is this the WordPress root?" % root)
    with open(config, "rb") as fh:
        cfg = parse_wp_config(fh.read().decode("utf-8", "replace"))
    password = cfg.pop("db_password", None)
    content = cfg["wp_content_dir"] if isinstance(cfg.get("wp_content_dir"), str) else os.path.join(root, "wp-content")
    plugin_dir = cfg["wp_plugin_dir"] if isinstance(cfg.get("wp_plugin_dir"), str) else os.path.join(content, "plugins")
    off_dir = plugin_dir.rstrip("/") + "-off"
    mu_dir = os.path.join(content, "mu-plugins")
    if not os.path.isdir(plugin_dir):
        module.fail_json(msg="no plugins directory at %s" % plugin_dir)

    run = deadline_runner()
    systemctl = module.get_bin_path("systemctl") or which("systemctl")
    if p["fpm_services"] and not systemctl and not module.check_mode:
        module.fail_json(msg="no systemctl on the host: the rung cannot restart %s" % ", ".join(p["fpm_services"]))

    cautions = []
    db = None
    client = which("mariadb", "mysql")
    try:
        if not client:
            raise DBError("no mysql or mariadb client on the host")
        db = WordPressDB(run, client, cfg, password)
        db.get("active_plugins")
    except (DBError, ValueError, CommandTimeoutError) as exc:
        cautions.append("the plugin lists cannot be read (%s)" % exc)
        db = None
    lists = ("active_plugins", "active_sitewide_plugins") if cfg.get("multisite") in (True, "true", 1, "1") else ("active_plugins",)
    if os.path.exists(os.path.join(content, "object-cache.php")):
        cautions.append("a persistent object cache (object-cache.php) may serve the old plugin list until it is flushed; "
                        "the culprits stay out because their files are moved")

    journal = Journal(p["run_id"], p["state_dir"])

    def probe():
        return healthy(probe_paths(p["paths"], p["deadline"], host_header=p["host"], port=p["port"], scheme=p["scheme"]),
                       p["deadline"], cookie_paths=p["cookie_paths"])

    fpm = Fpm(run, systemctl, p["fpm_services"], p["fpm_sockets"], cautions)

    iso = Isolation(journal, plugin_dir, off_dir, mu_dir, db, probe, fpm.reset, lists=lists, where={"config": config},
                    heartbeat=lambda: journal.heartbeat(worker=os.getpid()), pools=fpm.down, step=p["step"])
    if module.check_mode:
        try:
            units = iso.units()
        except (DBError, ValueError) as exc:
            module.fail_json(msg=str(exc))
        names = [u["unit"] for u in units]
        module.exit_json(changed=bool(names), healed=False, culprits=[], culprit_files=[], suspects=names, probes=0,
                         trail=[], moved_to=os.path.join(off_dir, p["run_id"]), lists={}, cautions=cautions + iso.cautions,
                         msg="would take out %d plugins (%s) and bisect" % (len(names), ", ".join(names) or "none"))
    if not journal.holds_lock():
        module.fail_json(msg="run %s does not hold this host: take it first (wp502_run state=locked run_id=%s)"
                             % (p["run_id"], p["run_id"]))
    journal.heartbeat(worker=os.getpid())
    rollback = "ansible-playbook playbooks/rollback-502.yml -l %s -e wp502_run_id=%s" % (
        p["inventory_host"] or socket.gethostname(), p["run_id"])
    try:
        result = iso.run(p["run_id"], max_probes=p["max_probes"] or None, known=p["known_culprits"])
    except RungFailedError as exc:
        cause = exc.cause
        if isinstance(cause, CommandTimeoutError):
            cause = "a command did not finish in time: %s" % cause
        if exc.restored:
            state = ("Everything was put back: every plugin is in %s again, the plugin lists hold their saved bytes and "
                     "the guard is removed, so the site is as the rung found it (not healed)" % plugin_dir)
        else:
            state = ("NOT everything could be put back (%s); still out: %s (in %s)%s; the site is not healed and "
                     "needs the rollback" % ("; ".join(exc.problems), ", ".join(exc.still_out) or "no plugin", iso.off_dir,
                                             "; the guard %s stays so that WordPress cannot rewrite the plugin lists"
                                             % iso.guard_path() if os.path.exists(iso.guard_path()) else ""))
        module.fail_json(msg="the plugins rung stopped: %s. %s. Every change is journaled: `%s` undoes the run"
                             % (cause, state, rollback),
                         trail=iso.trail, cautions=cautions + iso.cautions, restored=exc.restored,
                         still_out=exc.still_out, problems=exc.problems, rollback=rollback, moved_to=iso.off_dir,
                         culprits=[])
    except (DBError, ValueError, OSError) as exc:  # before anything moved
        module.fail_json(msg="the plugins rung did not start: %s. Nothing was moved" % exc, trail=iso.trail,
                         cautions=cautions + iso.cautions, restored=True, still_out=[], problems=[], rollback=rollback)
    finally:
        journal.heartbeat()
    result["cautions"] = cautions + result["cautions"]
    result["changed"] = bool(result["trail"])
    lists_out = result.get("lists") or {}
    if module._diff and lists_out.get("active_plugins"):
        before, after = lists_out["active_plugins"]["before"], lists_out["active_plugins"]["after"]
        result["diff"] = {"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n",
                          "before_header": "active_plugins", "after_header": "active_plugins"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
