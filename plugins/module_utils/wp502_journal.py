# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""The emergency run's safety net on the host: a lock, a journal written before each change, and
byte-for-byte backups from which every change can be undone (standard library only).

Layout under the state directory (default /var/lib/wp502)::

    lock                      {"run_id", "token", "owner": {controller, user, pid, host}, "pid", "started",
                              "started_utc", "heartbeat"} of the run holding the host
    runs/RUN_ID/journal.jsonl one JSON object per line: {"seq", "step", "op", "state": intent|done|undone, ...}
                              (op: file, rename, mkdir, value)
    runs/RUN_ID/backup/N      the bytes a change replaced (N = the entry's seq)
    last                      the run id of the last run

Each change is journaled as ``intent`` (with its backup already on disk) before it happens, and
``done`` after; a run killed between the two leaves an intent that rollback still undoes (undoing
a change that did not happen restores the same bytes). Entries are appended with fsync.
"""

from __future__ import absolute_import, division, print_function

import binascii
import errno
import fcntl
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
    """Another live run holds the host; ``holder`` is its lock record."""

    def __init__(self, msg, holder=None):
        super(LockedError, self).__init__(msg)
        self.holder = holder


# How long a run waits for another run that is deciding about the lock right now (milliseconds of work).
GUARD_WAIT = 10.0


def utc(epoch):
    """An epoch as ISO-8601 UTC (``2026-12-01T21:30:05Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def ago(seconds):
    """A duration as an operator reads it: ``45s``, ``4m12s``, ``2h03m``, ``3d04h``."""
    s = max(0, int(seconds))
    if s < 60:
        return "%ds" % s
    if s < 3600:
        return "%dm%02ds" % (s // 60, s % 60)
    if s < 86400:
        return "%dh%02dm" % (s // 3600, s % 3600 // 60)
    return "%dd%02dh" % (s // 86400, s % 86400 // 3600)


def owner_from_env(environ=None):
    """Where a run comes from when the caller did not say: the SSH client's address and the user
    who logged in before ``become`` (best effort; only what the environment holds)."""
    environ = os.environ if environ is None else environ
    owner = {}
    ssh = (environ.get("SSH_CONNECTION") or environ.get("SSH_CLIENT") or "").split()
    if ssh:
        owner["controller"] = ssh[0]
    if environ.get("SUDO_USER"):
        owner["user"] = environ["SUDO_USER"]
    return owner


def describe_origin(owner):
    owner = owner or {}
    if not owner.get("controller") and not owner.get("user"):
        return "an unknown controller (no owner recorded)"
    text = "controller %s" % (owner.get("controller") or "(unknown)")
    if owner.get("user"):
        text += " as %s" % owner["user"]
    if owner.get("pid"):
        text += " (pid %s)" % owner["pid"]
    return text


def describe_holder(held, now, stale_after=None, host=None):
    """The refusal an operator reads: which run holds the host, since when, from where, its last
    heartbeat, and what to do."""
    held = held or {}
    run_id = held.get("run_id") or "(unknown)"
    started = float(held.get("started") or 0)
    beat = float(held.get("heartbeat") or started)
    owner = held.get("owner") or {}
    text = "run %s holds this host: taken %s (%s ago) from %s; last heartbeat %s (%s ago)" % (
        run_id, utc(started), ago(now - started), describe_origin(owner), utc(beat), ago(now - beat))
    if stale_after:
        text += ", counted dead after %s without one (in %s)" % (ago(stale_after), ago(stale_after - (now - beat)))
    where = " on %s" % owner["controller"] if owner.get("controller") else ""
    text += (". Wait for it to end; or, after checking that run is gone (no ansible-playbook of it left%s), run again "
             "with -e wp502_emergency_force=true (module option force=true); to undo what it changed: "
             "ansible-playbook playbooks/rollback-502.yml -l %s -e wp502_run_id=%s"
             % (where, host or owner.get("host") or "HOST", run_id))
    return text


class _Guard:
    """An exclusive flock(2) on the state directory while a run decides about the lock and writes it:
    two runs taking a free or a stale lock at the same moment are serialised, so exactly one wins.
    The lock on the directory itself leaves no file behind and dies with its process."""

    def __init__(self, directory, wait=GUARD_WAIT):
        self.directory = directory
        self.wait = wait
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.directory, os.O_RDONLY)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    os.close(self.fd)
                    if exc.errno in (errno.EAGAIN, errno.EACCES):
                        raise OSError(exc.errno, "another process has held %s for over %d s while deciding about "
                                                 "the lock" % (self.directory, self.wait)) from None
                    raise
                time.sleep(0.02)

    def __exit__(self, *exc_info):
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)
        return False


def _temp_beside(path, data, mode, prefix=".wp502-", suffix=""):
    """A temporary file beside ``path`` holding ``data``, synced to disk, with ``mode``: its name."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
    except Exception:
        os.unlink(tmp)
        raise
    return tmp


def write_candidate(real, data):
    """The new bytes of the file ``real`` in a temp file beside it (same file system: moving it in is a
    rename), with its mode and, when we may, its owner, so that a validator reads it as it will read the
    live file. The name (``.wp502-NAME.XXXX.tmp``) matches no ``*``/``*.conf`` include. Returns its path."""
    st = os.stat(real)
    tmp = _temp_beside(real, data, st.st_mode & 0o7777, prefix=".wp502-%s." % os.path.basename(real), suffix=".tmp")
    try:
        os.chown(tmp, st.st_uid, st.st_gid)
    except OSError:
        pass  # not root: atomic_move keeps what it can
    return tmp


def _create_exclusive(path, data, mode=0o600):
    """Create ``path`` holding ``data`` only if it does not exist (OSError EEXIST otherwise). The
    bytes are written to a temporary file first and hard-linked into place, so a reader never sees
    a half-written lock."""
    tmp = _temp_beside(path, data, mode)
    try:
        try:
            os.link(tmp, path)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            # no hard links on this filesystem: O_EXCL creation (the guard keeps other writers out)
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(out, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
    finally:
        os.unlink(tmp)


def _write_atomic(path, data, mode=0o600):
    tmp = _temp_beside(path, data, mode)
    try:
        os.rename(tmp, path)
    except Exception:
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
    # The lock belongs to exactly one run id: every module call is a new process, so the run id
    # (unique per run: time, host and a random part) is what the run's later calls prove themselves
    # with. The record also says where the run comes from (``owner``: controller, user, pid, host)
    # and carries a ``token`` that is new on every take (and kept by heartbeats).
    def read_lock(self):
        try:
            with open(self.lock_path, "rb") as fh:
                return json.loads(fh.read().decode("utf-8") or "{}")
        except (IOError, OSError, ValueError):
            return None

    def _refusal(self, held, force, owner):
        """Why this run may not take the host from ``held`` (None when it may)."""
        if held is None:
            return None
        if held.get("run_id") == self.run_id:
            theirs = held.get("owner") or {}
            ours = owner or {}
            clash = [k for k in ("controller", "user") if theirs.get(k) and ours.get(k) and theirs[k] != ours[k]]
            if clash:
                return ("run id %s already holds this host from %s, and this run comes from %s: two runs were given the "
                        "same run id; start this one again with a new one" % (self.run_id, describe_origin(theirs),
                                                                              describe_origin(ours)))
            return None
        age = self.now() - float(held.get("heartbeat") or 0)
        if force or age >= self.stale_after:
            return None
        return describe_holder(held, self.now(), self.stale_after, host=(owner or {}).get("host"))

    def would_refuse(self, force=False, owner=None):
        """What :meth:`acquire` would refuse with (None when it would take the host); writes nothing."""
        if not os.path.lexists(self.lock_path):
            return None
        return self._refusal(self.read_lock() or {}, force, owner)

    def acquire(self, force=False, owner=None):
        """Take the host. A lock whose heartbeat is older than ``stale_after`` seconds belongs to a
        dead run and is taken over (returned as ``recovered``); a live one raises LockedError naming
        it. ``owner`` ({controller, user, pid, host}) is recorded in the lock. The decision and the
        write happen under an flock of the state directory, so of two runs taking a free or a stale
        lock at the same moment exactly one wins; runs/RUN_ID is created only once the lock is won,
        so a refused run leaves nothing behind."""
        if not os.path.isdir(self.state_dir):
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        with _Guard(self.state_dir):
            exists = os.path.lexists(self.lock_path)
            held = (self.read_lock() or {}) if exists else None
            why = self._refusal(held, force, owner)
            if why:
                raise LockedError(why, held)
            if held is not None and held.get("run_id") == self.run_id:
                self._beat(held)  # this run again (a retried task): still ours
                return {"acquired": True, "recovered": None}
            now = self.now()
            record = {"run_id": self.run_id, "token": binascii.hexlify(os.urandom(8)).decode("ascii"),
                      "pid": os.getpid(), "owner": dict((k, v) for k, v in (owner or {}).items() if v not in (None, "")),
                      "started": now, "started_utc": utc(now), "heartbeat": now}
            data = json.dumps(record, sort_keys=True).encode()
            if exists:
                _write_atomic(self.lock_path, data)  # the stale (or forced) lock, replaced while guarded
            else:
                _create_exclusive(self.lock_path, data)
            try:
                os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
                self._mark_last()
            except OSError:
                os.unlink(self.lock_path)
                raise
        return {"acquired": True, "recovered": held}

    def _beat(self, held, worker=None):
        held["heartbeat"] = self.now()
        if worker is not None:
            held["worker"] = worker
        else:
            held.pop("worker", None)
        _write_atomic(self.lock_path, json.dumps(held, sort_keys=True).encode())

    def heartbeat(self, worker=None):
        """Say the run is alive; ``worker`` is the pid of a long step working on the host (rollback
        refuses while it lives)."""
        if not os.path.lexists(self.lock_path):
            return
        with _Guard(self.state_dir):
            held = self.read_lock() or {}
            if held.get("run_id") == self.run_id:
                self._beat(held, worker)

    def holds_lock(self):
        return (self.read_lock() or {}).get("run_id") == self.run_id

    def release(self):
        if not os.path.lexists(self.lock_path):
            return False
        with _Guard(self.state_dir):
            held = self.read_lock()
            if held and held.get("run_id") == self.run_id:
                os.unlink(self.lock_path)
                return True
        return False

    def end(self, result=None, storm=True):
        """End the run on the host: release its lock; when it held it, keep ``result`` beside its journal
        (``runs/RUN_ID/result.json``, so that the host itself tells what the last run did) and, with
        ``storm`` (the run acted on the host), record when it ended for storm control. True when the lock
        was this run's."""
        released = self.release()
        if released and result is not None:
            if not os.path.isdir(self.run_dir):
                os.makedirs(self.run_dir, 0o700)
            _write_atomic(os.path.join(self.run_dir, "result.json"),
                          json.dumps(result, indent=2, sort_keys=True, default=str).encode("utf-8"), mode=0o644)
        if released and storm:
            _write_atomic(os.path.join(self.state_dir, "last_end"),
                          json.dumps({"run_id": self.run_id, "at": self.now()}).encode(), mode=0o644)
        return released

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

    def intend_file(self, step, path, reload=None):
        """Before changing (or creating) ``path``: back it up and journal the intent. Returns the seq.

        ``reload``: the systemd units that must reload once the file is back (PHP-FPM for a PHP file
        OPcache may keep compiled), kept in the entry for rollback to name.

        The backup is the bytes of the file ``path`` resolves to (``os.path.realpath``), which is the
        file a change writes (through a symlink, as lineinfile does). ``meta`` records what rollback
        needs to put back the path as it was: ``type`` (``file`` or ``symlink``, with ``link``, the
        link's own target as written, e.g. ``../sites-available/wordpress``), ``real`` (the file
        written), and that file's ``mode``, ``uid``, ``gid`` and SELinux context (``selinux``, the
        ``security.selinux`` extended attribute, when the file has one).
        """
        seq = len(self.entries()) + 1
        backup = os.path.join(self.run_dir, "backup", str(seq))
        os.makedirs(os.path.dirname(backup), mode=0o700, exist_ok=True)
        existed = os.path.lexists(path)
        meta = {}
        if existed:
            real = os.path.realpath(path)
            meta["real"] = real
            if os.path.islink(path):
                meta.update(type="symlink", link=os.readlink(path))
            else:
                meta["type"] = "file"
            if os.path.isfile(real):
                shutil.copy2(real, backup)
                st = os.stat(real)
                meta.update(mode=st.st_mode & 0o7777, uid=st.st_uid, gid=st.st_gid)
                try:
                    # latin-1 keeps any byte of the attribute in JSON and back.
                    meta["selinux"] = os.getxattr(real, "security.selinux").decode("latin-1")
                except (AttributeError, OSError):
                    pass  # no SELinux label on this file system (or no xattr support)
            else:
                meta["real_existed"] = False  # a dangling symlink: only the link is put back
        entry = {"seq": seq, "step": step, "op": "file", "path": path, "existed": existed, "backup": backup,
                 "meta": meta, "state": "intent", "at": self.now()}
        if reload:
            entry["reload"] = list(reload)
        self._append(entry)
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
    """Put ``path`` back as intend_file found it: the backup's bytes in the real file (temp file beside
    it, then rename, with its mode, owner and SELinux context), and a symlink again the same link.

    Entries written before intend_file recorded a type (no ``real``) are restored into ``path``.
    """
    real = meta.get("real") or path
    directory = os.path.dirname(real) or "."
    if not os.path.isdir(directory):  # tidied away after the change; its mkdir entry follows
        os.makedirs(directory, 0o755)
    if meta.get("real_existed", True):
        with open(backup, "rb") as src:
            data = src.read()
        mode = meta["mode"] if "mode" in meta else os.stat(backup).st_mode & 0o7777
        tmp = _temp_beside(real, data, mode, prefix=".wp502-restore-")
        try:
            try:
                os.chown(tmp, meta.get("uid", -1), meta.get("gid", -1))
            except OSError:
                pass  # not root: the file stays ours, as it was written
            if meta.get("selinux"):
                try:
                    os.setxattr(tmp, "security.selinux", meta["selinux"].encode("latin-1"))
                except (AttributeError, OSError):
                    pass  # SELinux not enabled here: nothing to keep
            os.rename(tmp, real)
        except Exception:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise
    elif os.path.lexists(real) and not os.path.isdir(real):
        os.unlink(real)  # the link pointed nowhere before the change
    if meta.get("type") == "symlink" and not (os.path.islink(path) and os.readlink(path) == meta["link"]):
        # the link was replaced (by a file, or another link): the same link again, atomically
        link_tmp = os.path.join(os.path.dirname(path) or ".", ".wp502-link-%d-%s" % (os.getpid(), os.path.basename(path)))
        if os.path.lexists(link_tmp):
            os.unlink(link_tmp)
        os.symlink(meta["link"], link_tmp)
        os.rename(link_tmp, path)


def last_run(state_dir=DEFAULT_STATE_DIR):
    try:
        with open(os.path.join(state_dir, "last"), "rb") as fh:
            return fh.read().decode().strip() or None
    except (IOError, OSError):
        return None


def last_end(state_dir=DEFAULT_STATE_DIR):
    """When the last run that acted on the host ended: ``{"run_id", "at"}``, or None."""
    try:
        with open(os.path.join(state_dir, "last_end"), "r") as fh:
            return json.load(fh)
    except (IOError, OSError, ValueError):
        return None


def lock_options():
    """How a run takes a host, as module options: ``wp502_run``'s (``state=locked``) and ``wp502_evidence``'s
    ``lock`` suboptions (with ``run_id``), so that both take the same ones with the same defaults."""
    return dict(
        state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
        stale_minutes=dict(type="int", default=15),
        storm_minutes=dict(type="int", default=10),
        force=dict(type="bool", default=False),
        owner=dict(type="dict", options=dict(
            controller=dict(type="str"),
            user=dict(type="str"),
            pid=dict(type="int"),
            host=dict(type="str"),
        )),
    )


def take_host(run_id, state_dir=DEFAULT_STATE_DIR, stale_minutes=15, storm_minutes=10, force=False, owner=None,
              check_mode=False, environ=None, now=time.time):
    """Take the host for ``run_id`` (``wp502_run state=locked``, and ``wp502_evidence``'s ``lock``).

    Storm control first (the last run that acted ended less than ``storm_minutes`` ago, unless ``force``),
    then the lock itself (:meth:`Journal.acquire`; in check mode, only whether it could be taken). Returns
    the module result: ``{"changed", "run_id", "lock", "last_run", "recovered"?}``, with ``"msg"`` when the
    host is refused (the caller fails with it, or reports it).
    """
    if not run_id or not RUN_ID.match(run_id):
        return {"changed": False, "run_id": run_id,
                "msg": "run_id %r must be letters, digits, dots, dashes or underscores" % (run_id,)}
    journal = Journal(run_id, state_dir, stale_after=stale_minutes * 60, now=now)
    held = journal.read_lock()
    who = dict(owner_from_env(environ), **dict((k, v) for k, v in (owner or {}).items() if v not in (None, "")))
    ended = last_end(state_dir)
    if (storm_minutes and not force and ended and ended.get("run_id") != run_id
            and now() - ended.get("at", 0) < storm_minutes * 60):
        return {"changed": False, "run_id": run_id, "lock": held, "last_run": last_run(state_dir),
                "msg": "run %s ended on this host %s ago: a new emergency run within %d minutes is refused "
                       "(remediation storm). Look at that run's result (runs/%s/result.json under %s), or run "
                       "again with -e wp502_emergency_force=true (module option force=true)."
                       % (ended.get("run_id"), ago(now() - ended.get("at", 0)), storm_minutes,
                          ended.get("run_id"), state_dir)}
    if check_mode:
        why = journal.would_refuse(force=force, owner=who)
        result = {"changed": not held or held.get("run_id") != run_id, "run_id": run_id, "lock": held,
                  "last_run": last_run(state_dir)}
        if why:
            result.update(changed=False, msg=why)
        return result
    try:
        got = journal.acquire(force=force, owner=who)
    except LockedError as exc:
        return {"changed": False, "run_id": run_id, "lock": exc.holder, "last_run": last_run(state_dir), "msg": str(exc)}
    except OSError as exc:
        return {"changed": False, "run_id": run_id, "msg": "cannot write the lock under %s: %s" % (state_dir, exc)}
    return {"changed": True, "run_id": run_id, "recovered": got["recovered"], "lock": journal.read_lock(),
            "last_run": last_run(state_dir)}
