# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""systemd units the emergency restarts or reloads (PHP-FPM, the database, the web server), and waiting
for what they serve to listen again: one place for how wp502 asks systemd, used by the plugins rung's
module (wp502_plugins, whose Fpm restarts PHP-FPM while it bisects) and by ``wp502_run state=restarted|reloaded``
(every unit a rung touches, in one round trip).

- Every ``systemctl`` call has a deadline (``run`` is wp502_host.deadline_runner's runner).
- A unit that systemd's start limit refuses (``Result=start-limit-hit``: Debian's php-fpm and mariadb units
  allow 5 starts in 10 s) is started once more after ``systemctl reset-failed``, and a caution says so.
- A reload of a unit that is not running starts it, as ``ansible.builtin.systemd_service`` does.
"""

from __future__ import absolute_import, division, print_function

import os
import socket
import time

from ansible.module_utils.wp502_host import CommandTimeoutError

__metaclass__ = type

# Deadlines: a restart waits out FPM's own stop (workers held by a hung plugin get SIGTERM).
RESTART_TIMEOUT = 90
SYSTEMCTL_TIMEOUT = 15
RUNNING = ("active", "reloading", "activating")
# systemd's Result= values, said for an operator.
RESULTS = {
    "start-limit-hit": "systemd's start limit refused the start (StartLimitBurst starts within StartLimitIntervalSec)",
    "exit-code": "the service exited with an error",
    "signal": "the service was killed by a signal",
    "timeout": "the service did not start or stop in time",
    "core-dump": "the service dumped core",
}


class Units:
    """Some systemd units (the PHP-FPM services a site depends on, say), through systemctl with deadlines. ``sockets``
    are the addresses they serve, for subclasses that check them (wp502_plugins' Fpm)."""

    def __init__(self, run, systemctl, services, sockets, cautions, sleep=time.sleep, now=time.time,
                 restart_timeout=RESTART_TIMEOUT):
        self.run = run
        self.systemctl = systemctl
        self.services = services
        self.sockets = sockets
        self.cautions = cautions
        self.sleep = sleep
        self.now = now
        self.restart_timeout = restart_timeout

    def state(self, service):
        rc, out, err = self.run([self.systemctl, "show", "-p", "LoadState", "-p", "ActiveState", "-p", "SubState",
                                 "-p", "Result", service], timeout=SYSTEMCTL_TIMEOUT)
        st = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        if rc != 0 and not st:
            st["error"] = err.strip()[-200:] or "rc=%d" % rc
        return st

    def said(self, service, st):
        if st.get("error"):
            return "%s: `systemctl show` failed (%s)" % (service, st["error"])
        result = st.get("Result") or "?"
        why = RESULTS.get(result)
        return "%s is %s/%s (Result=%s%s)" % (service, st.get("ActiveState") or "?", st.get("SubState") or "?", result,
                                              ": " + why if why else "")

    def _do(self, verb, service):
        rc, _out, err = self.run([self.systemctl, verb, service], timeout=self.restart_timeout)
        return rc, err

    def restart(self, service, verb="restart"):
        """None when systemd restarted (or ``verb``: started, reloaded) the service, else what systemd said."""
        rc, err = self._do(verb, service)
        if rc == 0:
            return None
        st = self.state(service)
        if st.get("Result") == "start-limit-hit" and verb != "reload":
            # The plugins rung restarts FPM after every failed probe: more than a strict unit allows.
            self.run([self.systemctl, "reset-failed", service], timeout=SYSTEMCTL_TIMEOUT)
            note = ("systemd's start limit refused to %s %s (start-limit-hit): `systemctl reset-failed %s` cleared "
                    "it and wp502 tried again" % (verb, service, service))
            if note not in self.cautions:
                self.cautions.append(note)
            rc, err = self._do(verb, service)
            if rc == 0:
                return None
            st = self.state(service)
        return "`systemctl %s %s` failed: %s%s" % (verb, service, self.said(service, st),
                                                   " (%s)" % " ".join(err.split())[-200:] if err.strip() else "")

    def act(self, service, action, check_mode=False):
        """Restart or reload one unit: ``{name, action, ok, msg, was, seconds}`` (``action`` start for a reload of a
        unit that is not running; in check mode, what would be done)."""
        started = self.now()
        entry = {"name": service, "action": action, "ok": False, "msg": ""}
        try:
            st = self.state(service)
            entry["was"] = st.get("ActiveState")
            if st.get("error") or st.get("LoadState") == "not-found":
                entry["msg"] = ("%s: no such unit on the host" % service) if not st.get("error") else self.said(service, st)
            else:
                if action == "reload" and st.get("ActiveState") not in RUNNING:
                    entry["action"] = "start"
                if check_mode:
                    entry.update(ok=True, msg="would %s %s (it is %s)" % (entry["action"], service, entry["was"]))
                else:
                    why = self.restart(service, verb=entry["action"])
                    entry.update(ok=why is None, msg=why or "")
        except CommandTimeoutError as exc:
            entry.update(timed_out=True, msg="%s %s timed out: %s" % (entry["action"], service, exc))
        entry["seconds"] = round(self.now() - started, 3)
        return entry


def listening(target, connect_timeout=0.5):
    """Whether an address a unit serves listens: a unix socket that exists, or a TCP port that accepts."""
    if target.get("path"):
        return os.path.exists(target["path"])
    host = str(target.get("host") or "127.0.0.1").strip("[]")
    # A pool that listens on every address is asked on the loopback (no bind here: the string is only compared).
    host = {"0.0.0.0": "127.0.0.1", "*": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    try:
        sock = socket.create_connection((host, int(target["port"])), connect_timeout)
    except (OSError, ValueError, TypeError, KeyError):
        return False
    sock.close()
    return True


def wait_listening(targets, timeout, interval=0.1, clock=time.time, sleep=time.sleep, probe=listening):
    """Wait, up to ``timeout`` s in all, until every target listens: ``[{..target, ready}]`` in the order given."""
    started = clock()
    ready = [False] * len(targets)
    while True:
        for i, target in enumerate(targets):
            if not ready[i]:
                ready[i] = bool(probe(target))
        if all(ready) or clock() - started >= timeout:
            break
        sleep(interval)
    return [dict(t, ready=ready[i]) for i, t in enumerate(targets)]
