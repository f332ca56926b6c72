"""Every lab fault, induced for real on a fresh target, yields its status code and its log lines.

Each test starts its own container, breaks it with playbooks/lab-break.yml (over SSH, as an
operator would), then checks from outside: HTTP status on the published 127.0.0.1 port, and the
exact log signatures in the web-server, PHP-FPM and MariaDB logs (read with testinfra).
"""

from __future__ import annotations

import json
import re

import pytest

NGINX_ERROR = "/var/log/nginx/error.log"
NGINX_ACCESS = "/var/log/nginx/access.log"
APACHE_ERROR = "/var/log/apache2/error.log"
FPM_LOG = "/var/log/php8.2-fpm.log"
FPM_SLOWLOG = "/var/log/php8.2-fpm.slow.log"
MARIADB_SLOW = "/var/log/mysql/mariadb-slow.log"
SOCKET = r"unix:/run/php/php8\.2-fpm\.sock"


def assert_logged(target, path: str, pattern: str) -> re.Match:
    text = target.log(path)
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{path} on {target.container} has no line matching {pattern!r}; last lines:\n" + \
        "\n".join(text.splitlines()[-15:])
    return match


def access_statuses(target) -> list[int]:
    """Status codes from nginx's combined access log (the burst's requests, as nginx answered them)."""
    codes = []
    for line in target.log(NGINX_ACCESS).splitlines():
        m = re.search(r'" (\d{3}) ', line)
        if m:
            codes.append(int(m.group(1)))
    return codes


def test_healthy_target_answers_200_and_logs_no_502(nginx_target):
    assert nginx_target.get("/") == 200
    assert nginx_target.get("/wp-login.php") == 200
    assert 502 not in access_statuses(nginx_target)
    assert nginx_target.host.service("php8.2-fpm").is_running


# Faults whose effect is a steady state: every request to / and /wp-login.php gets the status.
STEADY = {
    "fpm_down": (502, [
        (NGINX_ERROR, rf"\[crit\] \d+#\d+: \*\d+ connect\(\) to {SOCKET} failed \(2: No such file or directory\) "
                      r"while connecting to upstream"),
    ]),
    "segfault": (502, [
        (NGINX_ERROR, r"\[error\] .*recv\(\) failed \(104: Connection reset by peer\) while reading response header from upstream"),
        (FPM_LOG, r"WARNING: \[pool www\] child \d+ exited on signal 11 \(SIGSEGV\) after [\d.]+ seconds from start"),
    ]),
    "invalid_header": (502, [
        (NGINX_ERROR, r'upstream sent invalid header: "Bad\\x20\.\.\." while reading response header from upstream'),
    ]),
    "too_big_header": (502, [
        (NGINX_ERROR, r"upstream sent too big header while reading response header from upstream"),
    ]),
    "upstream_timeout": (504, [
        (NGINX_ERROR, r"upstream timed out \(110: Connection timed out\) while reading response header from upstream"),
        (FPM_LOG, r"WARNING: \[pool www\] child \d+, script '/var/www/wordpress/index\.php' .* executing too slow"),
        (FPM_SLOWLOG, r"wp-content/plugins/wp502-fault-remote/wp502-fault-remote\.php:\d+"),
    ]),
    "slow_db": (504, [
        (NGINX_ERROR, r"upstream timed out \(110: Connection timed out\) while reading response header from upstream"),
        (MARIADB_SLOW, r"# Query_time: [3-9]\.\d+ .*\n(?:#.*\n)*SET timestamp=\d+;\nSELECT SLEEP\(3\)"),
    ]),
}


@pytest.mark.parametrize("fault", sorted(STEADY))
def test_steady_fault_on_nginx(nginx_target, fault):
    status, signatures = STEADY[fault]
    nginx_target.break_(fault)
    # The timeouts answer only after nginx's fastcgi_read_timeout (15 s in the lab).
    assert nginx_target.get("/") == status
    if status == 502:
        assert nginx_target.get("/wp-login.php") == status
    for path, pattern in signatures:
        assert_logged(nginx_target, path, pattern)
    if fault == "fpm_down":
        assert not nginx_target.host.service("php8.2-fpm").is_running
        assert not nginx_target.host.socket("unix:///run/php/php8.2-fpm.sock").is_listening


def test_slow_db_bloats_autoloaded_options(nginx_target):
    nginx_target.break_("slow_db")
    query = ("SELECT SUM(LENGTH(option_value)) FROM wp_options "
             "WHERE autoload IN ('yes', 'on', 'auto-on', 'auto')")
    size = int(nginx_target.host.check_output(f'mariadb -N -B wordpress -e "{query}"'))
    # Above Site Health's 800 KB warning threshold.
    assert size > 800 * 1000


@pytest.mark.parametrize("fault", ["max_children", "capacity"])
def test_load_fault_on_nginx(nginx_target, fault):
    nginx_target.break_(fault)
    codes = access_statuses(nginx_target)
    assert codes.count(502) > 0, f"no 502 in the access log after the {fault} burst: {sorted(set(codes))}"
    assert_logged(nginx_target, NGINX_ERROR,
                  rf"connect\(\) to {SOCKET} failed \(11: Resource temporarily unavailable\) while connecting to upstream")
    assert_logged(nginx_target, FPM_LOG,
                  r"WARNING: \[pool www\] server reached pm\.max_children setting \(2\), consider raising it")
    if fault == "max_children":
        assert_logged(nginx_target, FPM_SLOWLOG, r"wp-content/plugins/wp502-fault-slow/wp502-fault-slow\.php:\d+")


def test_bom_breaks_redirects_not_the_gateway(nginx_target):
    """A BOM does not make nginx answer 502 (verified): it sends output before WordPress's headers."""
    assert nginx_target.get("/wp-admin/") == 302  # healthy: wp-admin redirects to the login
    nginx_target.break_("bom")
    plugin = nginx_target.host.file("/var/www/wordpress/wp-content/plugins/wp502-fault-bom/wp502-fault-bom.php")
    assert plugin.content[:3] == b"\xef\xbb\xbf"
    assert nginx_target.get("/wp-admin/") == 200  # the redirect is lost: headers already sent
    assert_logged(nginx_target, NGINX_ERROR,
                  r'FastCGI sent in stderr: "PHP message: PHP Warning:  Cannot modify header information - '
                  r"headers already sent by \(output started at "
                  r"/var/www/wordpress/wp-content/plugins/wp502-fault-bom/wp502-fault-bom\.php:1\)")


def test_repair_restores_the_baseline(nginx_target):
    nginx_target.break_("max_children")
    nginx_target.break_("none")
    assert nginx_target.get("/") == 200
    pool = nginx_target.host.file("/etc/php/8.2/fpm/pool.d/www.conf").content_string
    assert re.search(r"^pm\.max_children = 5$", pool, re.MULTILINE)
    assert not re.search(r"^listen\.backlog", pool, re.MULTILINE)
    plugins = json.loads(nginx_target.host.check_output("wp502-lab-wp plugin list"))
    active = {p["file"] for p in plugins if p["active"]}
    assert active == {"akismet/akismet.php", "xrds-simple/xrds-simple.php"}

# Apache 2.4 with mod_proxy_fcgi answers the same faults differently: these are its real answers.
APACHE = {
    "fpm_down": (503, [
        r"\(2\)No such file or directory: AH02454: FCGI: attempt to connect to Unix domain socket "
        r"/run/php/php8\.2-fpm\.sock \(localhost:8000\) failed",
        r"AH01079: failed to make connection to backend: localhost",
    ]),
    "segfault": (503, [
        r"AH01067: Failed to read FastCGI header",
        r"\(104\)Connection reset by peer: \[client [^\]]+\] AH01075: Error dispatching request to",
    ]),
    "invalid_header": (500, [
        r"AH02429: Response header name 'Bad Name' contains invalid characters, aborting request",
    ]),
    "upstream_timeout": (504, [
        r"\(70007\)The timeout specified has expired: \[client [^\]]+\] AH01075: Error dispatching request to .*\(polling\)",
    ]),
}


@pytest.mark.parametrize("fault", sorted(APACHE))
def test_fault_on_apache(apache_target, fault):
    status, signatures = APACHE[fault]
    apache_target.break_(fault)
    assert apache_target.get("/") == status
    for pattern in signatures:
        assert_logged(apache_target, APACHE_ERROR, pattern)


def test_lab_role_refuses_a_host_that_is_not_a_lab_target(nginx_target):
    """The role breaks servers on purpose: without the lab marker it must stop before any change."""
    nginx_target.host.run("mv /etc/wp502-lab/frontend /etc/wp502-lab/frontend.moved")
    proc = nginx_target.playbook("playbooks/lab-break.yml", "-e", "wp502_lab_fault=fpm_down")
    assert proc.returncode != 0
    assert "it is not a wp502 lab target" in proc.stdout
    assert nginx_target.host.service("php8.2-fpm").is_running
