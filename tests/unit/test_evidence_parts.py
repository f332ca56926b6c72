"""wp502_collect, the pure parts: CDN detection, slow logs, peak hours, which BOM files are loaded."""

from __future__ import annotations

import time

import pytest
import wp502_collect as ev
import wp502_http


@pytest.mark.parametrize(("headers", "expected"), [
    ({"cf-ray": "8f1c2a3b4c5d6e7f-AMS", "server": "cloudflare"}, ("cloudflare", "8f1c2a3b4c5d6e7f-AMS")),
    ({"x-served-by": "cache-ams21080-AMS", "x-cache": "MISS"}, ("fastly", None)),
    ({"server": "BunnyCDN-DE1-1045", "cdn-pullzone": "12345"}, ("bunnycdn", None)),
    ({"x-amz-cf-id": "abc==", "via": "1.1 x.cloudfront.net (CloudFront)"}, ("cloudfront", "abc==")),
    ({"server": "AkamaiGHost"}, ("akamai", None)),
    ({"server": "nginx/1.22.1"}, (None, None)),
])
def test_detect_cdn(headers, expected):
    assert wp502_http.detect_cdn(headers) == expected


SLOW = """/usr/sbin/mariadbd, Version: 10.11.18-MariaDB-0+deb12u1-log (Debian 12). started with:
Time		    Id Command	Argument
# Time: 261123 22:10:22
# User@Host: wordpress[wordpress] @ localhost []
# Thread_id: 24  Schema: wordpress  QC_hit: No
# Query_time: 3.000520  Lock_time: 0.000113  Rows_sent: 1  Rows_examined: 164
SET timestamp=1795471822;
SELECT SLEEP(3) + (SELECT COUNT(*) FROM wp_options WHERE option_name LIKE '%wp502_report_cache%');
# Time: 261123 22:10:25
# User@Host: wordpress[wordpress] @ localhost []
# Query_time: 3.100891  Lock_time: 0.000118  Rows_sent: 1  Rows_examined: 164
SET timestamp=1795471825;
SELECT SLEEP(3) + (SELECT COUNT(*) FROM wp_options WHERE option_name LIKE '%other%');
# User@Host: wordpress[wordpress] @ localhost []
# Query_time: 1.5  Lock_time: 0.0  Rows_sent: 1  Rows_examined: 1
SET timestamp=1795471826;
SELECT 1;
"""


def test_slow_log_groups_normalised_queries_over_the_threshold():
    res = ev.parse_slow_log(SLOW)
    assert res["count"] == 2
    (top,) = res["top"]
    assert top["query"] == "SELECT SLEEP(N) + (SELECT COUNT(*) FROM wp_options WHERE option_name LIKE S);"
    assert (top["count"], top["max_time"]) == (2, 3.100891)
    assert ev.parse_slow_log(SLOW, since=1795471823)["count"] == 1


def access(day, hour, status):
    return (f'203.0.113.7 - - [{day:02d}/Nov/2026:{hour:02d}:15:02 +0000] "GET /shop/ HTTP/1.1" {status} 552 "-" '
            f'"Mozilla/5.0"\n').encode()


def test_peak_hours_and_recurrence():
    data = b"".join([access(21, 20, 502), access(21, 20, 502), access(22, 20, 504), access(22, 9, 200),
                     access(23, 11, 503), b"garbage line\n"])
    res = ev.peak_hours(data)
    assert res["by_hour"] == {"2026-11-21T20": 2, "2026-11-22T20": 1, "2026-11-23T11": 1}
    assert res["recurring"] and res["recurring_hours"] == ["20"]
    recent = ev.peak_hours(data, since=time.mktime((2026, 11, 23, 0, 0, 0, 0, 0, -1)))
    assert recent["by_hour"] == {"2026-11-23T11": 1} and not recent["recurring"]


def test_only_loaded_files_count_as_bom_causes():
    site = {"bom_files": ["wp-content/plugins/active-one/a.php", "wp-content/plugins/idle/b.php",
                          "wp-content/themes/astra/functions.php", "wp-content/themes/old/functions.php",
                          "wp-config.php", "wp-content/mu-plugins/loader.php"],
            "whitespace_files": ["wp-content/plugins/idle/c.php"]}
    ev.split_loaded(site, {"active-one/active-one.php"}, {"astra"})
    assert site["bom_files"] == ["wp-content/plugins/active-one/a.php", "wp-content/themes/astra/functions.php",
                                 "wp-config.php", "wp-content/mu-plugins/loader.php"]
    assert site["bom_files_inactive"] == ["wp-content/plugins/idle/b.php", "wp-content/themes/old/functions.php"]
    assert site["whitespace_files"] == [] and site["whitespace_files_inactive"] == ["wp-content/plugins/idle/c.php"]


def test_normalize_query():
    assert ev.normalize_query("SELECT * FROM t WHERE a = 'x''s' AND b = 42\n  LIMIT 10") == \
        "SELECT * FROM t WHERE a = SS AND b = N LIMIT N"


@pytest.mark.parametrize(("listens", "endpoint"), [
    (["80", "[::]:80"], (80, "http")),
    (["443 ssl http2", "[::]:443 ssl"], (443, "https")),
    (["443 ssl", "8080"], (8080, "http")),
    (["*:80"], (80, "http")),
    (["127.0.0.1:8081 default_server"], (8081, "http")),
    ([], (80, "http")),
])
def test_origin_endpoint(listens, endpoint):
    assert ev.origin_endpoint(listens) == endpoint


def test_timeout_chain_matches_a_pool_to_the_servers_that_use_it():
    fpm = {"pools": [{"listen": "/run/php/php8.2-fpm.sock", "request_terminate_timeout": 0, "max_execution_time": 30},
                     {"listen": "9000", "request_terminate_timeout": 0, "max_execution_time": 0}]}
    front = {"kind": "nginx", "servers": [
        {"kind": "nginx", "upstreams": ["unix:/run/php/php8.2-fpm.sock:"], "read_timeout": 15},
        {"kind": "nginx", "upstreams": ["127.0.0.1:9000"], "read_timeout": 60},
        {"kind": "apache", "upstreams": ["unix:/run/php/php8.2-fpm.sock"], "read_timeout": 300}]}
    ev.Collector.timeouts(fpm, front)
    first, second = (p["timeout_chain"] for p in fpm["pools"])
    assert first["frontend"] == 15 and "gives up after 15s (504) while PHP may run 30s" in first["flags"][0]
    assert second["frontend"] == 60 and "holds its worker forever" in second["flags"][0]


def test_peak_summary_of_merged_files():
    res = ev.summarise_peaks({"2026-11-21T20": 2, "2026-11-22T20": 1, "2026-11-23T11": 4})
    assert res["recurring_hours"] == ["20"] and res["by_hour"]["2026-11-23T11"] == 4


def test_where_the_ladder_waits_for_a_pool():
    _connect = ev._connect
    assert _connect("/run/php/php8.2-fpm.sock") == {"path": "/run/php/php8.2-fpm.sock"}
    assert _connect("9000") == {"host": "127.0.0.1", "port": 9000}
    assert _connect("[::]:9001") == {"host": "::1", "port": 9001}
    assert _connect("") is None
