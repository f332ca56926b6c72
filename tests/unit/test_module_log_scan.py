"""The wp502_log_scan module through a small harness, as Ansible runs it (args in, JSON out)."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
import wp502_log_scan as mod


def line(text):
    stamp = time.strftime("%Y/%m/%d %H:%M:%S")
    return f"{stamp} [error] 7#7: *1 {text}, client: ::1, server: a, request: \"GET / HTTP/1.1\", host: \"a\"\n"


def test_counts_and_warns_about_what_it_could_not_read(tmp_path, run_module):
    log = tmp_path / "error.log"
    log.write_text(line("recv() failed (104: Connection reset by peer) while reading response header from upstream") * 3)
    out = run_module(mod, path=[str(log), str(tmp_path / "gone.log")], since="15m", _ansible_check_mode=True)
    assert out["_rc"] == 0
    assert out["changed"] is False
    assert out["signatures"]["premature_close"]["count"] == 3
    assert out["total"] == 3
    assert "gone.log: cannot be read" in json.dumps(out["warnings"])  # structured warnings in 2.19
    assert out["window"]["since"] != "all"


def test_fails_with_the_reasons_when_nothing_could_be_read(tmp_path, run_module):
    out = run_module(mod, path=[str(tmp_path / "a.log"), str(tmp_path)], rotated=False)
    assert out["_rc"] == 1
    assert out["failed"] is True
    assert "no log could be read" in out["msg"]
    assert "a.log" in out["msg"] and "is a directory" in out["msg"]


@pytest.mark.parametrize(("args", "message"), [
    ({"since": "last tuesday"}, "is not understood"),
    ({"max_samples": -1}, "max_samples must be 0 or more"),
    ({"kind": "lighttpd"}, "value of kind must be one of"),
])
def test_bad_options_fail_with_an_actionable_message(tmp_path, run_module, args, message):
    log = tmp_path / "error.log"
    log.write_text("")
    out = run_module(mod, path=[str(log)], **args)
    assert out["_rc"] == 1
    assert message in out["msg"]


def test_copytruncate_during_the_scan_is_a_warning_and_loses_no_line(tmp_path, run_module, monkeypatch):
    log = tmp_path / "error.log"
    log.write_text(line("upstream timed out (110: Connection timed out) while reading response header from upstream") * 800)
    inode, real_fdopen = log.stat().st_ino, os.fdopen

    class Rotating:  # logrotate copies and truncates the log after its head was read, before its first chunk
        def __init__(self, fh):
            self._fh = fh

        def readinto(self, view):
            if not (tmp_path / "error.log.1").exists():
                shutil.copyfile(log, tmp_path / "error.log.1")
                os.truncate(log, 0)
            return self._fh.readinto(view)

        def __getattr__(self, name):
            return getattr(self._fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._fh.close()

    def fdopen(fd, *args, **kw):
        fh = real_fdopen(fd, *args, **kw)
        return Rotating(fh) if os.fstat(fd).st_ino == inode else fh

    monkeypatch.setattr(os, "fdopen", fdopen)
    out = run_module(mod, path=[str(log)], since="15m", low_priority=False)
    assert out["_rc"] == 0
    assert out["signatures"]["upstream_timeout"]["count"] == 800
    entry = out["files"][0]
    assert (entry["truncated_at"], entry["rest_from"]) == (65536, str(tmp_path / "error.log.1"))
    assert f"{log} was truncated while it was read (copytruncate): the rest came from {log}.1" in json.dumps(out["warnings"])
