"""wp502_logscan: the classifier on real lines, timestamps, windows, rotation and bad input."""

from __future__ import annotations

import calendar
import datetime
import gzip
import json
import os
import random
import shutil
import time
import tracemalloc
from pathlib import Path

import pytest
import wp502_logscan as ls

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "logs"


def corpus():
    for name in ("public_lines.jsonl", "lab_lines.jsonl"):
        for n, raw in enumerate((FIXTURES / name).read_text(encoding="utf-8").splitlines(), 1):
            row = json.loads(raw)
            yield pytest.param(row, id=f"{name.split('_', 1)[0]}-{n}-{row['signature']}")


@pytest.mark.parametrize("row", list(corpus()))
def test_real_line_is_classified_as_labelled(row):
    found = ls.classify_line(row["line"])
    assert (found[0] if found else "none") == row["signature"], row["source"]


@pytest.mark.parametrize("row", list(corpus()))
def test_prefilters_select_every_signature_line(row):
    """The fast byte-level prefilters must never drop a line the classifier would count."""
    if row["signature"] == "none":
        return
    raw = row["line"].encode("utf-8")
    kinds = ["auto"] + ([row["kind"]] if row["kind"] in ls.PREFILTERS else [])
    for kind in kinds:
        assert any(rx.search(raw) for rx in ls.PREFILTERS[kind]), (kind, row["line"])


# Odd cases the corpus may not hold, each built on a real line's shape.
ODD = [
    ("connect_refused", '2026/11/23 21:42:05 [crit] 131#131: *19 connect() to unix:/run/php/php8.3-fpm-my.site.sock failed '
     '(2: No such file or directory) while connecting to upstream, client: 2001:db8::1, server: a, request: "GET / HTTP/2.0", '
     'upstream: "fastcgi://unix:/run/php/php8.3-fpm-my.site.sock:", host: "a"'),
    ("connect_refused", '2026/11/23 21:42:05 [error] 9#9: *3 connect() failed (111: Connection refused) while connecting to '
     'upstream, client: ::ffff:10.1.2.3, server: a, request: "POST /wp-admin/admin-ajax.php HTTP/1.1", '
     'upstream: "fastcgi://127.0.0.1:9000", host: "a"'),
    ("connect_refused", '2026/11/23 21:42:05 [crit] 9#9: *3 connect() to unix:/run/php/php-fpm.sock failed (13: Permission denied) '
     'while connecting to upstream, client: 1.2.3.4, server: a, request: "GET / HTTP/1.1", host: "a"'),
    ("connect_refused", '2026/11/23 21:42:05 [error] 9#9: *3 no live upstreams while connecting to upstream, client: 1.2.3.4, '
     'server: a, request: "GET / HTTP/1.1", upstream: "fastcgi://php-pool", host: "a"'),
    ("upstream_timeout", '2026/11/23 21:42:05 [error] 9#9: *3 upstream timed out (110: Connection timed out) while connecting to '
     'upstream, client: 1.2.3.4, server: a, request: "GET / HTTP/1.1", upstream: "fastcgi://10.0.0.5:9000", host: "a"'),
    ("invalid_header", '2026/11/23 21:42:05 [error] 9#9: *3 upstream sent invalid header while reading response header from '
     'upstream, client: 1.2.3.4, server: a, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php7.4-fpm.sock:"'),
    # journald and syslog copies
    ("max_children", "Nov 23 21:40:58 web1 php-fpm8.2[812]: [WARNING] [pool example-com.v2] server reached pm.max_children "
     "setting (12), consider raising it"),
    ("child_signal", "2026-11-23T21:40:58+0000 web1 php-fpm[812]: [WARNING] [pool www] child 4411 exited on signal 9 (SIGKILL) "
     "after 301.2 seconds from start"),
    ("premature_close", "<11>Nov 23 21:40:58 web1 nginx: 2026/11/23 21:40:58 [error] 12#12: *9 upstream prematurely closed "
     'FastCGI stdout while reading response header from upstream, client: 1.2.3.4, server: a, request: "GET / HTTP/1.1"'),
    ("terminate_timeout", "[23-Nov-2026 21:40:58.123456] WARNING: pid 812, fpm_request_check_timed_out(), line 281: [pool www] "
     "child 4411, script '/var/www/wordpress/wp-content/plugins/odd slug+1/ajax.php' (request: \"POST /wp-admin/admin-ajax.php?a=b\") "
     "execution timed out (30.012 sec), terminating"),
    ("seems_busy", "[23-Nov-2026 21:40:58] WARNING: [pool a.b-c_d] seems busy (you may need to increase pm.start_servers, or "
     "pm.min/max_spare_servers), spawning 8 children, there are 0 idle, and 13 total children"),
    ("fastcgi_stderr", '2026/11/23 21:40:58 [error] 9#9: *3 FastCGI sent in stderr: "PHP message: PHP Fatal error:  Uncaught Error: '
     "Call to undefined function foo() in /var/www/wp/wp-content/themes/shopper/functions.php:12\" while reading response header "
     'from upstream, client: 1.2.3.4, server: a, request: "GET / HTTP/1.1"'),
    # not 502 signatures
    ("none", '2026/11/23 21:40:58 [error] 9#9: *3 open() "/var/www/wordpress/favicon.ico" failed (2: No such file or directory), '
     'client: 2001:db8::1, server: a, request: "GET /favicon.ico HTTP/1.1", host: "a"'),
    ("none", '2026/11/23 21:40:58 [error] 9#9: *3 limiting requests, excess: 20.500 by zone "perip", client: 1.2.3.4, server: a, '
     'request: "POST /wp-login.php HTTP/1.1", host: "a"'),
    ("none", "2026/11/23 21:40:58 [info] 9#9: *3 SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) "
     "while SSL handshaking, client: 1.2.3.4, server: 0.0.0.0:443"),
    ("none", '2026/11/23 21:40:58 [error] 9#9: *3 FastCGI sent in stderr: "Primary script unknown" while reading response header '
     'from upstream, client: 1.2.3.4, server: a, request: "GET /x.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/php.sock:"'),
    ("none", '2026/11/23 21:40:58 [error] 9#9: *3 FastCGI sent in stderr: "PHP message: PHP Warning:  Undefined variable $x in '
     '/var/www/wp/wp-content/plugins/a/a.php on line 3; PHP message: upstream timed out (110: Connection timed out) quoted" '
     "while reading response header from upstream, client: 1.2.3.4"),
    ("none", "2026/11/23 21:40:58 [warn] 9#9: *3 an upstream response is buffered to a temporary file "
     "/var/lib/nginx/fastcgi/1/00/0000000001 while reading upstream, client: 1.2.3.4"),
    ("none", "[23-Nov-2026 21:40:58] NOTICE: [pool www] child 170 started"),
    ("none", "[23-Nov-2026 21:40:58] WARNING: [pool www] child 170 exited with code 0 after 3.1 seconds from start"),
    ("invalid_header", "2026/11/23 21:42:05 [error] 3384#0: *101 upstream sent unexpected FastCGI record: 3 while reading "
     'response header from upstream, client: 127.0.0.1, server: localhost, request: "GET / HTTP/1.1", upstream: '
     '"fastcgi://127.0.0.1:9000", host: "localhost:8000"'),
    ("invalid_header", "2026/11/23 21:42:05 [error] 12#12: *7 upstream sent no valid HTTP/1.0 header while reading response "
     'header from upstream, client: 1.2.3.4, server: a, request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:8080/"'),
]


@pytest.mark.parametrize(("signature", "line"), ODD)
def test_odd_lines(signature, line):
    found = ls.classify_line(line)
    assert (found[0] if found else "none") == signature
    if signature != "none":
        assert any(rx.search(line.encode()) for rx in ls.PREFILTERS["auto"])


def test_details_name_upstream_request_pool_and_signal():
    _signature, d = ls.classify_line(ODD[0][1])
    assert d["upstream"] == "unix:/run/php/php8.3-fpm-my.site.sock"
    assert d["request"] == "/"
    _signature, d = ls.classify_line(ODD[1][1])
    assert d["upstream"] == "127.0.0.1:9000"
    assert d["request"] == "/wp-admin/admin-ajax.php"
    _signature, d = ls.classify_line(ODD[7][1])
    assert (d["pool"], d["pid"], d["signal"]) == ("www", 4411, "SIGKILL")
    _signature, d = ls.classify_line(ODD[9][1])
    assert d["request"] == "/wp-admin/admin-ajax.php"
    assert ls.classify_line('x upstream: "fastcgi://unix:///var/run/php-fpm.sock" upstream timed out (110: x)')[1]["upstream"] \
        == "unix:/var/run/php-fpm.sock"


def test_wp_slugs_from_paths():
    text = ("/var/www/wp-content/plugins/woo-commerce_2/x.php /var/www/wp-content/themes/astra/functions.php "
            "/var/www/wp-content/mu-plugins/loader.php /var/www/wp-content/plugins/woo-commerce_2/y.php")
    assert ls.wp_slugs(text) == [("plugin", "woo-commerce_2"), ("theme", "astra"), ("mu-plugin", "loader")]


# ---- timestamps and windows ----------------------------------------------------------------------

UTC_2140 = calendar.timegm((2026, 11, 23, 21, 40, 58, 0, 0, 0))


def local(y, mo, d, h, mi, s):
    return time.mktime((y, mo, d, h, mi, s, 0, 0, -1))


@pytest.mark.parametrize(("line", "expected"), [
    ("2026/11/23 21:40:58 [error] x", local(2026, 11, 23, 21, 40, 58)),
    ("[23-Nov-2026 21:40:58] WARNING: x", local(2026, 11, 23, 21, 40, 58)),
    ("[23-Nov-2026 21:40:58.599789] WARNING: pid 1", local(2026, 11, 23, 21, 40, 58)),
    ("[Mon Nov 23 22:17:12.125191 2026] [proxy:error] x", local(2026, 11, 23, 22, 17, 12)),
    ("[Fri Jun 14 21:50:41 2013] [error] x", local(2013, 6, 14, 21, 50, 41)),
    ("2026-11-23T21:40:58+01:00 host nginx[1]: x", UTC_2140 - 3600),
    ("2026-11-23T21:40:58.828596Z x", UTC_2140),
    ("no time here", None),
])
def test_parse_timestamp(line, expected):
    assert ls.parse_timestamp(line) == expected


def test_syslog_timestamp_takes_the_year_that_is_not_in_the_future():
    now = local(2026, 1, 2, 0, 0, 0)
    assert ls.parse_timestamp("Dec 31 23:59:00 host php-fpm: x", now) == local(2025, 12, 31, 23, 59, 0)
    assert ls.parse_timestamp("Jan  1 10:00:00 host php-fpm: x", now) == local(2026, 1, 1, 10, 0, 0)


@pytest.mark.parametrize(("since", "delta"), [("15m", 900), ("1h", 3600), ("24h", 86400), ("7d", 604800), (" 30s ", 30)])
def test_parse_since_durations(since, delta):
    assert ls.parse_since(since, now=1000000.0) == 1000000.0 - delta


def test_parse_since_iso_and_all():
    assert ls.parse_since("all") is None
    assert ls.parse_since("2026-11-23T21:40:58Z") == UTC_2140
    assert ls.parse_since("2026-11-23T21:40:58+01:00") == UTC_2140 - 3600
    assert ls.parse_since("2026-11-23T21:40:58") == local(2026, 11, 23, 21, 40, 58)
    with pytest.raises(ValueError, match="not understood"):
        ls.parse_since("yesterday")


# ---- files ---------------------------------------------------------------------------------------

def nginx_line(epoch, text='upstream timed out (110: Connection timed out) while reading response header from upstream',
               req="/"):
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(epoch))
    return (f'{stamp} [error] 7#7: *1 {text}, client: 1.2.3.4, server: a, request: "GET {req} HTTP/1.1", '
            f'upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "a"\n')


NOISE = '{} [error] 7#7: *2 open() "/var/www/x.png" failed (2: No such file or directory), client: 1.2.3.4, server: a\n'


def write_log(path, start, count, every=10, step=1.0):
    """count lines one `step` apart from `start`; every `every`-th is a timeout signature."""
    with open(path, "w") as fh:
        for i in range(count):
            t = start + i * step
            if i % every == 0:
                fh.write(nginx_line(t))
            else:
                fh.write(NOISE.format(time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(t))))
    return path


def scan(paths, **kw):
    scanner = ls.Scanner(**kw)
    scanner.scan_paths([str(p) for p in paths])
    return scanner.result()


def test_all_keys_always_present_and_samples_bounded(tmp_path):
    log = tmp_path / "error.log"
    log.write_text("".join(nginx_line(time.time(), req="/" + "x" * 5000) for _line in range(9)))
    res = scan([log], since_epoch=None, max_samples=3)
    assert set(res["signatures"]) == set(ls.SIGNATURES)
    t = res["signatures"]["upstream_timeout"]
    assert t["count"] == 9
    assert len(t["samples"]) == 3
    assert all(len(s) <= ls.SAMPLE_MAX for s in t["samples"])
    assert res["signatures"]["max_children"] == {"count": 0, "first_seen": None, "last_seen": None, "samples": []}
    assert res["files"][0]["kind"] == "nginx"
    assert res["lines_scanned"] == 9
    assert res["by_upstream"] == {"unix:/run/php/php8.2-fpm.sock": 9}


def test_window_counts_only_recent_lines(tmp_path):
    now = float(int(time.time()))
    log = write_log(tmp_path / "error.log", now - 7200, 7200, every=100)  # 2 h, one signature per 100 s
    res = scan([log], since_epoch=now - 900, now=now)
    assert res["signatures"]["upstream_timeout"]["count"] == 9
    first = datetime.datetime.fromisoformat(res["signatures"]["upstream_timeout"]["first_seen"]).timestamp()
    assert now - 900 - 1 <= first <= now
    assert res["window"]["start"] == ls.iso(now - 900)
    full = scan([log], since_epoch=None, now=now)
    assert full["signatures"]["upstream_timeout"]["count"] == 72


def test_windowed_scan_bisects_instead_of_reading_everything(tmp_path):
    now = float(int(time.time()))
    log = write_log(tmp_path / "error.log", now - 86400, 86400, every=500, step=1.0)  # ~9 MB over a day
    size = log.stat().st_size
    res = scan([log], since_epoch=now - 900, now=now, chunk_size=64 * 1024)
    assert res["signatures"]["upstream_timeout"]["count"] == 2  # the window holds 900 lines, 1 in 500 signs
    assert res["bytes_read"] < size / 20
    assert res["files"][0]["start_offset"] > size * 0.9
    # same answer as reading it all
    slow = scan([log], since_epoch=now - 900, now=now, chunk_size=64 * 1024 * 1024)
    assert slow["signatures"]["upstream_timeout"]["count"] == 2


def test_chunk_boundaries_do_not_lose_or_double_lines(tmp_path):
    log = write_log(tmp_path / "error.log", time.time() - 5000, 5000, every=7)
    small = scan([log], since_epoch=None, chunk_size=4096)
    big = scan([log], since_epoch=None)
    assert small["signatures"]["upstream_timeout"]["count"] == big["signatures"]["upstream_timeout"]["count"] == 715
    assert small["lines_scanned"] == big["lines_scanned"] == 5000


def test_rotated_siblings_are_read_newest_first_and_old_ones_skipped(tmp_path):
    now = float(int(time.time()))
    base = tmp_path / "error.log"
    write_log(base, now - 600, 60, every=1, step=10)                      # 60 signatures, last 10 min
    write_log(tmp_path / "error.log.1", now - 4000, 10, every=1)          # 10, about an hour ago
    with gzip.open(tmp_path / "error.log.2.gz", "wt") as fh:              # 5, two days ago
        fh.write("".join(nginx_line(now - 172800 + i) for i in range(5)))
    with gzip.open(tmp_path / "error.log-20261101.gz", "wt") as fh:       # 3, weeks ago
        fh.write("".join(nginx_line(now - 2000000 + i) for i in range(3)))
    os.utime(tmp_path / "error.log.1", (now - 3990, now - 3990))
    os.utime(tmp_path / "error.log.2.gz", (now - 172795, now - 172795))
    os.utime(tmp_path / "error.log-20261101.gz", (now - 1999990, now - 1999990))

    hour = scan([base], since_epoch=now - 3600 * 2, now=now)
    assert hour["signatures"]["upstream_timeout"]["count"] == 70
    read = {Path(f["path"]).name: f for f in hour["files"]}
    assert read["error.log.2.gz"]["bytes_read"] == 0  # last written before the window: not opened
    assert [Path(f["path"]).name for f in hour["files"]][:2] == ["error.log", "error.log.1"]

    everything = scan([base], since_epoch=None, now=now)
    assert everything["signatures"]["upstream_timeout"]["count"] == 78
    gz = {Path(f["path"]).name: f for f in everything["files"]}["error.log.2.gz"]
    assert gz["compressed"] and gz["rotated"] and gz["bytes_decompressed"] > gz["bytes_read"]

    alone = scan([base], since_epoch=None, now=now, rotated=False)
    assert alone["signatures"]["upstream_timeout"]["count"] == 60


def test_globs_are_expanded_and_duplicates_read_once(tmp_path):
    write_log(tmp_path / "a-error.log", time.time(), 10, every=1)
    os.link(tmp_path / "a-error.log", tmp_path / "b-error.log")
    res = scan([tmp_path / "*-error.log", tmp_path / "a-error.log"], since_epoch=None, rotated=False)
    assert res["signatures"]["upstream_timeout"]["count"] == 10
    assert any("same file" in w for f in res["files"] for w in f.get("warnings", []))


def test_bad_input_is_reported_per_file_and_loses_nothing(tmp_path):
    good = write_log(tmp_path / "error.log", time.time(), 20, every=1)
    corrupt = tmp_path / "error.log.1.gz"
    data = gzip.compress(good.read_bytes())
    corrupt.write_bytes(data[:20] + b"\xff" * 40 + data[60:])
    truncated = tmp_path / "error.log.2.gz"
    truncated.write_bytes(data[: len(data) // 2])
    not_gzip = tmp_path / "error.log.3.gz"
    not_gzip.write_bytes(b"plain text, not gzip\n")
    (tmp_path / "adir").mkdir()
    fifo = tmp_path / "fifo.log"
    os.mkfifo(fifo)
    res = scan([good, tmp_path / "missing.log", tmp_path / "adir", fifo, tmp_path / "nothing-*.log"], since_epoch=None)
    by_name = {Path(f["path"]).name: f for f in res["files"]}
    assert res["signatures"]["upstream_timeout"]["count"] >= 20  # the good file, plus what the damaged ones still gave
    assert "truncated gzip" in " ".join(by_name["error.log.2.gz"]["warnings"])
    assert "corrupt gzip" in " ".join(by_name["error.log.1.gz"]["warnings"])
    assert "corrupt gzip" in " ".join(by_name["error.log.3.gz"]["warnings"])
    assert "No such file" in " ".join(by_name["missing.log"]["warnings"])
    assert "is a directory" in " ".join(by_name["adir"]["warnings"])
    assert "not a regular file" in " ".join(by_name["fifo.log"]["warnings"])
    assert "no file matches" in " ".join(by_name["nothing-*.log"]["warnings"])
    assert len(res["warnings"]) >= 6
    assert by_name["error.log"]["read"] and not by_name["missing.log"]["read"]


def test_truncated_gzip_keeps_the_lines_before_the_cut(tmp_path):
    lines = "".join(nginx_line(time.time() - 100 + i) for i in range(2000))
    data = gzip.compress(lines.encode())
    (tmp_path / "e.log.1.gz").write_bytes(data[: int(len(data) * 0.8)])
    res = scan([tmp_path / "e.log.1.gz"], since_epoch=None)
    assert 1000 < res["signatures"]["upstream_timeout"]["count"] < 2000


def test_multi_member_gzip(tmp_path):
    part = "".join(nginx_line(time.time() - i) for i in range(5)).encode()
    (tmp_path / "e.log.1.gz").write_bytes(gzip.compress(part) + gzip.compress(part))
    res = scan([tmp_path / "e.log.1.gz"], since_epoch=None)
    assert res["signatures"]["upstream_timeout"]["count"] == 10
    assert not res["warnings"]


# ---- copytruncate under the scan ------------------------------------------------------------------

class ReadHook:
    """The log's own file object, calling ``hook(call, index)`` before each ``read`` (the head, bisect probes)
    or ``readinto`` (a chunk of the main loop): a test rotates the log at an exact point of the scan."""

    def __init__(self, fh, hook):
        self._fh, self._hook, self._calls = fh, hook, {"read": 0, "readinto": 0}

    def _before(self, call):
        self._hook(call, self._calls[call])
        self._calls[call] += 1

    def read(self, *args):
        self._before("read")
        return self._fh.read(*args)

    def readinto(self, view):
        self._before("readinto")
        return self._fh.readinto(view)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


@pytest.fixture
def hook_reads(monkeypatch):
    """hook_reads(log, hook): every file object the scanner opens on log's inode goes through ReadHook."""

    def arm(log, hook):
        inode = os.stat(log).st_ino
        real = os.fdopen

        def fdopen(fd, *args, **kw):
            fh = real(fd, *args, **kw)
            return ReadHook(fh, hook) if os.fstat(fd).st_ino == inode else fh

        monkeypatch.setattr(ls.os, "fdopen", fdopen)

    return arm


def copytruncate(log, new=b"", copy=None):
    """What logrotate does with copytruncate (and delaycompress): error.log.1 -> error.log.2, the log copied to
    error.log.1, the log truncated to 0; then the server appends `new` at offset 0 (O_APPEND).
    `copy` replaces the copy's content: a sibling that is not the log's copy."""
    log = Path(log)
    one, two = log.with_name(log.name + ".1"), log.with_name(log.name + ".2")
    if one.exists():
        one.rename(two)
    if copy is None:
        shutil.copyfile(log, one)
    else:
        one.write_bytes(copy)
    os.truncate(log, 0)
    with open(log, "ab") as fh:
        fh.write(new)


def at(call, index, action):
    """A hook that runs action once, just before the index-th call of that kind."""
    def hook(name, i):
        if (name, i) == (call, index):
            action()
    return hook


def new_lines(now, count=30):
    return "".join(nginx_line(now + 1 + i, req="/after-rotation") for i in range(count)).encode()


def reference(tmp_path, content, **kw):
    """The scan of a file holding content, never rotated: what a rotation under the scan must not change."""
    ref = tmp_path / "ref" / "error.log"
    ref.parent.mkdir()
    ref.write_bytes(content)
    return scan([ref], rotated=False, **kw)


def same_findings(res, ref):
    assert res["signatures"] == ref["signatures"]
    for key in ("total", "by_upstream", "top_requests"):
        assert res[key] == ref[key], key


HEAD = 65536  # read when a file is opened; the main loop goes on after it


@pytest.mark.parametrize("chunk", [0, 5], ids=["before-the-first-chunk", "between-chunks"])
def test_copytruncate_while_reading_reads_the_rest_from_the_copy(tmp_path, hook_reads, chunk):
    now = float(int(time.time()))
    log = write_log(tmp_path / "error.log", now - 3000, 3000, every=7)
    old = log.read_bytes()
    (tmp_path / "error.log.1").write_text(nginx_line(now - 90000) * 4)  # yesterday's rotation
    os.utime(tmp_path / "error.log.1", (now - 86400, now - 86400))
    new = new_lines(now)
    hook_reads(log, at("readinto", chunk, lambda: copytruncate(log, new)))

    res = scan([log], since_epoch=None, now=now, chunk_size=4096)

    same_findings(res, reference(tmp_path, old + new, since_epoch=None, now=now, chunk_size=4096))
    assert res["signatures"]["upstream_timeout"]["count"] == 429 + 30
    entry, copy_entry = res["files"]
    assert entry["truncated_at"] == HEAD + chunk * 4096
    assert entry["rest_from"] == str(tmp_path / "error.log.1")
    assert entry["lines_scanned"] == 3030
    assert res["warnings"] == [f"{log} was truncated while it was read (copytruncate): the rest came from {log}.1; "
                               f"the {len(new)} bytes written to it since were read from its offset 0"]
    assert entry["warnings"] == res["warnings"]
    # the copy, listed as the sibling error.log.1 before the rotation, is not read a second time
    assert copy_entry["path"] == str(tmp_path / "error.log.1") and copy_entry["bytes_read"] == 0
    assert copy_entry["warnings"] == [f"already read as the rest of {log}, truncated while it was read "
                                      "(copytruncate): skipped"]


def test_a_copy_that_ends_inside_a_line_does_not_merge_it_with_the_new_lines(tmp_path, hook_reads):
    now = float(int(time.time()))
    log = tmp_path / "error.log"
    old = (NOISE.format("2026/11/23 21:40:58") * 600).encode() + nginx_line(now).encode()[:60]  # cut by the copy
    log.write_bytes(old)
    new = new_lines(now, 3)
    hook_reads(log, at("readinto", 2, lambda: copytruncate(log, new)))
    res = scan([log], since_epoch=None, now=now, chunk_size=4096, rotated=False)
    same_findings(res, reference(tmp_path, old + b"\n" + new, since_epoch=None, now=now, chunk_size=4096))
    assert res["signatures"]["upstream_timeout"]["count"] == 3
    assert res["files"][0]["lines_scanned"] == 600 + 1 + 3


def test_copytruncate_of_a_windowed_scan(tmp_path, hook_reads):
    """Truncated while the window's chunks are read: the rest comes from the copy at the same offsets."""
    now = float(int(time.time()))
    log = write_log(tmp_path / "error.log", now - 20000, 20000, every=50)  # ~3.8 MB over 5.5 hours
    old, new = log.read_bytes(), new_lines(now)
    hook_reads(log, at("readinto", 3, lambda: copytruncate(log, new)))
    res = scan([log], since_epoch=now - 3600, now=now, chunk_size=4096, rotated=False)
    same_findings(res, reference(tmp_path, old + new, since_epoch=now - 3600, now=now, chunk_size=4096))
    assert res["signatures"]["upstream_timeout"]["count"] == 72 + 30
    entry = res["files"][0]
    assert entry["start_offset"] > len(old) * 0.7
    assert entry["truncated_at"] == entry["start_offset"] + 3 * 4096
    assert entry["rest_from"] == str(tmp_path / "error.log.1")
    assert entry["bytes_read"] < len(old) / 4  # the rest of the window only, not the whole copy
    assert "the rest came from" in res["warnings"][0]


def test_copytruncate_while_bisecting_looks_for_the_window_in_the_copy(tmp_path, hook_reads):
    now = float(int(time.time()))
    log = write_log(tmp_path / "error.log", now - 20000, 20000, every=50)
    old, new = log.read_bytes(), new_lines(now)
    hook_reads(log, at("read", 3, lambda: copytruncate(log, new)))  # the head, two probes, then the rotation
    res = scan([log], since_epoch=now - 3600, now=now, chunk_size=4096, rotated=False)
    same_findings(res, reference(tmp_path, old + new, since_epoch=now - 3600, now=now, chunk_size=4096))
    entry = res["files"][0]
    assert entry["truncated_at"] == 0  # nothing of the window had been read
    assert entry["rest_from"] == str(tmp_path / "error.log.1")
    assert entry["start_offset"] > len(old) * 0.7
    assert entry["bytes_read"] < len(old) / 4


def test_a_copy_shorter_than_the_file_was_says_where_it_ends(tmp_path, hook_reads):
    """logrotate copied the log, the server wrote more, then logrotate truncated: those lines are in neither file."""
    now = float(int(time.time()))
    log = write_log(tmp_path / "error.log", now - 3000, 3000, every=7)
    old = log.read_bytes()
    end = old.index(b"\n", len(old) - 5000) + 1
    hook_reads(log, at("readinto", 5, lambda: copytruncate(log, copy=old[:end])))
    res = scan([log], since_epoch=None, now=now, chunk_size=4096, rotated=False)
    same_findings(res, reference(tmp_path, old[:end], since_epoch=None, now=now, chunk_size=4096))
    assert res["warnings"] == [f"{log} was truncated while it was read (copytruncate): the rest came from {log}.1 "
                               f"(it ends at offset {end}, before the {len(old)} bytes the file had when opened: "
                               f"lines after offset {end} may be missing)"]


def test_a_rotated_file_with_other_content_is_not_used(tmp_path, hook_reads):
    now = float(int(time.time()))
    log = write_log(tmp_path / "error.log", now - 3000, 3000, every=7)
    old = log.read_bytes()
    other = write_log(tmp_path / "other.log", now - 90000, 4000, every=1).read_bytes()  # larger, all signatures
    hook_reads(log, at("readinto", 5, lambda: copytruncate(log, copy=other)))
    res = scan([log], since_epoch=None, now=now, chunk_size=4096, rotated=False)
    cut = HEAD + 5 * 4096
    entry = res["files"][0]
    assert (entry["truncated_at"], entry["rest_from"]) == (cut, None)
    # what was read before the truncation, as before, and nothing from the other file
    same_findings(res, reference(tmp_path, old[:cut], since_epoch=None, now=now, chunk_size=4096))
    assert res["signatures"]["upstream_timeout"]["count"] < 429
    assert res["warnings"] == [f"{log} was truncated while it was read (copytruncate?) and no rotated copy matches "
                               f"what was read: lines after offset {cut} may be missing"]


def test_truncated_before_its_first_byte_was_read_reads_the_new_lines_and_says_what_may_be_missing(tmp_path, hook_reads):
    """Nothing of the old content was read, so nothing can tell its copy from another rotated file."""
    now = float(int(time.time()))
    log = write_log(tmp_path / "error.log", now - 3000, 3000, every=7)
    new = new_lines(now, 5)
    hook_reads(log, at("read", 0, lambda: copytruncate(log, new)))
    res = scan([log], since_epoch=None, now=now, chunk_size=4096, rotated=False)
    same_findings(res, reference(tmp_path, new, since_epoch=None, now=now, chunk_size=4096))
    assert res["files"][0]["truncated_at"] == 0
    assert res["warnings"] == [f"{log} was truncated while it was read (copytruncate?) and no rotated copy matches "
                               f"what was read: lines after offset 0 may be missing; the {len(new)} bytes written "
                               "to it since were read from its offset 0"]


def test_no_truncation_no_extra_entries(tmp_path):
    log = write_log(tmp_path / "error.log", time.time() - 3000, 3000, every=7)
    shutil.copyfile(log, tmp_path / "error.log.1")  # a sibling with the same bytes is just a sibling
    res = scan([log], since_epoch=None, chunk_size=4096)
    assert "truncated_at" not in res["files"][0] and not res["warnings"]
    assert res["signatures"]["upstream_timeout"]["count"] == 2 * 429


def test_invalid_utf8_long_lines_and_no_final_newline(tmp_path):
    log = tmp_path / "error.log"
    bad = nginx_line(time.time()).encode().replace(b"client", b"cli\xff\xfeent")
    huge = b"2026/11/23 21:40:58 [error] 1#1: *1 " + b"A" * (3 * 1024 * 1024) + b"\n"
    log.write_bytes(bad + huge + nginx_line(time.time()).encode().rstrip(b"\n"))
    res = scan([log], since_epoch=None, chunk_size=1024 * 1024)
    assert res["signatures"]["upstream_timeout"]["count"] == 2
    assert "\ufffd" in res["signatures"]["upstream_timeout"]["samples"][0]
    assert any("was cut" in w for w in res["files"][0].get("warnings", []))


def test_fpm_log_slowlog_dedupe_suspects_and_terminated_workers(tmp_path):
    fpm = tmp_path / "php8.2-fpm.log"
    fpm.write_text(
        "[23-Nov-2026 22:13:26] WARNING: [pool www] server reached pm.max_children setting (2), consider raising it\n"
        "[23-Nov-2026 22:13:30] WARNING: [pool www] child 292, script '/var/www/wordpress/wp-login.php' "
        "(request: \"GET /wp-login.php\") executing too slow (5.436682 sec), logging\n"
        "[23-Nov-2026 22:13:30] NOTICE: child 292 stopped for tracing\n"
        "[23-Nov-2026 22:14:00] WARNING: [pool www] child 300, script '/var/www/wordpress/index.php' "
        "(request: \"GET /index.php\") execution timed out (30.012 sec), terminating\n"
        "[23-Nov-2026 22:14:00] WARNING: [pool www] child 300 exited on signal 15 (SIGTERM) after 31.2 seconds from start\n"
        "[23-Nov-2026 22:15:00] WARNING: [pool www] child 301 exited on signal 11 (SIGSEGV - core dumped) after 2.1 seconds from start\n"
    )
    slow = tmp_path / "php8.2-fpm.slow.log"
    slow.write_text(
        "\n[23-Nov-2026 22:13:30]  [pool www] pid 292\n"
        "script_filename = /var/www/wordpress/wp-login.php\n"
        "[0x00007ff86d014940] sleep() /var/www/wordpress/wp-content/plugins/wp502-fault-slow/wp502-fault-slow.php:16\n"
        "[0x00007ff86d0148c0] wp502_fault_slow_wait() /var/www/wordpress/wp-includes/class-wp-hook.php:308\n"
        "\n[23-Nov-2026 22:13:40]  [pool www] pid 293\n"
        "script_filename = /var/www/wordpress/index.php\n"
        "[0x00007ff86d014690] curl_exec() /var/www/wordpress/wp-content/plugins/wp502-fault-slow/lib/http.php:9\n"
        "[0x00007ff86d014610] get() /var/www/wordpress/wp-content/themes/astra/functions.php:88\n"
    )
    res = scan([fpm, slow], since_epoch=None)
    sigs = {k: v["count"] for k, v in res["signatures"].items()}
    assert sigs["max_children"] == 1
    assert sigs["slow_request"] == 2  # 292 is in both files: once; 293 only in the slowlog
    assert sigs["terminate_timeout"] == 1
    assert sigs["child_signal"] == 1  # the SIGTERM after "terminating" is the timeout, not a crash
    assert res["child_signals"] == {"SIGSEGV": 1}
    assert res["by_pool"]["www"] >= 4
    kinds = {Path(f["path"]).name: f["kind"] for f in res["files"]}
    assert kinds == {"php8.2-fpm.log": "fpm", "php8.2-fpm.slow.log": "fpm_slowlog"}
    top = res["suspects"][0]
    assert (top["type"], top["slug"], top["count"], top["sources"]) == ("plugin", "wp502-fault-slow", 2, {"slowlog": 2})
    astra = next(s for s in res["suspects"] if s["slug"] == "astra")
    # which pool and which site directory named it, for the per-site verdict
    assert astra == {"type": "theme", "slug": "astra", "count": 1, "sources": {"slowlog": 1},
                     "pools": {"www": 1}, "servers": {}, "scripts": {"/var/www/wordpress": 1}}


def test_apache_two_lines_for_one_failure_count_once(tmp_path):
    log = tmp_path / "error.log"
    log.write_text(
        "[Mon Nov 23 22:17:12.125191 2026] [proxy:error] [pid 80:tid 96] (2)No such file or directory: AH02454: FCGI: attempt "
        "to connect to Unix domain socket /run/php/php8.2-fpm.sock (localhost:8000) failed\n"
        "[Mon Nov 23 22:17:12.125244 2026] [proxy_fcgi:error] [pid 80:tid 96] [client 172.17.0.1:36992] AH01079: failed to "
        "make connection to backend: localhost\n"
        "[Mon Nov 23 22:17:13.000001 2026] [proxy_fcgi:error] [pid 80:tid 97] [client 172.17.0.1:36993] AH01079: failed to "
        "make connection to backend: localhost\n"
    )
    res = scan([log], since_epoch=None)
    assert res["files"][0]["kind"] == "apache"
    assert res["signatures"]["connect_refused"]["count"] == 2
    assert res["by_upstream"] == {"unix:/run/php/php8.2-fpm.sock": 1}


def test_fatal_fastcgi_stderr_names_the_plugin(tmp_path):
    log = tmp_path / "error.log"
    log.write_text(ODD[11][1] + "\n" + ODD[16][1] + "\n")
    res = scan([log], since_epoch=None)
    assert res["signatures"]["fastcgi_stderr"]["count"] == 1
    assert res["signatures"]["upstream_timeout"]["count"] == 0  # quoted inside a PHP warning: not nginx's own
    assert [(s["type"], s["slug"]) for s in res["suspects"]] == [("theme", "shopper")]


# ---- robustness: random bytes, truncated gzip, huge lines -------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_random_bytes_never_raise_and_memory_stays_bounded(tmp_path, seed):
    rng = random.Random(seed)
    pieces = []
    for _piece in range(400):
        choice = rng.random()
        if choice < 0.3:
            pieces.append(rng.randbytes(rng.randint(0, 3000)))
        elif choice < 0.6:
            line = rng.choice(ODD)[1].encode()
            cut = rng.randint(0, len(line))
            pieces.append(line[:cut] + rng.randbytes(rng.randint(0, 20)) + line[cut:])
        else:
            pieces.append(b"\n" * rng.randint(1, 3))
    raw = b"".join(pieces)
    (tmp_path / "fuzz.log").write_bytes(raw)
    gz = gzip.compress(raw)
    (tmp_path / "fuzz.log.1.gz").write_bytes(gz[: rng.randint(0, len(gz))])
    (tmp_path / "fuzz.log.2.gz").write_bytes(rng.randbytes(5000))
    (tmp_path / "fuzz.log.3").write_bytes(b"x" * (1024 * 1024 + 17) + raw)
    tracemalloc.start()
    try:
        for kind in ls.KINDS:
            res = scan([tmp_path / "fuzz.log"], since_epoch=None, kind=kind, chunk_size=1 << 16)
            assert set(res["signatures"]) == set(ls.SIGNATURES)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 48 * 1024 * 1024


# ---- attribution to sites: keys recorded in the same pass ---------------------------------------------

SHARED_NGINX = (
    '2026/11/23 22:10:01 [crit] 812#812: *1201 connect() to unix:/run/php/siteb.sock failed (2: No such file or '
    'directory) while connecting to upstream, client: 203.0.113.7, server: siteb.test, request: "GET / HTTP/1.1", '
    'upstream: "fastcgi://unix:/run/php/siteb.sock:", host: "siteb.test"\n'
    '2026/11/23 22:10:02 [error] 812#812: *1202 upstream timed out (110: Connection timed out) while reading response '
    'header from upstream, client: 2001:db8::9, server: shop.example, request: "POST /?wc-ajax=checkout HTTP/2.0", '
    'upstream: "fastcgi://127.0.0.1:9001", host: "www.shop.example"\n'
    '2026/11/23 22:10:03 [crit] 812#812: *1203 connect() to unix:/run/php/siteb.sock failed (2: No such file or '
    'directory) while connecting to upstream, client: 203.0.113.8, server: siteb.test, request: "GET /wp-login.php '
    'HTTP/1.1", upstream: "fastcgi://unix:/run/php/siteb.sock:", host: "www.siteb.test"\n'
    '2026/11/23 22:10:04 [error] 812#812: *1204 FastCGI sent in stderr: "PHP message: PHP Fatal error:  Uncaught Error: '
    'Call to undefined function wc_get_order() in /var/www/shop/wp-content/plugins/shop-sync/sync.php:42" while reading '
    'response header from upstream, client: 198.51.100.4, server: shop.example, request: "GET /sync HTTP/1.1", '
    'upstream: "fastcgi://127.0.0.1:9001", host: "shop.example"\n'
    '2026/11/23 22:10:05 [error] 812#812: *1205 open() "/var/www/siteb/favicon.ico" failed (2: No such file or '
    'directory), client: 203.0.113.7, server: siteb.test, request: "GET /favicon.ico HTTP/1.1", host: "siteb.test"\n'
)


def groups_by(res, **keys):
    return [g for g in res["attributed"] if all(g[k] == v for k, v in keys.items())]


def test_a_shared_error_log_is_split_by_server_and_upstream(tmp_path):
    log = tmp_path / "error.log"
    log.write_text(SHARED_NGINX)
    res = scan([log], since_epoch=None)
    assert res["total"] == 4  # the 404 is no signature
    [b] = groups_by(res, server="siteb.test")
    assert (b["file"], b["upstream"], b["pool"], b["script"]) == (str(log), "unix:/run/php/siteb.sock", None, None)
    assert b["total"] == 2 and b["signatures"]["connect_refused"]["count"] == 2
    assert len(b["signatures"]["connect_refused"]["samples"]) == 2
    shop = groups_by(res, server="shop.example")
    assert sorted(g["total"] for g in shop) == [1, 1]
    fatal = next(g for g in shop if "fastcgi_stderr" in g["signatures"])
    # the fatal error names its file: the site's directory is a key, the plugin a suspect of that group
    assert fatal["script"] == "/var/www/shop" and fatal["upstream"] == "127.0.0.1:9001"
    assert fatal["suspects"] == [{"type": "plugin", "slug": "shop-sync", "count": 1, "sources": {"fastcgi_stderr": 1}}]
    suspect = res["suspects"][0]
    assert suspect["servers"] == {"shop.example": 1} and suspect["scripts"] == {"/var/www/shop": 1}
    # every counted line is in exactly one group
    assert sum(g["total"] for g in res["attributed"]) == res["total"]


def test_fpm_pool_lines_and_slowlog_entries_carry_pool_and_script(tmp_path):
    fpm = tmp_path / "php8.2-fpm.log"
    fpm.write_text(
        "[23-Nov-2026 22:13:26] WARNING: [pool siteb] server reached pm.max_children setting (5), consider raising it\n"
        "[23-Nov-2026 22:13:27] WARNING: [pool web4-shop] seems busy (you may need to increase pm.start_servers, or "
        "pm.min/max_spare_servers), spawning 8 children, there are 0 idle, and 11 total children\n"
        "[23-Nov-2026 22:14:00] WARNING: [pool siteb] child 300, script '/var/www/siteb/wp-cron.php' "
        "(request: \"GET /wp-cron.php?doing_wp_cron\") execution timed out (30.012 sec), terminating\n"
    )
    slow = tmp_path / "siteb-slow.log"
    slow.write_text(
        "\n[23-Nov-2026 22:13:40]  [pool siteb] pid 293\n"
        "script_filename = /var/www/siteb/index.php\n"
        "[0x00007ff86d014690] mysqli_query() /var/www/siteb/wp-includes/class-wpdb.php:2351\n"
        "[0x00007ff86d014610] get() /var/www/siteb/wp-content/plugins/report-cache/report.php:88\n"
    )
    res = scan([fpm, slow], since_epoch=None)
    [busy] = groups_by(res, pool="web4-shop")
    assert (busy["script"], busy["file"], busy["signatures"]["seems_busy"]["count"]) == (None, str(fpm), 1)
    [limit] = groups_by(res, pool="siteb", script=None)
    assert limit["signatures"]["max_children"]["count"] == 1
    [term] = groups_by(res, pool="siteb", file=str(fpm), script="/var/www/siteb")
    assert term["signatures"]["terminate_timeout"]["count"] == 1
    [entry] = groups_by(res, file=str(slow))
    assert (entry["pool"], entry["script"]) == ("siteb", "/var/www/siteb")
    assert entry["slow_functions"] == {"mysqli_query": 1}
    assert entry["suspects"][0]["slug"] == "report-cache"


def test_apache_lines_carry_the_socket_and_rotated_files_their_log(tmp_path):
    log = tmp_path / "siteb_error.log"
    log.write_text("")
    rotated = tmp_path / "siteb_error.log.1"
    rotated.write_text(
        "[Mon Nov 23 22:17:12.125191 2026] [proxy:error] [pid 80:tid 96] (111)Connection refused: AH02454: FCGI: attempt "
        "to connect to Unix domain socket /var/lib/php8.2-fpm/web4.sock (localhost:8000) failed\n"
        "[Mon Nov 23 22:17:12.125244 2026] [proxy_fcgi:error] [pid 80:tid 96] [client 172.17.0.1:36992] AH01079: failed to "
        "make connection to backend: localhost\n"
        "[Mon Nov 23 22:18:01.000001 2026] [proxy_fcgi:error] [pid 81:tid 98] [client 172.17.0.1:36999] AH01102: error "
        "reading status line from remote server httpd-UDS:0\n"
    )
    res = scan([log], since_epoch=None)
    assert {(g["file"], g["upstream"], g["total"]) for g in res["attributed"]} == {
        (str(log), "unix:/var/lib/php8.2-fpm/web4.sock", 1), (str(log), None, 1)}


@pytest.mark.parametrize(("path", "root"), [
    ("/var/www/b/wp-content/plugins/x/x.php", "/var/www/b"), ("/var/www/b/index.php", "/var/www/b"),
    ("/srv/sites/c/public/wp-admin/admin-ajax.php", "/srv/sites/c/public"), ("/wp-cron.php", "/"),
    ("relative.php", None), ("", None)])
def test_script_root(path, root):
    assert ls.script_root(path) == root


def test_groups_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(ls, "MAX_GROUPS", 3)
    log = tmp_path / "error.log"
    log.write_text("".join(
        f'2026/11/23 22:10:{i:02d} [error] 1#1: *{i} upstream timed out (110: Connection timed out) while reading '
        f'response header from upstream, client: 1.2.3.4, server: s{i}.test, request: "GET / HTTP/1.1", upstream: '
        f'"fastcgi://127.0.0.1:9000", host: "s{i}.test"\n' for i in range(10)))
    res = scan([log], since_epoch=None)
    assert len(res["attributed"]) == 4  # three groups, then the file's own
    assert sum(g["total"] for g in res["attributed"]) == 10


def test_a_pools_own_php_error_log_counts_its_fatal_errors_in_the_window(tmp_path):
    # php_admin_value[error_log] = /var/log/php/siteb-error.log: PHP writes there itself, with its zone
    log = tmp_path / "siteb-error.log"
    log.write_text(
        "[23-Nov-2026 20:00:00 UTC] PHP Fatal error:  Uncaught Error: Call to undefined function old() in "
        "/var/www/siteb/wp-content/plugins/legacy/legacy.php:3\n"
        "[23-Nov-2026 22:10:00 UTC] PHP Warning:  Undefined array key \"x\" in /var/www/siteb/wp-content/themes/t/f.php on line 9\n"
        "[23-Nov-2026 22:10:01 UTC] PHP Fatal error:  Allowed memory size of 268435456 bytes exhausted (tried to allocate "
        "20480 bytes) in /var/www/siteb/wp-content/plugins/big-export/export.php on line 812\n"
        "[23-Nov-2026 22:10:02 UTC] PHP Parse error:  syntax error, unexpected token \"}\" in "
        "/var/www/siteb/wp-content/mu-plugins/tweaks.php on line 14\n")
    since = calendar.timegm((2026, 11, 23, 22, 0, 0, 0, 0, 0))
    res = scan([log], since_epoch=since, now=since + 3600)
    assert res["signatures"]["fastcgi_stderr"]["count"] == 2  # the 20:00 one is before the window, the warning no fatal
    [group] = res["attributed"]
    assert (group["file"], group["script"], group["pool"]) == (str(log), "/var/www/siteb", None)
    assert [(s["type"], s["slug"]) for s in group["suspects"]] == [("mu-plugin", "tweaks"), ("plugin", "big-export")]


@pytest.mark.parametrize(("line", "expected"), [
    ("[23-Nov-2026 22:10:01 UTC] PHP Fatal error:  x", calendar.timegm((2026, 11, 23, 22, 10, 1, 0, 0, 0))),
    ("[23-Nov-2026 22:10:01] WARNING: [pool www] x", time.mktime((2026, 11, 23, 22, 10, 1, 0, 0, -1))),
    ("[23-Nov-2026 22:10:01 Europe/Berlin] PHP Fatal error:  x", time.mktime((2026, 11, 23, 22, 10, 1, 0, 0, -1))),
])
def test_php_error_log_timestamps(line, expected):
    assert ls.parse_timestamp(line) == expected


# ---- the fast scan reads what a line-by-line reading reads ---------------------------------------------
# The scan reads big chunks into one buffer, counts their newlines with bytes.replace (or bytes.count where
# lines are short), and classifies only the lines that SCAN_PASSES select: fewer regexes than PREFILTERS. Each
# test below holds it to the obvious reading (split the file into lines; classify every line one of its kind's
# PREFILTERS selects), so that no shortcut can miss, add or double-count a line.

LABELLED = [row["line"] for row in (p.values[0] for p in corpus())] + [line for _signature, line in ODD]
# Near misses of every literal SCAN_PASSES merges: one character short, or cut at the word the merged pass finds.
NEAR_MISSES = [
    "AH0107: failed", "AH01079 failed", "AH1012:", "AH10124", "AH: x", "End of script output before header",
    "End of script", "of script output before headers", "Timeout waiting for output from CGI scrip",
    "waiting for output from CGI script", "malformed header from scrip", "malformed header from", "Premature end of script",
    "Premature end of script header", "end of script headers", "mod_fcgid:", "mod_fcgid : x", "FastCGI: comm wit",
    "FastCGI:comm with", "script", "scripts", "CGI script", "AH01079:", "AH10124:", "AH02429:",
    "End of script output before headers", "Timeout waiting for output from CGI script", "malformed header from script",
    "Premature end of script headers", "mod_fcgid: x", "FastCGI: failed to connect",
]


def fuzz_lines(seed, count=400):
    """Labelled lines and near misses, cut, spliced and salted with random bytes (never a newline)."""
    rng = random.Random(seed)
    pool = LABELLED + NEAR_MISSES
    out = []
    for _line in range(count):
        a, b = rng.choice(pool).encode(), rng.choice(pool).encode()
        i, j = rng.randint(0, len(a)), rng.randint(0, len(b))
        salt = rng.randbytes(rng.randint(0, 6)).replace(b"\n", b"")
        out.append(rng.choice((a, a[:i] + b[j:], b[:j] + salt + a[i:], salt + a + salt)))
    return out


@pytest.mark.parametrize("kind", ls.KINDS)
def test_scan_passes_select_the_lines_the_prefilters_select(kind):
    lines = [line.encode("utf-8", "replace") for line in LABELLED + NEAR_MISSES]
    for seed in range(5):
        lines += fuzz_lines(seed)
    for raw in lines:
        expected = any(rx.search(raw) for rx in ls.PREFILTERS[kind])
        assert any(rx.search(raw) for rx in ls.SCAN_PASSES[kind]) == expected, raw
    assert len(ls.SCAN_PASSES["auto"]) < len(ls.PREFILTERS["auto"])  # the point of them


def test_nginx_literals_are_the_nginx_prefilters():
    """grep -F given NGINX_LITERALS selects exactly the lines the nginx prefilters select (the bench's baseline)."""
    lines = [line.encode("utf-8", "replace") for line in LABELLED + NEAR_MISSES]
    lines += [b"upstream timed ou", b"upstream sent", b"x) while reading upstrea", b'" while reading upstream', b"PHP Fatal"]
    for seed in range(5):
        lines += fuzz_lines(seed)
    literals = [x.encode() for x in ls.NGINX_LITERALS]
    selected = 0
    for raw in lines:
        expected = any(rx.search(raw) for rx in ls.PREFILTERS["nginx"])
        assert any(lit in raw for lit in literals) == expected, raw
        selected += expected
    assert 0 < selected < len(lines)


def line_by_line(path, kind):
    """The obvious reading of a whole file: each line one of its kind's PREFILTERS selects is classified (its head,
    \\r dropped), in order. Returns what the scanner's result must equal, and the number of lines."""
    content = Path(path).read_bytes()
    if kind == "auto":
        kind = ls.sniff_kind(content[:65536], str(path))
    scanner = ls.Scanner(since_epoch=None, kind=kind)
    scanner._file = str(path)
    lines = content.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for raw in lines:
        if any(rx.search(raw) for rx in ls.PREFILTERS[kind]):
            scanner.consider(raw[:ls.CLASSIFY_HEAD].decode("utf-8", "replace").rstrip("\r"), None, None)
    return scanner.result(), len(lines)


def assert_reads_line_by_line(path, kind="auto", chunk_sizes=(4096, 4096 + 17, 65536, ls.CHUNK)):
    expected, nlines = line_by_line(path, kind)
    assert expected["total"] > 0  # the file holds signatures for the comparison to mean something
    for chunk in chunk_sizes:
        res = scan([path], since_epoch=None, kind=kind, chunk_size=chunk, rotated=False)
        for key in ("signatures", "total", "attributed", "by_upstream", "by_pool", "top_requests", "suspects",
                    "child_signals"):
            assert res[key] == expected[key], (chunk, key)
        assert res["lines_scanned"] == nlines, chunk


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", [k for k in ls.KINDS if k != "fpm_slowlog"])  # slowlog entries span lines
def test_chunked_scan_equals_a_line_by_line_reading(tmp_path, kind, seed):
    """Signature lines, near misses and binary garbage, some lines CRLF, some long (several chunks), blank runs."""
    rng = random.Random(seed)
    out = []
    for line in fuzz_lines(seed, 1500):
        roll = rng.random()
        if roll < 0.1:
            out.append(line + b"\r\n")
        elif roll < 0.13:  # the signature deep in a long line
            out.append(rng.randbytes(rng.randint(5000, 20000)).replace(b"\n", b" ") + line + b"\n")
        elif roll < 0.16:  # the head holds it, the line runs over several reads
            out.append(line + b" " + b"y" * rng.randint(5000, 70000) + b"\n")
        elif roll < 0.18:
            out.append(b"\n" * rng.randint(1, 300) + line + b"\n")
        else:
            out.append(line + b"\n")
    log = tmp_path / "mixed.log"
    log.write_bytes(b"".join(out).rstrip(b"\n"))  # no final newline
    assert_reads_line_by_line(log, kind)


@pytest.mark.parametrize("line", [ODD[1][1], ODD[11][1], ODD[6][1], next(x for x in LABELLED if "[pid 25:tid 94]" in x)],
                         ids=["nginx", "fatal", "fpm", "apache"])
def test_a_chunk_boundary_at_every_offset_of_a_signature_line(tmp_path, line):
    """Copies of a line, each placed so that the boundary between two reads falls before it, after it, or inside
    it at a different byte: every copy is counted, once."""
    chunk = 4096
    noise = b"a line of no known kind, so that every pass runs (kind auto)\n" * 100

    def filler(size):
        return noise[:size - 1] + b"\n"

    raw = line.encode() + b"\n"
    parts, pos = [], 0
    for offset in range(len(raw) + 2):
        start = 65536 + (offset + 1) * chunk - offset  # the head (64 KiB) is read first, then 4 KiB at a time
        parts.append(filler(start - pos))
        copy = raw.replace(b"[pid 25:tid 94]", b"[pid %d:tid 94]" % offset)  # Apache's two lines of one failure
        parts.append(copy)
        pos = start + len(copy)
    log = tmp_path / "boundaries.log"
    log.write_bytes(b"".join(parts) + filler(100))
    res = scan([log], since_epoch=None, chunk_size=chunk, rotated=False)
    assert res["total"] == len(raw) + 2
    assert res["lines_scanned"] == log.read_bytes().count(b"\n")
    assert_reads_line_by_line(log)


def test_a_signature_at_the_very_start_and_the_very_end_of_the_file(tmp_path):
    first = b"upstream timed out (110: Connection timed out) while reading response header from upstream, x"
    last = b"connect() failed (111: Connection refused) while connecting to upstream"  # no newline after it
    log = tmp_path / "edges.log"
    log.write_bytes(first + b"\n" + NOISE.format("2026/11/23 21:40:58").encode() * 200 + last)
    for chunk in (4096, len(log.read_bytes()) - 65536 - len(last) + 1, ls.CHUNK):
        res = scan([log], since_epoch=None, kind="nginx", chunk_size=chunk, rotated=False)
        assert res["signatures"]["upstream_timeout"]["count"] == 1, chunk
        assert res["signatures"]["connect_refused"]["count"] == 1, chunk
        assert res["lines_scanned"] == 202, chunk
    assert_reads_line_by_line(log, "nginx")


def test_crlf_lines_are_classified_without_their_cr(tmp_path):
    log = tmp_path / "crlf.log"
    log.write_bytes(b"".join(nginx_line(time.time() - i).encode().replace(b"\n", b"\r\n") for i in range(50)))
    res = scan([log], since_epoch=None, chunk_size=4096)
    assert res["signatures"]["upstream_timeout"]["count"] == 50 and res["lines_scanned"] == 50
    assert not any(s.endswith("\r") for s in res["signatures"]["upstream_timeout"]["samples"])
    assert_reads_line_by_line(log)


def test_a_line_longer_than_the_cut_counts_once_on_its_head(tmp_path):
    """Past MAX_LINE a line is kept to its head (memory stays bounded): the signature there counts, once."""
    head = nginx_line(time.time()).encode().rstrip(b"\n")
    log = tmp_path / "huge.log"
    log.write_bytes(head + b" " + b"z" * (ls.CHUNK + ls.MAX_LINE * 2) + b"\n" + nginx_line(time.time()).encode())
    for chunk in (65536, ls.CHUNK):
        res = scan([log], since_epoch=None, chunk_size=chunk, rotated=False)
        assert res["signatures"]["upstream_timeout"]["count"] == 2, chunk
        assert res["lines_scanned"] == 2, chunk
        assert any("was cut" in w for w in res["files"][0]["warnings"])


def test_binary_garbage_between_signature_lines(tmp_path):
    rng = random.Random(7)
    parts = []
    for i in range(300):
        parts.append(rng.randbytes(rng.randint(0, 4000)))  # NULs, lone \r, invalid UTF-8, stray newlines
        parts.append(b"\n" + nginx_line(time.time() - i).encode())
    log = tmp_path / "garbage.log"
    log.write_bytes(b"".join(parts))
    assert_reads_line_by_line(log, "nginx")
    assert scan([log], since_epoch=None, kind="nginx", rotated=False)["signatures"]["upstream_timeout"]["count"] == 300


def test_gzip_reads_what_the_plain_file_reads(tmp_path):
    plain = tmp_path / "mixed.log"
    plain.write_bytes(b"\n".join(fuzz_lines(3, 3000)) + b"\n")
    packed = tmp_path / "mixed.log.1.gz"
    data = plain.read_bytes()
    packed.write_bytes(gzip.compress(data[: len(data) // 3]) + gzip.compress(data[len(data) // 3:]))  # two members
    for chunk in (4096, 65536, ls.CHUNK):
        a = scan([plain], since_epoch=None, chunk_size=chunk, rotated=False)
        b = scan([packed], since_epoch=None, chunk_size=chunk, rotated=False)
        for key in ("signatures", "total", "by_upstream", "top_requests", "suspects", "lines_scanned"):
            assert a[key] == b[key], (chunk, key)
        assert b["files"][0]["bytes_decompressed"] == len(data) and not b["warnings"]


@pytest.mark.parametrize("shape", ["sparse", "dense", "sparse-then-dense", "dense-then-sparse", "none", "all"])
def test_newline_counter_counts_what_bytes_count_counts(shape):
    rng = random.Random(shape)
    long_lines = b"".join(rng.randbytes(rng.randint(0, 900)).replace(b"\n", b"") + b"\n" for _line in range(2000))
    short_lines = b"".join(b"x" * rng.randint(0, 12) + b"\n" for _line in range(100000))
    data = {"sparse": long_lines, "dense": short_lines, "sparse-then-dense": long_lines + short_lines,
            "dense-then-sparse": short_lines + long_lines, "none": b"x" * 300000, "all": b"\n" * 300000}[shape]
    buf = bytearray(data + b"junk\n\n")  # bytes past the range are never counted
    counter = ls._NewlineCounter()
    modes = set()
    pos = 0
    while pos < len(data):
        step = rng.randint(1, counter.BLOCK if rng.random() < 0.8 else 3 * counter.BLOCK)
        end = min(len(data), pos + step)
        modes.add(counter.dense)
        assert counter.count(buf, pos, end) == data.count(b"\n", pos, end)
        pos = end
    assert counter.count(buf, 5, 5) == 0
    if "-then-" in shape:
        assert modes == {True, False}  # both ways of counting were used, and agree


@pytest.mark.parametrize(("feed", "piece"), [(1, 7), (13, 4096), (4096, 13), (ls._GzipSource.FEED, ls._GzipSource.PIECE)])
def test_gzip_source_hands_out_exactly_the_decompressed_bytes(tmp_path, monkeypatch, feed, piece):
    """Whatever zlib is fed and asked for at a time, and however much each read wants: the same bytes, in order."""
    monkeypatch.setattr(ls._GzipSource, "FEED", feed)
    monkeypatch.setattr(ls._GzipSource, "PIECE", piece)
    rng = random.Random(feed * 31 + piece)
    text = b"".join(rng.choice([b"upstream timed out\n", rng.randbytes(rng.randint(0, 300)), b"\0" * 50]) for _line in range(400))
    members = gzip.compress(text[:5000]) + gzip.compress(b"") + gzip.compress(text[5000:], compresslevel=1)
    for name, data, whole in [("plain", members, True), ("padded", members + b"\0" * 3000, True),
                              ("cut", members[: len(members) - 40], False)]:
        path = tmp_path / f"{name}.gz"
        path.write_bytes(data)
        reading = ls.Reading(str(path), "auto", True, True)
        with open(path, "rb", buffering=0) as fh:
            source = ls._GzipSource(fh, reading)
            head = source.peek(rng.randint(1, 5000))  # what the kind is sniffed from: handed out again
            got = []
            while True:
                buf = bytearray(rng.randint(1, 70000))
                n = source.readinto(memoryview(buf))
                if n == 0:
                    break
                got.append(bytes(buf[:n]))
        out = b"".join(got)
        assert out.startswith(head) and reading.bytes_decompressed == len(out)
        if whole:
            assert out == text and source.error is None, name
        else:
            assert text.startswith(out) and "truncated gzip" in source.error
