# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""The plugins rung: take plugins out, and put back every one but the culprit (standard library only).

Plugins are taken out the way ops teams do it by hand, by moving their files out of the plugins
directory (to ``plugins-off`` beside it): WordPress skips an active plugin whose file is missing,
whatever the database or a persistent object cache says. Each move is journaled before it
happens, so a run killed at any point can be rolled back.

WordPress's ``validate_active_plugins()`` (run when someone opens the Plugins screen) would
permanently drop active plugins whose files are missing. While plugins are out, a guard
must-use plugin refuses every change to the plugin lists; the lists' exact bytes are journaled
before anything moves, and at the end they are written back exactly, minus the culprits.

:class:`Isolation` does the rung given the moves' journal, the database, a ``probe(), -> bool``
that asks the site, and a ``reset()`` that restarts PHP-FPM (workers held by a slow or hung plugin
would fail the next probe whatever is active).
"""

from __future__ import absolute_import, division, print_function

import binascii
import errno
import os
import time

from ansible.module_utils.wp502_ladder import find_culprits
from ansible.module_utils.wp502_wpdb import plugin_files, without

__metaclass__ = type

GUARD_NAME = "wp502-guard.php"
GUARD = """<?php
/*
 * wp502 guard: temporary, removed by the emergency run %(run_id)s that wrote it.
 * While plugins are moved out to find the one breaking the site, WordPress must not rewrite the
 * lists of active plugins (the Plugins screen drops active plugins whose files are missing).
 */
add_filter('pre_update_option_active_plugins', function ($value, $old) { return $old; }, PHP_INT_MAX, 2);
add_filter('pre_update_site_option_active_sitewide_plugins', function ($value, $old) { return $old; }, PHP_INT_MAX, 2);
"""


def units_of(files):
    """Group plugin files by what moves on disk: ``akismet/akismet.php`` -> ``akismet``, ``hello.php`` ->
    ``hello.php``. Order of first appearance is kept (WordPress loads plugins in list order)."""
    units = []
    index = {}
    for f in files:
        unit = f.split("/", 1)[0] if "/" in f else f
        if unit in ("", ".", "..") or "\\" in unit or "\0" in unit:
            continue
        if unit not in index:
            index[unit] = len(units)
            units.append({"unit": unit, "files": []})
        units[index[unit]]["files"].append(f)
    return units


class Isolation:
    """One site's plugins rung. ``db`` has get(name)/set(name, raw) (or is None when the database
    cannot be reached: every plugin on disk is then a suspect and no list is rewritten)."""

    def __init__(self, journal, plugin_dir, off_dir, mu_dir, db, probe, reset, lists=("active_plugins",),
                 where=None, heartbeat=None):
        self.journal = journal
        self.plugin_dir = plugin_dir
        self.off_dir = off_dir
        self.mu_dir = mu_dir
        self.db = db
        self.probe = probe
        self.reset = reset
        self.lists = lists
        self.where = where or {}
        self.heartbeat = heartbeat or (lambda: None)
        self.saved = {}
        self.created = []
        self.out = {}  # unit -> the (from, to) renames that took it out
        self.last_healthy = False
        self.trail = []
        self.cautions = []

    # ---- what is there ------------------------------------------------------------------------
    def active_files(self):
        """The active plugin files, read from the lists (exact bytes kept in ``saved``)."""
        files = []
        for name in self.lists:
            raw = self.db.get(name) if self.db else None
            if raw is None:
                continue
            self.saved[name] = raw
            try:
                files += [f for f in plugin_files(name, raw) if f not in files]
            except ValueError as exc:
                raise ValueError("%s is not a plugin list WordPress would read (%s): plugins were not touched" % (name, exc)) from exc
        return files

    def units(self):
        if self.db is None:
            names = sorted(os.listdir(self.plugin_dir)) if os.path.isdir(self.plugin_dir) else []
            files = [n if n.endswith(".php") else n + "/" for n in names if n not in ("index.php",)]
            self.cautions.append("the database did not answer: every plugin on disk is a suspect")
        else:
            files = self.active_files()
        return [u for u in units_of(files) if os.path.lexists(os.path.join(self.plugin_dir, u["unit"]))]

    # ---- moves -------------------------------------------------------------------------------
    def _rename(self, frm, to):
        if os.path.lexists(to):
            raise OSError(errno.EEXIST, "cannot move %s: %s is in the way" % (frm, to))
        seq = self.journal.intend_rename("plugins", frm, to)
        os.rename(frm, to)
        self.journal.done(seq)

    def _main_files(self, unit):
        """The files WordPress loads for a unit: those the lists name, or the PHP files with a plugin header."""
        named = [f for f in unit["files"] if not f.endswith("/")]
        if named:
            return named
        base = os.path.join(self.plugin_dir, unit["unit"])
        found = []
        for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            path = os.path.join(base, name)
            if name.endswith(".php") and os.path.isfile(path):
                with open(path, "rb") as fh:
                    if b"Plugin Name:" in fh.read(8192):
                        found.append("%s/%s" % (unit["unit"], name))
        return found

    def _move(self, unit, out):
        """Take a unit out (its directory or file to the off directory) or put it back. Where the
        directory cannot be renamed there (EXDEV: another filesystem, or an overlayfs lower layer), its
        main files are renamed in place to ``*.wp502-off`` instead: WordPress does not find them either."""
        name = unit["unit"]
        if not out:
            for frm, to in reversed(self.out.pop(name)):
                self._rename(to, frm)
            return
        pairs = [(os.path.join(self.plugin_dir, name), os.path.join(self.off_dir, name))]
        try:
            self._rename(*pairs[0])
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            pairs = [(os.path.join(self.plugin_dir, f), os.path.join(self.plugin_dir, f) + ".wp502-off")
                     for f in self._main_files(unit)]
            if not pairs:
                raise OSError("cannot take %s out: it cannot be moved to %s (%s) and has no plugin file to rename"
                              % (name, self.off_dir, exc)) from exc
            done = []
            try:
                for frm, to in pairs:
                    self._rename(frm, to)
                    done.append((frm, to))
            except OSError:
                for frm, to in reversed(done):
                    self._rename(to, frm)
                raise
        self.out[name] = pairs

    def arrange(self, units, active):
        """Exactly ``active`` (unit names) in place, every other unit of ``units`` out."""
        want = set(active)
        for u in units:
            name = u["unit"]
            if name in want and name in self.out:
                self._move(u, out=False)
            elif name not in want and name not in self.out:
                self._move(u, out=True)

    def ask(self, units, active):
        self.arrange(units, active)
        if not self.last_healthy:
            # The last answer was bad: workers may still be held by the plugin that was in.
            self.reset()
        started = time.time()
        self.last_healthy = bool(self.probe())
        self.trail.append({"in": list(active), "healthy": self.last_healthy, "seconds": round(time.time() - started, 2)})
        self.heartbeat()
        return self.last_healthy

    # ---- guard -------------------------------------------------------------------------------
    def guard_path(self):
        return os.path.join(self.mu_dir, GUARD_NAME)

    def _mkdir(self, path):
        if not os.path.isdir(path):
            seq = self.journal.intend_mkdir("plugins", path)
            os.makedirs(path, 0o755)
            self.journal.done(seq)
            self.created.append(path)

    def put_guard(self, run_id):
        path = self.guard_path()
        self._mkdir(self.mu_dir)
        seq = self.journal.intend_file("plugins", path)
        with open(path, "w") as fh:
            fh.write(GUARD % {"run_id": run_id})
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(path, 0o644)
        self.journal.done(seq)

    def drop_guard(self):
        path = self.guard_path()
        if os.path.exists(path):
            seq = self.journal.intend_file("plugins", path)
            os.unlink(path)
            self.journal.done(seq)

    # ---- the rung ----------------------------------------------------------------------------
    def run(self, run_id, max_probes=None):
        units = self.units()
        result = {"healed": False, "culprits": [], "culprit_files": [], "probes": 0, "trail": self.trail,
                  "suspects": [u["unit"] for u in units], "moved_to": self.off_dir, "cautions": self.cautions,
                  "lists": {}}
        if not units:
            result["note"] = "no active plugin to take out"
            return result
        # The exact lists, before anything moves (rollback writes them back whatever happened meanwhile).
        value_seqs = {}
        for name, raw in self.saved.items():
            value_seqs[name] = self.journal.intend_value("plugins", name, binascii.hexlify(raw).decode("ascii"),
                                                         where=dict(self.where, list=name, encoding="hex"))
        self._mkdir(self.off_dir)
        self.put_guard(run_id)
        names = [u["unit"] for u in units]
        try:
            if not self.ask(units, []):
                # Not the plugins: put everything back as it was.
                self.arrange(units, names)
                for seq in value_seqs.values():
                    self.journal.done(seq)
                result["note"] = "the site does not answer with every plugin out: plugins are not the cause"
                result["probes"] = len(self.trail)
                return result
            found = find_culprits(names, lambda active: self.ask(units, active),
                                  max_probes=None if max_probes is None else max(0, max_probes - 1))
            culprits = found["culprits"]
            if not found["complete"]:
                # Out of probes before a working set was confirmed: back to the state known to work
                # (every plugin out), the lists untouched.
                if not self.last_healthy or set(self.out) != set(names):
                    self.ask(units, [])
                culprits = []
                result["note"] = ("the probe budget ran out before the culprit was found; every plugin stays out "
                                  "(rollback puts them back)")
            else:
                self.arrange(units, [n for n in names if n not in culprits])
            culprit_files = [f for u in units if u["unit"] in culprits for f in u["files"]]
            result.update(culprits=culprits, culprit_files=culprit_files, healed=self.last_healthy)
            # The lists, exactly as they were minus the culprits.
            for name, raw in self.saved.items():
                current = self.db.get(name)
                target = without(name, raw, culprit_files)
                if current != raw:
                    self.cautions.append("%s changed while plugins were out (written back as saved)" % name)
                if current != target:
                    self.db.set(name, target)
                result["lists"][name] = {"before": plugin_files(name, raw), "after": plugin_files(name, target)}
                self.journal.done(value_seqs[name])
        finally:
            self.drop_guard()
            for path in self.created:  # tidy what the rung created and no longer needs
                if os.path.isdir(path) and not os.listdir(path):
                    os.rmdir(path)
        result["probes"] = len(self.trail)
        result["still_out"] = sorted(self.out)
        result["moved"] = [{"from": frm, "to": to} for name in sorted(self.out) for frm, to in self.out[name]]
        return result
