# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""The plugins rung: take plugins out, and put back every one but the culprit (standard library only).

Plugins are taken out the way ops teams do it by hand, by moving their files out of the plugins
directory (to ``plugins-off/RUN_ID/`` beside it, a directory of the run's own, so that nothing an
earlier run or a person left in ``plugins-off`` is ever in the way): WordPress skips an active
plugin whose file is missing, whatever the database or a persistent object cache says. Each move is
journaled before it happens, so a run killed at any point can be rolled back.

WordPress's ``validate_active_plugins()`` (run when someone opens the Plugins screen) would
permanently drop active plugins whose files are missing. While plugins are out, a guard
must-use plugin refuses every change to the plugin lists; the lists' exact bytes are journaled
before anything moves, and at the end they are written back exactly, minus the culprits.

:class:`Isolation` does the rung given the moves' journal, the database, a ``probe() -> bool``
that asks the site, a ``reset()`` that restarts PHP-FPM (workers held by a slow or hung plugin
would fail the next probe whatever is active; it raises :class:`PoolsDownError` when the pools do not
come back) and a ``pools() -> None or reason`` that says whether the pools the site depends on
are up and accepting.

Two rules keep the rung honest:

- **A probe counts only when the pools are up.** A failed answer while FPM is down (a restart
  refused by systemd's start limit, say) says nothing about the plugins in place: FPM is reset
  and the site asked again; if the pools are still down the rung stops. No culprit is ever
  decided by a probe whose pools were down.
- **A rung that stops half-way puts everything back.** Every destination is checked before
  anything moves; when anything fails afterwards, every plugin moved is put back and the lists
  are written back as saved before :class:`RungFailedError` is raised; the guard stays until the lists
  are whole again (``restored`` says whether all of that worked). A finished rung leaves out the
  culprits and nothing else.
"""

from __future__ import absolute_import, division, print_function

import binascii
import errno
import os
import socket
import time

from ansible.module_utils.wp502_fpm import listen_address
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


class PoolsDownError(RuntimeError):
    """The PHP-FPM pools the site depends on are not up and accepting (the message says which and why)."""


class RungFailedError(RuntimeError):
    """The rung stopped before it finished. ``restored``: every plugin is back in place, the lists are
    as saved and the guard is gone; ``still_out``: units still out; ``problems``: what could not be
    put back."""

    def __init__(self, cause, restored, still_out=(), problems=()):
        RuntimeError.__init__(self, str(cause))
        self.cause = cause
        self.restored = restored
        self.still_out = list(still_out)
        self.problems = list(problems)


def accepts(listen, timeout=1.0):
    """None when the pool at ``listen`` accepts a connection, else why not."""
    try:
        family, address = listen_address(listen)
    except ValueError as exc:
        return str(exc)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(address)
        return None
    except (OSError, socket.error) as exc:
        return "pool %s does not accept connections (%s)" % (listen, exc.strerror or exc)
    finally:
        sock.close()


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
                 where=None, heartbeat=None, pools=None, step="plugins"):
        self.journal = journal
        self.step = step  # the journal step its changes are recorded under (rolled back together)
        self.plugin_dir = plugin_dir
        self.off_root = off_dir  # plugins-off; this run's moves go to off_root/RUN_ID
        self.off_dir = off_dir
        self.mu_dir = mu_dir
        self.db = db
        self.probe = probe
        self.reset = reset
        self.lists = lists
        self.where = where or {}
        self.heartbeat = heartbeat or (lambda: None)
        self.pools = pools or (lambda: None)
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
        seq = self.journal.intend_rename(self.step, frm, to)
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
        main files are renamed in place to ``*.wp502-off`` instead: WordPress does not find them either.
        A unit stays in ``out`` until every one of its renames is back (a put-back that fails half-way
        can be tried again)."""
        name = unit["unit"]
        if not out:
            for moved_from, moved_to in reversed(self.out[name]):
                if os.path.lexists(moved_to) or not os.path.lexists(moved_from):
                    self._rename(moved_to, moved_from)  # back where it was
            del self.out[name]
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
                if done:  # what is already renamed is put back with the rest of the rung's moves
                    self.out[name] = done
                raise
        self.out[name] = pairs

    def destinations_free(self, units):
        """Before anything moves: every place a unit may go must be free (this run's directory under
        plugins-off, and the ``*.wp502-off`` names of the in-place fallback). Raises OSError naming them all."""
        taken = []
        for u in units:
            candidates = [os.path.join(self.off_dir, u["unit"])]
            candidates += [os.path.join(self.plugin_dir, f) + ".wp502-off" for f in u["files"] if not f.endswith("/")]
            taken += [c for c in candidates if os.path.lexists(c)]
        if taken:
            raise OSError(errno.EEXIST, "nothing was moved: %s %s in the way (move %s aside, or roll back the run "
                          "that left %s)" % (", ".join(taken), "is" if len(taken) == 1 else "are",
                                             "it" if len(taken) == 1 else "them", "it" if len(taken) == 1 else "them"))

    def arrange(self, units, active):
        """Exactly ``active`` (unit names) in place, every other unit of ``units`` out."""
        want = set(active)
        for u in units:
            name = u["unit"]
            if name in want and name in self.out:
                self._move(u, out=False)
            elif name not in want and name not in self.out:
                self._move(u, out=True)

    def _probe(self, active):
        started = time.time()
        healthy = bool(self.probe())
        # A failed answer counts only when the pools it depends on were up: a 502 from a stopped FPM
        # says nothing about the plugins in place.
        down = None if healthy else self.pools()
        entry = {"in": list(active), "healthy": healthy, "seconds": round(time.time() - started, 2),
                 "counted": not down}
        if down:
            entry["pools_down"] = down
        self.trail.append(entry)
        self.heartbeat()
        return entry

    def ask(self, units, active):
        self.arrange(units, active)
        if not self.last_healthy:
            # The last answer was bad: workers may still be held by the plugin that was in.
            self.reset()
        entry = self._probe(active)
        if not entry["counted"]:
            self.cautions.append("a probe with %d plugin(s) in was not counted: %s; PHP-FPM was reset and the site "
                                 "asked again" % (len(active), entry["pools_down"]))
            self.reset()
            entry = self._probe(active)
            if not entry["counted"]:
                raise PoolsDownError("PHP-FPM's pools were down during the probe with %d plugin(s) in, twice (%s): no "
                                     "culprit can be decided while they are" % (len(active), entry["pools_down"]))
        self.last_healthy = entry["healthy"]
        return self.last_healthy

    # ---- guard -------------------------------------------------------------------------------
    def guard_path(self):
        return os.path.join(self.mu_dir, GUARD_NAME)

    def _mkdir(self, path):
        if not os.path.isdir(path):
            seq = self.journal.intend_mkdir(self.step, path)
            os.makedirs(path, 0o755)
            self.journal.done(seq)
            self.created.append(path)

    def put_guard(self, run_id):
        path = self.guard_path()
        self._mkdir(self.mu_dir)
        seq = self.journal.intend_file(self.step, path)
        with open(path, "w") as fh:
            fh.write(GUARD % {"run_id": run_id})
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(path, 0o644)
        self.journal.done(seq)

    def drop_guard(self):
        path = self.guard_path()
        if os.path.exists(path):
            seq = self.journal.intend_file(self.step, path)
            os.unlink(path)
            self.journal.done(seq)

    # ---- the rung ----------------------------------------------------------------------------
    def _tidy(self):
        """Remove the directories the rung created and no longer needs (deepest first)."""
        for path in reversed(self.created):
            try:
                if os.path.isdir(path) and not os.listdir(path):
                    os.rmdir(path)
            except OSError:
                pass

    def _lists_whole(self):
        """None when every saved list holds its saved bytes again, else why not."""
        if self.db is None:
            return None
        problems = []
        for name, raw in self.saved.items():
            try:
                if self.db.get(name) != raw:
                    self.db.set(name, raw)
                if self.db.get(name) != raw:
                    problems.append("%s could not be written back as saved" % name)
            except Exception as exc:  # (DBError, a client that timed out, ...)
                problems.append("%s could not be checked or written back (%s)" % (name, exc))
        return "; ".join(problems) or None

    def put_back(self, units, value_seqs):
        """After a failure: every plugin back in place, the lists as saved, then (only then) no guard.
        Returns the problems (empty when everything is back)."""
        problems = []
        for u in reversed(units):
            if u["unit"] in self.out:
                try:
                    self._move(u, out=False)
                except OSError as exc:
                    problems.append("%s could not be put back (%s)" % (u["unit"], exc))
        lists = self._lists_whole()
        if lists:
            problems.append(lists)
        if not problems:
            for seq in value_seqs.values():
                self.journal.done(seq)
            try:
                self.drop_guard()
            except OSError as exc:
                problems.append("the guard %s could not be removed (%s)" % (self.guard_path(), exc))
        elif os.path.exists(self.guard_path()):
            problems.append("the guard %s stays, so that WordPress cannot rewrite the plugin lists, until they "
                            "are whole again (rollback removes it)" % self.guard_path())
        self._tidy()
        return problems

    def _known_first(self, units, names, known):
        """Known culprits (named by this run on another host) that are active here: out alone, others active.
        Returns the culprits among them when that heals, else None (the normal bisection follows)."""
        present = [n for n in names if n in known]
        if not present:
            return None
        others = [n for n in names if n not in present]
        if not self.ask(units, others):
            self.cautions.append("%s, the culprit named on another host, is not this site's (out alone, the site "
                                 "still fails): bisecting" % ", ".join(present))
            return None
        # Broken with all of them, healthy with none: which of them, with everything else active?
        found = find_culprits(present, lambda active: self.ask(units, others + list(active)))
        return found["culprits"] if found["complete"] else None

    def run(self, run_id, max_probes=None, known=()):
        units = self.units()
        self.off_dir = os.path.join(self.off_root, run_id)
        result = {"healed": False, "culprits": [], "culprit_files": [], "probes": 0, "trail": self.trail,
                  "suspects": [u["unit"] for u in units], "moved_to": self.off_dir, "cautions": self.cautions,
                  "lists": {}}
        if not units:
            result["note"] = "no active plugin to take out"
            return result
        try:
            self.destinations_free(units)
        except OSError as exc:
            raise RungFailedError(exc, restored=True) from exc
        # The exact lists, before anything moves (rollback writes them back whatever happened meanwhile).
        value_seqs = {}
        names = [u["unit"] for u in units]
        try:
            for name, raw in self.saved.items():
                value_seqs[name] = self.journal.intend_value(self.step, name, binascii.hexlify(raw).decode("ascii"),
                                                             where=dict(self.where, list=name, encoding="hex"))
            self._mkdir(self.off_root)
            self._mkdir(self.off_dir)
            self.put_guard(run_id)
            culprits = self._known_first(units, names, set(known or ())) if known else None
            if culprits is not None:
                result["known_culprit"] = True
            elif not self.ask(units, []):
                # Not the plugins: put everything back as it was.
                self.arrange(units, names)
                why = self._lists_whole()
                if why:
                    raise RuntimeError(why)
                for seq in value_seqs.values():
                    self.journal.done(seq)
                self.drop_guard()
                self._tidy()
                result["note"] = "the site does not answer with every plugin out: plugins are not the cause"
                result["probes"] = len(self.trail)
                result["still_out"] = []
                result["moved"] = []
                return result
            if culprits is None:
                found = find_culprits(names, lambda active: self.ask(units, active),
                                      max_probes=None if max_probes is None else max(0, max_probes - len(self.trail)))
                if not found["complete"]:
                    raise RuntimeError("the probe budget (%d) ran out before the culprit was found (raise max_probes, "
                                       "or 0 for what bisection needs)" % max_probes)
                culprits = found["culprits"]
            self.arrange(units, [n for n in names if n not in culprits])
            culprit_files = [f for u in units if u["unit"] in culprits for f in u["files"]]
            # The lists, exactly as they were minus the culprits.
            for name, raw in self.saved.items():
                current = self.db.get(name)
                target = without(name, raw, culprit_files)
                if current != raw:
                    self.cautions.append("%s changed while plugins were out (written back as saved)" % name)
                if current != target:
                    self.db.set(name, target)
                if self.db.get(name) != target:
                    raise RuntimeError("%s could not be written back (it does not read back as written)" % name)
                result["lists"][name] = {"before": plugin_files(name, raw), "after": plugin_files(name, target)}
            stray = sorted(set(self.out) - set(culprits))
            if stray:  # (cannot happen after arrange(); the rule is checked, not assumed)
                raise RuntimeError("%s would stay out without being culprits" % ", ".join(stray))
            for seq in value_seqs.values():
                self.journal.done(seq)
            self.drop_guard()
            self._tidy()
        except Exception as exc:
            problems = self.put_back(units, value_seqs)
            raise RungFailedError(exc, restored=not problems, still_out=sorted(self.out), problems=problems) from exc
        result.update(culprits=culprits, culprit_files=culprit_files, healed=self.last_healthy)
        result["probes"] = len(self.trail)
        result["still_out"] = sorted(self.out)
        result["moved"] = [{"from": frm, "to": to} for name in sorted(self.out) for frm, to in self.out[name]]
        return result
