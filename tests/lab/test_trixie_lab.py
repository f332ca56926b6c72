"""Debian 13 (trixie) targets: nginx 1.26, PHP-FPM 8.4, MariaDB 11.8, WordPress 6.8 from Debian's
packages. emergency-502.yml, through ansible-runner as AWX runs it, heals PHP-FPM stopped and a
crashing plugin there, and the host itself says so: its own curl, its units, its WordPress."""

from __future__ import annotations

import json

from .test_emergency_lab import emergency


def on_host(target, path: str = "/") -> str:
    """The HTTP status the target itself sees for site 1 (docker exec curl to its own 127.0.0.1:80)."""
    return target.host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 30 http://127.0.0.1{path}")


def unit_state(target, unit: str) -> str:
    return target.host.run(f"systemctl is-active {unit}").stdout.strip()


def active_plugins(target) -> list[str]:
    return [p["file"] for p in json.loads(target.host.check_output("wp502-lab-wp plugin list")) if p["active"]]


def test_the_target_is_debian_13_with_php_8_4(nginx_trixie_target):
    t = nginx_trixie_target
    assert t.host.file("/etc/debian_version").content_string.startswith("13.")
    assert t.php == "8.4"
    assert t.host.service("php8.4-fpm").is_running and t.host.service("mariadb").is_running
    assert t.host.socket("unix:///run/php/php8.4-fpm.sock").is_listening
    assert on_host(t) == "200" and t.get("/wp-login.php") == 200


def test_fpm_down_on_debian_13_is_healed_by_the_restart_rung(nginx_trixie_target, tmp_path):
    t = nginx_trixie_target
    t.break_("fpm_down")
    assert unit_state(t, "php8.4-fpm") == "inactive"
    assert on_host(t) == "502" and t.get("/") == 502
    r, result = emergency(t, tmp_path)
    assert r.status == "successful", r.stdout.read()[-4000:]
    assert result["top_cause"] == "fpm_down"
    assert result["healed"] is True and result["healed_by"] == "restart_fpm"
    # The host's own state, not only wp502's words.
    assert unit_state(t, "php8.4-fpm") == "active"
    assert t.host.socket("unix:///run/php/php8.4-fpm.sock").is_listening
    assert on_host(t) == "200" and on_host(t, "/wp-login.php") == "200"
    assert t.get("/") == 200 and t.get("/wp-login.php") == 200
    assert not t.host.file("/var/lib/wp502/lock").exists


def test_a_crashing_plugin_on_debian_13_is_taken_out(nginx_trixie_target, tmp_path):
    t = nginx_trixie_target
    t.break_("segfault")
    assert on_host(t) == "502"
    assert "exited on signal 11 (SIGSEGV)" in t.log("/var/log/php8.4-fpm.log")
    r, result = emergency(t, tmp_path)
    assert r.status == "successful", r.stdout.read()[-4000:]
    assert result["top_cause"] == "crashing_worker"
    assert result["healed_by"] == "plugins" and result["culprits"] == ["wp502-fault-segfault"]
    # What the host's own WordPress and units say now.
    assert active_plugins(t) == ["akismet/akismet.php"]
    assert not t.host.file("/var/www/wordpress/wp-content/plugins/wp502-fault-segfault/wp502-fault-segfault.php").exists
    assert unit_state(t, "php8.4-fpm") == "active"
    assert on_host(t) == "200" and on_host(t, "/wp-login.php") == "200"
    assert t.get("/") == 200
