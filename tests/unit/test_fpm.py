"""wp502_fpm: FPM configs as FPM reads them, and pool sizing FPM accepts."""

from __future__ import annotations

import itertools
import socket

import pytest
import wp502_fpm as fpm
import wp502_sizing as sizing

MAIN = """\
;;;;;;;;;;;;;;;;;;;;;
; FPM Configuration ;
;;;;;;;;;;;;;;;;;;;;;
[global]
pid = /run/php/php8.2-fpm.pid
error_log = /var/log/php8.2-fpm.log
include=/etc/php/8.2/fpm/pool.d/*.conf
"""
WWW = """\
[www]
user = www-data
listen = /run/php/php8.2-fpm.sock
listen.owner = www-data
pm = dynamic
pm.max_children = 5
pm.start_servers = 2
pm.min_spare_servers = 1
pm.max_spare_servers = 3
;pm.max_requests = 500
slowlog = /var/log/php8.2-fpm/$pool.slow.log
request_slowlog_timeout = 5s
request_terminate_timeout = 1m
php_admin_value[memory_limit] = 256M
"""
SHOP = """\
; a second pool, with quotes, comments after values and a repeated directive
[shop.example-com]
listen = "/run/php/shop.sock" ; quoted
pm = ondemand
pm.max_children = 12 ; comment
pm.max_children = 16
pm.process_idle_timeout = 10s
access.log = /var/log/php-fpm/$pool.access.log
"""


def fake_fs(files):
    return (lambda path: files[path]), (lambda pattern: sorted(p for p in files if p.startswith(pattern.split("*")[0])))


def test_pools_with_includes_substitution_and_defaults():
    read, expand = fake_fs({"/etc/php/8.2/fpm/php-fpm.conf": MAIN,
                            "/etc/php/8.2/fpm/pool.d/www.conf": WWW,
                            "/etc/php/8.2/fpm/pool.d/zz-shop.conf": SHOP})
    conf = fpm.parse_fpm_config("/etc/php/8.2/fpm/php-fpm.conf", read=read, expand=expand)
    assert conf["errors"] == []
    assert conf["global"]["error_log"] == "/var/log/php8.2-fpm.log"
    assert sorted(conf["pools"]) == ["shop.example-com", "www"]
    www = fpm.pool_settings("www", conf["pools"]["www"])
    assert www["listen"] == "/run/php/php8.2-fpm.sock"
    assert (www["pm"], www["pm.max_children"], www["pm.start_servers"]) == ("dynamic", 5, 2)
    assert www["pm.max_requests"] == 0  # commented out: FPM's default
    assert www["slowlog"] == "/var/log/php8.2-fpm/www.slow.log"
    assert (www["request_slowlog_timeout"], www["request_terminate_timeout"]) == (5, 60)
    assert www["php_admin"] == {"php_admin_value[memory_limit]": "256M"}
    assert www["source"] == "/etc/php/8.2/fpm/pool.d/www.conf"
    shop = fpm.pool_settings("shop.example-com", conf["pools"]["shop.example-com"])
    assert shop["listen"] == "/run/php/shop.sock"
    assert shop["pm.max_children"] == 16  # the last value wins, as in FPM
    assert shop["access.log"] == "/var/log/php-fpm/shop.example-com.access.log"
    assert fpm.validate_pm(www) == []


def test_relative_include_missing_files_and_loops_are_reported():
    files = {"/etc/php-fpm.conf": "[global]\ninclude=etc/php-fpm.d/*.conf\ninclude=/nowhere/*.conf\n",
             "/etc/php-fpm.d/a.conf": "[a]\npm.max_children = 3\ninclude=/etc/php-fpm.conf\n"}
    read, expand = fake_fs(files)
    conf = fpm.parse_fpm_config("/etc/php-fpm.conf", read=read, expand=expand, prefix="/")
    assert list(conf["pools"]) == ["a"]
    assert any("include=/nowhere/*.conf matches no file" in e for e in conf["errors"])


def test_unreadable_file_is_an_error_not_an_exception(tmp_path):
    conf = fpm.parse_fpm_config(str(tmp_path / "missing.conf"))
    assert conf["pools"] == {}
    assert "No such file" in conf["errors"][0]


@pytest.mark.parametrize(("value", "seconds"), [("30", 30), ("30s", 30), ("5m", 300), ("1h", 3600), ("0", 0), ("abc", None)])
def test_durations(value, seconds):
    assert fpm.parse_duration(value) == seconds


@pytest.mark.parametrize(("settings", "error"), [
    ({"pm": "dynamic", "pm.max_children": 5, "pm.min_spare_servers": 4, "pm.max_spare_servers": 3, "pm.start_servers": 3},
     "must not be greater than pm.max_spare_servers"),
    ({"pm": "dynamic", "pm.max_children": 2, "pm.min_spare_servers": 1, "pm.max_spare_servers": 3, "pm.start_servers": 2},
     "must not be greater than pm.max_children"),
    ({"pm": "dynamic", "pm.max_children": 9, "pm.min_spare_servers": 2, "pm.max_spare_servers": 3, "pm.start_servers": 5},
     "must be between"),
    ({"pm": "static", "pm.max_children": 0}, "positive integer"),
    ({"pm": "fast", "pm.max_children": 4}, "static, dynamic or ondemand"),
])
def test_validate_pm_says_what_fpm_would_refuse(settings, error):
    assert any(error in e for e in fpm.validate_pm(settings))


def test_percentile():
    assert fpm.percentile([], 95) is None
    assert fpm.percentile([10], 95) == 10
    assert fpm.percentile(list(range(1, 101)), 95) == 95
    assert fpm.percentile([5, 1, None, 3], 50) == 3


MIB = 1024 * 1024


@pytest.mark.parametrize(("ram_mib", "p95_mib", "mysql_mib", "cpus", "maxconn"), list(itertools.product(
    [512, 1024, 2048, 8192, 65536], [20, 64, 150, 600], [0, 300, 4000], [None, 0.5, 2, 64], [None, 10, 151])))
def test_recommended_settings_are_always_accepted_by_fpm(ram_mib, p95_mib, mysql_mib, cpus, maxconn):
    rec = sizing.size_pool(ram_mib * MIB, p95_mib * MIB, mysql_bytes=mysql_mib * MIB, cpus=cpus, db_max_connections=maxconn)
    assert rec["pm.max_children"] >= 1
    assert fpm.validate_pm(rec) == []
    assert rec["pm.min_spare_servers"] <= rec["pm.start_servers"] <= rec["pm.max_spare_servers"] <= rec["pm.max_children"]
    assert rec["pm.max_children"] == min(rec["bounds"].values()) == rec["bounds"][rec["limited_by"]]


# ---- the pool-limits rung's bounded raise ----------------------------------------------------------
def _pool(**kw):
    base = {"pm": "dynamic", "pm.max_children": 5, "pm.start_servers": 2, "pm.min_spare_servers": 1,
            "pm.max_spare_servers": 3, "listen.backlog": 511, "request_terminate_timeout": 0, "max_execution_time": 30}
    base.update(kw)
    return base


def test_raise_is_bounded_and_valid():
    from wp502_fpm import emergency_raise, validate_pm

    out = emergency_raise(_pool(), {"pm.max_children": 550}, frontend_timeout=None)
    assert out["settings"] == {"pm.max_children": 20, "pm.start_servers": 5, "pm.min_spare_servers": 2,
                               "pm.max_spare_servers": 6}
    assert validate_pm(dict(_pool(), **out["settings"])) == []
    assert "5 -> 20" in out["reasons"][0]
    # RAM is the limit when it is lower than the step
    assert emergency_raise(_pool(), {"pm.max_children": 8})["settings"]["pm.max_children"] == 8


def test_raise_fixes_a_tiny_backlog_and_a_terminate_timeout_that_outlives_the_front_end():
    from wp502_fpm import emergency_raise

    tiny = _pool(**{"pm.max_children": 2, "pm.start_servers": 1, "pm.max_spare_servers": 2, "listen.backlog": 2})
    out = emergency_raise(tiny, {"pm.max_children": 550}, frontend_timeout=15)
    assert out["settings"]["pm.max_children"] == 8 and out["settings"]["listen.backlog"] == 511
    assert out["settings"]["request_terminate_timeout"] == "15s"
    # a terminate timeout already within the front-end's is left alone
    assert "request_terminate_timeout" not in emergency_raise(_pool(request_terminate_timeout=10), None, frontend_timeout=15)["settings"]


def test_raise_says_when_ram_allows_nothing_more():
    from wp502_fpm import emergency_raise

    out = emergency_raise(_pool(), {"pm.max_children": 4})
    assert out["settings"] == {} and "the recommendation is 4 (from RAM and the worker size)" in out["reasons"][0]
    cpu = {"pm.max_children": 4, "reason": "limited by CPU: 1 core x 4"}
    assert emergency_raise(_pool(), cpu)["reasons"] == ["the recommendation is 4 (limited by CPU: 1 core x 4): pm.max_children stays 5"]
    assert emergency_raise(_pool(), None) == {"settings": {}, "reasons": []}
    static = emergency_raise(_pool(pm="static"), {"pm.max_children": 100})
    assert static["settings"] == {"pm.max_children": 20}


# --- reading pool files as php-fpm does (the lexer wp502_edit uses too) ------------------------

ODD_MAIN = "[global]\r\nerror_log = /var/log/php8.2-fpm.log ; the log\r\ninclude=/etc/php/8.2/fpm/pool.d/*.conf\r\n"
ODD_POOLS = {
    # a section comment: the old reader lost the whole pool
    "/etc/php/8.2/fpm/pool.d/a-www.conf": "[www] ; main site\nlisten = /run/php/php8.2-fpm.sock ; nginx uses it\n"
                                          "pm.max_children = 5\ninclude = /etc/php/8.2/fpm/extra.d/*.inc\n",
    # included from inside [www]: no header, so it goes on in [www], as FPM's state does
    "/etc/php/8.2/fpm/extra.d/limits.inc": "pm.max_children = 9 ; raised\nrequest_terminate_timeout = \"30s\"\n",
    "/etc/php/8.2/fpm/pool.d/b-api.conf": "[api]\nlisten = 9000\n",
    "/etc/php/8.2/fpm/pool.d/c-v6.conf": "[v6]\r\nlisten = [::]:9000\r\nuser = 'www-data' ; quoted\r\n",
    "/etc/php/8.2/fpm/pool.d/d-again.conf": "[WWW]\npm = ondemand\n",  # FPM: the same pool (strcasecmp)
}


def test_pool_files_read_as_php_fpm_reads_them():
    files = dict(ODD_POOLS, **{"/etc/php/8.2/fpm/php-fpm.conf": ODD_MAIN})
    read = files.__getitem__

    def expand(pattern):
        head, _star, tail = pattern.partition("*")
        return sorted(p for p in files if p.startswith(head) and p.endswith(tail))

    conf = fpm.parse_fpm_config("/etc/php/8.2/fpm/php-fpm.conf", read=read, expand=expand)
    assert conf["errors"] == []
    assert conf["global"] == {"error_log": "/var/log/php8.2-fpm.log"}
    assert sorted(conf["pools"]) == ["api", "v6", "www"]
    www = conf["pools"]["www"]
    assert www["listen"] == "/run/php/php8.2-fpm.sock"
    assert (www["pm.max_children"], www["request_terminate_timeout"], www["pm"]) == ("9", "30s", "ondemand")
    assert www["__source__"] == "/etc/php/8.2/fpm/pool.d/a-www.conf"
    assert conf["pools"]["api"]["listen"] == "9000"
    assert conf["pools"]["v6"]["listen"] == "[::]:9000" and conf["pools"]["v6"]["user"] == "www-data"
    assert "/etc/php/8.2/fpm/extra.d/limits.inc" in conf["files"]


def test_lines_php_fpm_refuses_are_reported_not_guessed():
    conf = fpm.parse_fpm_config("/x.conf", read=lambda p: "[www]\n# not a comment for FPM\nlisten = /run/a.sock\n",
                                expand=lambda p: [])
    assert conf["pools"]["www"]["listen"] == "/run/a.sock"
    assert conf["errors"] == ["/x.conf:2: '#' does not start a comment for php-fpm (FPM: value is NULL); use ';'"]


@pytest.mark.parametrize(("written", "value"), [
    ("/run/php.sock ; comment", "/run/php.sock"),
    ('"/run/php.sock" ; quoted', "/run/php.sock"),
    ("'/var/log/$pool.log'", "/var/log/$pool.log"),
    ('"a \\"b\\""', 'a "b"'),
    ("[::]:9000", "[::]:9000"),
    ("yes", "1"),
    ("", ""),
])
def test_values(written, value):
    assert fpm.parse_fpm_text(f"[www]\nkey = {written}\n") == [("www", "key", value, "<text>", 2)]


@pytest.mark.parametrize(("listen", "family", "address"), [
    ("/run/php/php8.2-fpm.sock", "AF_UNIX", "/run/php/php8.2-fpm.sock"),
    ("127.0.0.1:9000", "AF_INET", ("127.0.0.1", 9000)),
    ("9001", "AF_INET", ("127.0.0.1", 9001)),
    ("0.0.0.0:9002", "AF_INET", ("127.0.0.1", 9002)),
    ("*:9003", "AF_INET", ("127.0.0.1", 9003)),
    ("[::1]:9004", "AF_INET6", ("::1", 9004)),
    ("[::]:9005", "AF_INET6", ("::1", 9005)),
    ("fpm.internal:9006", "AF_INET", ("fpm.internal", 9006)),
])
def test_pool_addresses_as_fpm_writes_them(listen, family, address):
    # One reading of a pool's listen for the evidence, the status page and the plugins rung's pool check.
    assert fpm.listen_address(listen) == (getattr(socket, family), address)


def test_what_is_not_a_pool_address_is_refused():
    with pytest.raises(ValueError, match="is not a pool address"):
        fpm.listen_address("unix:/run/php/x.sock")
