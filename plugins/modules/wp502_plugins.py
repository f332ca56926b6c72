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
  - Moves every active plugin out of the plugins directory (to C(plugins-off) beside it; WordPress skips an active
    plugin whose file is missing, whatever a persistent object cache holds; where a directory cannot be moved
    there, its plugin files are renamed in place to C(*.wp502-off)), restarts PHP-FPM (workers held by a
    hung plugin would fail any probe) and asks the site. If it answers, finds the culprit(s) by bisection (at most
    ceil(log2 n)+1 probes for one culprit among n plugins), puts every other plugin back, writes the lists back
    exactly minus the culprits, and leaves the culprits' files in C(plugins-off).
  - If the site does not answer with every plugin out, puts everything back (plugins are not the cause).
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
    description: PHP-FPM services to restart after a probe that failed, before the next one.
    type: list
    elements: str
    default: []
  fpm_sockets:
    description: Unix sockets of the pools, waited for after a restart.
    type: list
    elements: path
    default: []
  max_probes:
    description: Give up the bisection after this many probes (0 lets bisection take what it needs).
    type: int
    default: 0
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
  description: Where plugins taken out are kept.
  returned: always
  type: str
still_out:
  description: Plugins whose files are out at the end (the culprits).
  returned: when plugins were taken out
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
  description: What the rung could not do as intended.
  returned: always
  type: list
  elements: str
"""

import os
import re
import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wp502_host import which
from ansible.module_utils.wp502_http import healthy, probe_paths
from ansible.module_utils.wp502_isolate import Isolation
from ansible.module_utils.wp502_journal import RUN_ID, Journal
from ansible.module_utils.wp502_wordpress import parse_wp_config
from ansible.module_utils.wp502_wpdb import DBError, WordPressDB


def _wait_sockets(paths, timeout=15.0):
    deadline = time.time() + timeout
    for path in paths:
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(1)
                sock.connect(path)
                break
            except (OSError, socket.error):
                if time.time() > deadline:
                    return False
                time.sleep(0.2)
            finally:
                sock.close()
    return True


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
            fpm_sockets=dict(type="list", elements="path", default=[]),
            max_probes=dict(type="int", default=0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not RUN_ID.match(p["run_id"]):
        module.fail_json(msg="run_id %r must be letters, digits, dots, dashes or underscores" % p["run_id"])
    if not 0 < p["deadline"] <= 120 or not 0 < p["port"] < 65536 or p["max_probes"] < 0:
        module.fail_json(msg="deadline must be in (0, 120], port in 1..65535 and max_probes >= 0")
    bad = [s for s in p["fpm_services"] if not re.match(r"^[A-Za-z0-9@._-]+$", s)]
    if bad:
        module.fail_json(msg="not a service name: %s" % ", ".join(bad))

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

    def run(argv, env=None, timeout=None):
        return module.run_command(argv, environ_update=env or {})

    cautions = []
    db = None
    client = which("mariadb", "mysql")
    try:
        if not client:
            raise DBError("no mysql or mariadb client on the host")
        db = WordPressDB(run, client, cfg, password)
        db.get("active_plugins")
    except (DBError, ValueError) as exc:
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

    def reset():
        for service in p["fpm_services"]:
            rc, _out, err = module.run_command(["systemctl", "restart", service])
            if rc != 0:
                cautions.append("systemctl restart %s: %s" % (service, err.strip()[-200:]))
        if p["fpm_sockets"] and not _wait_sockets(p["fpm_sockets"]):
            cautions.append("the pools' sockets did not come back within 15 s of a restart")

    iso = Isolation(journal, plugin_dir, off_dir, mu_dir, db, probe, reset, lists=lists,
                    where={"config": config}, heartbeat=lambda: journal.heartbeat(worker=os.getpid()))
    if module.check_mode:
        try:
            units = iso.units()
        except (DBError, ValueError) as exc:
            module.fail_json(msg=str(exc))
        names = [u["unit"] for u in units]
        module.exit_json(changed=bool(names), healed=False, culprits=[], culprit_files=[], suspects=names, probes=0,
                         trail=[], moved_to=off_dir, lists={}, cautions=cautions + iso.cautions,
                         msg="would take out %d plugins (%s) and bisect" % (len(names), ", ".join(names) or "none"))
    if not journal.holds_lock():
        module.fail_json(msg="run %s does not hold this host: take it first (wp502_run state=locked run_id=%s)"
                             % (p["run_id"], p["run_id"]))
    journal.heartbeat(worker=os.getpid())
    try:
        result = iso.run(p["run_id"], max_probes=p["max_probes"] or None)
    except (DBError, ValueError, OSError) as exc:
        module.fail_json(msg="the plugins rung stopped: %s. Every move is journaled: `wp502_run state=rolled_back "
                             "run_id=%s` (playbooks/rollback-502.yml) puts everything back" % (exc, p["run_id"]),
                         trail=iso.trail, cautions=cautions + iso.cautions)
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
