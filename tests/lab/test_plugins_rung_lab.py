"""The plugins rung on real targets, where it used to lie: systemd's start limit refusing the restart
after a failed probe (an innocent plugin was blamed), a name already under plugins-off, and a move
that fails half-way. Each test asserts on the host first (plugin directories, active_plugins bytes,
the guard, HTTP status), then on what wp502 said, and that the two agree."""

from __future__ import annotations

import binascii
import json

import wp502_wpdb

from .test_emergency_lab import emergency, snapshot

WP = "/var/www/wordpress/wp-content"
CULPRIT = "wp502-fault-segfault"
# Named after the culprit: WordPress keeps active_plugins sorted, so they come after it in the list,
# where a 502 from a stopped FPM used to make bisection blame one of them.
INNOCENTS = [f"zz-wp502-innocent-{i:02d}" for i in range(1, 7)]
DROP_IN = "/etc/systemd/system/php8.2-fpm.service.d/wp502-test.conf"


def add_innocents(target):
    """Six small plugins that do nothing, activated through WordPress's own API."""
    h = target.host
    for name in INNOCENTS:
        h.check_output(f"install -d -o www-data -g www-data {WP}/plugins/{name} && "
                       f"printf '%s\\n' '<?php' '/* Plugin Name: {name} */' > {WP}/plugins/{name}/{name}.php")
    out = h.check_output("wp502-lab-wp plugin activate " + " ".join(INNOCENTS))
    assert all(f"{n}/{n}.php" in json.dumps(json.loads(out)["active_plugins"]) for n in INNOCENTS), out


def strict_start_limit(target):
    """Two starts a minute, counter cleared: the restart rung and the first reset pass, the next is refused."""
    h = target.host
    h.check_output(f"install -d {DROP_IN.rsplit('/', 1)[0]} && "
                   f"printf '[Unit]\\nStartLimitIntervalSec=60\\nStartLimitBurst=2\\n' > {DROP_IN} && "
                   "systemctl daemon-reload && systemctl reset-failed php8.2-fpm")
    assert h.check_output("systemctl show -p StartLimitBurst --value php8.2-fpm") == "2"


def active_plugins(target):
    return binascii.unhexlify(target.host.check_output(
        "mysql -N wordpress -e \"SELECT HEX(option_value) FROM wp_options WHERE option_name = 'active_plugins'\""))


def plugin_dirs(target):
    return sorted(target.host.check_output(f"ls -1 {WP}/plugins").split())


def host_result(target, run_id):
    """What the host itself kept of the run (the file rollback and the next run read)."""
    return json.loads(target.host.check_output(f"cat /var/lib/wp502/runs/{run_id}/result.json"))


def out_of_place(target):
    """Plugin files taken out on the host: in a plugins-off directory, or renamed in place to *.wp502-off."""
    found = target.host.check_output(f"cd {WP} && {{ find plugins -name '*.wp502-off'; "
                                     "find plugins-off -mindepth 2 -maxdepth 2; } 2>/dev/null | sort || true")
    return found.split()


def test_a_strict_start_limit_does_not_blame_an_innocent_plugin(nginx_target, tmp_path):
    add_innocents(nginx_target)
    nginx_target.break_("segfault")
    strict_start_limit(nginx_target)
    before_dirs, before_active = plugin_dirs(nginx_target), active_plugins(nginx_target)
    assert nginx_target.get("/") == 502
    r, result = emergency(nginx_target, tmp_path)
    assert r.status == "successful", r.stdout.read()[-4000:]
    # The host: only the culprit is out, every other plugin is back, the list is the same bytes minus it.
    # (a directory of the image cannot move on overlayfs: its plugin file is renamed in place instead)
    assert set(plugin_dirs(nginx_target)) <= set(before_dirs) and set(before_dirs) - set(plugin_dirs(nginx_target)) <= {CULPRIT}
    assert [p for p in out_of_place(nginx_target) if CULPRIT not in p] == []
    assert any(CULPRIT in p for p in out_of_place(nginx_target))
    assert active_plugins(nginx_target) == wp502_wpdb.without("active_plugins", before_active,
                                                              [f"{CULPRIT}/{CULPRIT}.php"])
    assert nginx_target.get("/") == 200 and nginx_target.get("/wp-login.php") == 200
    assert not nginx_target.host.file(f"{WP}/mu-plugins/wp502-guard.php").exists
    # systemd really refused a restart during the rung, and the rung said so
    kept = host_result(nginx_target, result["run_id"])
    rung = next(x for x in kept["rungs"] if x["rung"] == "plugins")
    assert any("start-limit-hit" in c and "reset-failed" in c for c in rung["cautions"]), rung
    # ... and what wp502 said agrees with the host
    assert kept["culprits"] == [CULPRIT] == result["culprits"] and rung["culprits"] == [CULPRIT]
    assert kept["healed"] is True and kept["healed_by"] == "plugins"


def test_a_name_already_under_plugins_off_is_not_in_the_way(nginx_target, tmp_path):
    h = nginx_target.host
    h.check_output(f"mkdir -p {WP}/plugins-off/akismet {WP}/plugins-off/{INNOCENTS[0]} && "
                   f"echo 'left by someone' > {WP}/plugins-off/akismet/README")
    add_innocents(nginx_target)
    nginx_target.break_("segfault")
    before_dirs, before_active = plugin_dirs(nginx_target), active_plugins(nginx_target)
    r, result = emergency(nginx_target, tmp_path)
    assert r.status == "successful", r.stdout.read()[-4000:]
    assert set(plugin_dirs(nginx_target)) <= set(before_dirs) and set(before_dirs) - set(plugin_dirs(nginx_target)) <= {CULPRIT}
    moved = [p for p in out_of_place(nginx_target) if p not in ("plugins-off/akismet/README",)]
    assert moved and all(CULPRIT in p for p in moved), moved
    assert h.file(f"{WP}/plugins-off/akismet/README").content_string == "left by someone\n"
    assert active_plugins(nginx_target) == wp502_wpdb.without("active_plugins", before_active,
                                                              [f"{CULPRIT}/{CULPRIT}.php"])
    assert nginx_target.get("/") == 200
    kept = host_result(nginx_target, result["run_id"])
    assert kept["healed"] is True and kept["culprits"] == [CULPRIT]


def test_a_move_that_fails_half_way_puts_everything_back(nginx_target, tmp_path):
    add_innocents(nginx_target)
    nginx_target.break_("segfault")
    # A mount point cannot be renamed (EBUSY): the rung stops after having moved the plugins before it.
    stuck = f"{WP}/plugins/{INNOCENTS[3]}"
    nginx_target.host.check_output(f"mount --bind {stuck} {stuck}")
    before = snapshot(nginx_target)
    r, result = emergency(nginx_target, tmp_path)
    assert r.status == "failed" and r.stats["failures"].get(nginx_target.name)  # left broken: the run says so
    # The host: exactly as the rung found it (files, directories, list bytes), no guard, still broken.
    assert snapshot(nginx_target) == before
    assert not nginx_target.host.file(f"{WP}/mu-plugins/wp502-guard.php").exists
    assert nginx_target.get("/") == 502
    # What wp502 said: not healed, no culprit, the rung's failure with the state and the rollback command.
    kept = host_result(nginx_target, result["run_id"])
    assert kept["healed"] is False and kept["culprits"] == [] and result["healed"] is False
    assert "plugins rung failed" in kept["stopped"] and "Everything was put back" in kept["stopped"]
    assert "rollback-502.yml -l" in kept["stopped"] and f"wp502_run_id={result['run_id']}" in kept["stopped"]


def test_a_pool_on_a_tcp_port_is_waited_for_and_checked_before_a_probe_counts(nginx_target, tmp_path):
    """Real servers often run FPM on 127.0.0.1:9000: the pool check and the waits must follow it there."""
    add_innocents(nginx_target)
    nginx_target.break_("segfault")
    strict_start_limit(nginx_target)
    h = nginx_target.host
    h.check_output("sed -i 's#^listen = .*#listen = 127.0.0.1:9000 ; TCP, as on many real servers#' "
                   "/etc/php/8.2/fpm/pool.d/www.conf && "
                   "sed -i 's#fastcgi_pass unix:/run/php/php8.2-fpm.sock;#fastcgi_pass 127.0.0.1:9000;#' "
                   "$(readlink -f /etc/nginx/sites-enabled/wordpress) && php-fpm8.2 -t && nginx -t && "
                   "systemctl reset-failed php8.2-fpm && systemctl restart php8.2-fpm && systemctl restart nginx")
    before_active = active_plugins(nginx_target)
    assert nginx_target.get("/") == 502
    r, result = emergency(nginx_target, tmp_path)
    assert r.status == "successful", r.stdout.read()[-4000:]
    assert [p for p in out_of_place(nginx_target) if CULPRIT not in p] == []
    assert active_plugins(nginx_target) == wp502_wpdb.without("active_plugins", before_active,
                                                              [f"{CULPRIT}/{CULPRIT}.php"])
    assert nginx_target.get("/") == 200
    kept = host_result(nginx_target, result["run_id"])
    assert kept["culprits"] == [CULPRIT] and kept["healed_by"] == "plugins"
