"""A lab target boots with all services active and WordPress answering 200 (testinfra)."""

import json
import re

import pytest


@pytest.fixture
def frontend(host):
    return host.file("/etc/wp502-lab/frontend").content_string.strip()


def test_systemd_is_pid_1_and_running(host):
    assert host.run("readlink /proc/1/exe").stdout.strip().endswith("systemd")
    assert host.run("systemctl is-system-running").stdout.strip() == "running"


@pytest.mark.parametrize("service", ["php8.2-fpm", "mariadb", "ssh", "wp502-blackhole"])
def test_core_services_active(host, service):
    svc = host.service(service)
    assert svc.is_running
    assert svc.is_enabled


def test_one_front_end_serves(host, frontend):
    active, other = ("nginx", "apache2") if frontend == "nginx" else ("apache2", "nginx")
    assert host.service(active).is_running
    assert not host.service(other).is_running
    assert host.socket("tcp://0.0.0.0:80").is_listening


def test_fpm_listens_on_its_unix_socket(host):
    assert host.socket("unix:///run/php/php8.2-fpm.sock").is_listening


@pytest.mark.parametrize("path", ["/", "/wp-login.php"])
def test_wordpress_answers_200(host, path):
    code = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 20 http://127.0.0.1{path}")
    assert code == "200"


def test_front_page_is_wordpress(host):
    body = host.check_output("curl -s --max-time 20 http://127.0.0.1/")
    assert "wp502 lab" in body
    assert "wp-content/themes/twentytwentythree" in body


def test_wordpress_standard_layout(host):
    config = host.file("/var/www/wordpress/wp-config.php")
    assert config.exists
    assert config.mode == 0o640
    assert re.search(r"define\( 'DB_NAME', 'wordpress' \);", config.content_string)
    assert host.file("/var/www/wordpress/wp-content/plugins").is_directory


def test_real_plugins_some_active(host):
    plugins = json.loads(host.check_output("wp502-lab-wp plugin list"))
    active = {p["file"] for p in plugins if p["active"]}
    installed = {p["file"] for p in plugins}
    assert {"akismet/akismet.php", "xrds-simple/xrds-simple.php"} <= active
    assert "http-authentication/http-authentication.php" in installed - active
    assert not any(f.startswith("wp502-fault-") for f in active)


def test_mariadb_slow_query_log_on(host):
    out = host.check_output("mariadb -N -B -e \"SHOW VARIABLES WHERE Variable_name IN ('slow_query_log', 'long_query_time')\"")
    variables = dict(line.split("\t") for line in out.splitlines())
    assert variables["slow_query_log"] == "ON"
    assert float(variables["long_query_time"]) == 2.0


def test_fpm_slowlog_on(host):
    pool = host.file("/etc/php/8.2/fpm/pool.d/www.conf").content_string
    assert re.search(r"^request_slowlog_timeout = 5s$", pool, re.MULTILINE)
    assert re.search(r"^slowlog = /var/log/php8\.2-fpm\.slow\.log$", pool, re.MULTILINE)
    assert host.run("php-fpm8.2 -t").rc == 0


def test_logs_at_debian_paths(host, frontend):
    host.run("curl -s -o /dev/null http://127.0.0.1/")
    assert host.file("/var/log/php8.2-fpm.log").exists
    log_dir = "/var/log/nginx" if frontend == "nginx" else "/var/log/apache2"
    assert host.file(f"{log_dir}/access.log").exists
    assert host.file(f"{log_dir}/error.log").exists


def test_sshd_has_its_own_host_keys_and_python(host):
    assert host.file("/etc/ssh/ssh_host_ed25519_key").exists
    assert host.socket("tcp://0.0.0.0:22").is_listening
    assert host.exists("python3")
