# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""The emergency run's safety net on the host: a lock, a journal written before each change, and
byte-for-byte backups from which every change can be undone (standard library only).

Layout under the state directory (default /var/lib/wp502)::

    lock                      {"run_id", "pid", "started", "heartbeat"} of the run holding the host
    runs/RUN_ID/journal.jsonl one JSON object per line: {"seq", "step", "op", "state": intent|done|undone, ...}
                              (op: file, rename, mkdir, value)
    runs/RUN_ID/backup/N      the bytes a change replaced (N = the entry's seq)
    last                      the run id of the last run

Each change is journaled as ``intent`` (with its backup already on disk) before it happens, and
``done`` after; a run killed between the two leaves an intent that rollback still undoes (undoing
a change that did not happen restores the same bytes). Entries are appended with fsync.
"""

from __future__ import absolute_import, division, print_function

import errno
import json
import os
import re
import shutil
import tempfile
import time

__metaclass__ = type

DEFAULT_STATE_DIR = "/var/lib/wp502"
# What a run id may be: it names a directory under runs/.
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class LockedError(RuntimeError):
    """Another live run holds the host."""


def _write_atomic(path, data, mode=0o600):
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".wp502-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Journal:
    """One emergency run's lock, journal and backups on a host."""

    def __init__(self, run_id, state_dir=DEFAULT_STATE_DIR, stale_after=900, now=time.time):
        if not run_id or "/" in run_id or run_id in (".", ".."):
            raise ValueError("run id %r is not usable as a directory name" % (run_id,))
        self.run_id = run_id
        self.state_dir = state_dir
        self.stale_after = stale_after
        self.now = now
        self.run_dir = os.path.join(state_dir, "runs", run_id)
        self.path = os.path.join(self.run_dir, "journal.jsonl")
        self.lock_path = os.path.join(state_dir, "lock")

    # ---- lock ------------------------------------------------------------------------------
    def read_lock(self):
        try:
            with open(self.lock_path, "rb") as fh:
                return json.loads(fh.read().decode("utf-8") or "{}")
        except (IOError, OSError, ValueError):
            return None

    def acquire(self, force=False):
        """Take the host. A lock whose heartbeat is older than ``stale_after`` seconds belongs to a
        dead run and is taken over (returned as ``recovered``); a live one raises LockedError."""
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        record = {"run_id": self.run_id, "pid": os.getpid(), "started": self.now(), "heartbeat": self.now()}
        data = json.dumps(record).encode()
        try:
            fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self._mark_last()
            return {"acquired": True, "recovered": None}
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        held = self.read_lock() or {}
        if held.get("run_id") == self.run_id:
            self.heartbeat()
            return {"acquired": True, "recovered": None}
        age = self.now() - float(held.get("heartbeat") or 0)
        if not force and age < self.stale_after:
            raise LockedError("run %s holds this host (heartbeat %ds ago); wait for it, or pass force after checking "
                              "it is dead" % (held.get("run_id"), int(age)))
        _write_atomic(self.lock_path, data)
        self._mark_last()
        return {"acquired": True, "recovered": held}

    def heartbeat(self, worker=None):
        """Say the run is alive; ``worker`` is the pid of a long step working on the host (rollback
        refuses while it lives)."""
        held = self.read_lock() or {}
        if held.get("run_id") == self.run_id:
            held["heartbeat"] = self.now()
            if worker is not None:
                held["worker"] = worker
            else:
                held.pop("worker", None)
            _write_atomic(self.lock_path, json.dumps(held).encode())

    def holds_lock(self):
        return (self.read_lock() or {}).get("run_id") == self.run_id

    def release(self):
        held = self.read_lock()
        if held and held.get("run_id") == self.run_id:
            os.unlink(self.lock_path)
            return True
        return False

    def _mark_last(self):
        _write_atomic(os.path.join(self.state_dir, "last"), self.run_id.encode(), mode=0o644)

    # ---- journal -----------------------------------------------------------------------------
    def entries(self):
        """Every journal entry, latest state of each seq; a torn last line (killed mid-write) is ignored."""
        latest = {}
        try:
            with open(self.path, "rb") as fh:
                for raw in fh:
                    try:
                        entry = json.loads(raw.decode("utf-8"))
                    except ValueError:
                        continue
                    latest[entry["seq"]] = entry
        except (IOError, OSError):
            return []
        return [latest[k] for k in sorted(latest)]

    def _append(self, entry):
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        line = (json.dumps(entry, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def intend_file(self, step, path):
        """Before changing (or creating) ``path``: back it up and journal the intent. Returns the seq."""
        seq = len(self.entries()) + 1
        backup = os.path.join(self.run_dir, "backup", str(seq))
        os.makedirs(os.path.dirname(backup), mode=0o700, exist_ok=True)
        existed = os.path.lexists(path)
        if existed:
            shutil.copy2(path, backup)
            st = os.stat(path)
            meta = {"mode": st.st_mode & 0o7777, "uid": st.st_uid, "gid": st.st_gid}
        else:
            meta = {}
        self._append({"seq": seq, "step": step, "op": "file", "path": path, "existed": existed, "backup": backup,
                      "meta": meta, "state": "intent", "at": self.now()})
        return seq

    def intend_rename(self, step, src, dst):
        """Before renaming src to dst (a plugin directory to plugins-off, say)."""
        seq = len(self.entries()) + 1
        self._append({"seq": seq, "step": step, "op": "rename", "src": src, "dst": dst, "state": "intent",
                      "at": self.now()})
        return seq

    def intend_mkdir(self, step, path):
        """Before creating a directory (rollback removes it again once it is empty)."""
        seq = len(self.entries()) + 1
        self._append({"seq": seq, "step": step, "op": "mkdir", "path": path, "state": "intent", "at": self.now()})
        return seq

    def intend_value(self, step, name, before, where=None):
        """Before changing a value held elsewhere (the active_plugins option, say): keep its exact bytes,
        and ``where`` it lives (what rollback needs to write it back)."""
        seq = len(self.entries()) + 1
        self._append({"seq": seq, "step": step, "op": "value", "name": name, "before": before, "where": where or {},
                      "state": "intent", "at": self.now()})
        return seq

    def done(self, seq):
        entry = next(e for e in self.entries() if e["seq"] == seq)
        entry.update(state="done", at=self.now())
        self._append(entry)

    # ---- rollback ----------------------------------------------------------------------------
    def rollback(self, restore_value=None, step=None, seqs=None):
        """Undo every change still in effect (only ``step``'s, or those numbered ``seqs``, when given), latest first;
        ``restore_value(name, before, where)`` puts back values kept by intend_value. Returns what was
        undone; safe to run twice."""
        undone = []
        for entry in reversed(self.entries()):
            if entry["state"] == "undone" or (step is not None and entry["step"] != step):
                continue
            if seqs is not None and entry["seq"] not in seqs:
                continue
            if entry["op"] == "file":
                if entry["existed"]:
                    _restore_file(entry["backup"], entry["path"], entry.get("meta") or {})
                elif os.path.lexists(entry["path"]):
                    os.unlink(entry["path"])
            elif entry["op"] == "rename":
                if os.path.lexists(entry["dst"]) and not os.path.lexists(entry["src"]):
                    # (the directory it came from may have been tidied away after it emptied)
                    if not os.path.isdir(os.path.dirname(entry["src"])):
                        os.makedirs(os.path.dirname(entry["src"]), 0o755)
                    os.rename(entry["dst"], entry["src"])
            elif entry["op"] == "mkdir":
                if os.path.isdir(entry["path"]) and not os.listdir(entry["path"]):
                    os.rmdir(entry["path"])
            elif entry["op"] == "value":
                if restore_value is None:
                    raise ValueError("entry %d keeps %s: a restore_value callback is needed" % (entry["seq"], entry["name"]))
                restore_value(entry["name"], entry["before"], entry.get("where") or {})
            entry.update(state="undone", at=self.now())
            self._append(entry)
            undone.append(entry)
        return undone


def _restore_file(backup, path, meta):
    if not os.path.isdir(os.path.dirname(path)):  # tidied away after the change; its mkdir entry follows
        os.makedirs(os.path.dirname(path), 0o755)
    tmp = path + ".wp502-restore"
    shutil.copy2(backup, tmp)
    if meta:
        os.chmod(tmp, meta.get("mode", 0o644))
        try:
            os.chown(tmp, meta.get("uid", -1), meta.get("gid", -1))
        except OSError:
            pass
    os.rename(tmp, path)


def last_run(state_dir=DEFAULT_STATE_DIR):
    try:
        with open(os.path.join(state_dir, "last"), "rb") as fh:
            return fh.read().decode().strip() or None
    except (IOError, OSError):
        return None
