"""wp502_config on a real target: a symlinked site is edited through its link, a candidate the service's own
validator refuses never goes live, and rollback brings back the bytes and the link (asserted on the host)."""

from __future__ import annotations

import json

SITE_LINK = "/etc/nginx/sites-enabled/wordpress"
SITE_REAL = "/etc/nginx/sites-available/wordpress"
POOL = "/etc/php/8.2/fpm/pool.d/www.conf"


def _run(target, tmp_path, steps, **config):
    extra = {"wp502_test_steps": steps, "wp502_test_out": str(tmp_path), **config}
    proc = target.playbook("tests/lab/playbooks/config-file.yml", "-e", json.dumps(extra))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return json.loads((tmp_path / f"{target.name}.json").read_text())


def _state(host, path):
    """What the host has at ``path``: type, link target, and the real file's bytes, inode, mtime, owner, mode."""
    out = host.run("stat -c '%%F|%%N' %s && stat -L -c '%%i|%%Y.%%y|%%u|%%g|%%a' %s && sha256sum < %s", path, path, path)
    assert out.rc == 0, out.stderr
    kind, real, digest = out.stdout.splitlines()
    return {"kind": kind.split("|")[0], "name": kind.split("|")[1], "stat": real, "sha256": digest.split()[0]}


def _pid(host, pidfile):
    return host.file(pidfile).content_string.strip()


def _nginx_site(target):
    host = target.host
    link = host.file(SITE_LINK)
    if not link.is_symlink:  # the lab image links it as Debian does; make sure of it
        assert host.run("ln -sfn ../sites-available/wordpress %s", SITE_LINK).rc == 0
    assert host.file(SITE_LINK).linked_to == SITE_REAL
    return host


NGINX = {"wp502_test_kind": "nginx", "wp502_test_path": SITE_LINK, "wp502_test_validate": ["nginx", "-t"]}


def test_a_symlinked_site_is_edited_through_the_link_and_rolled_back(nginx_target, tmp_path):
    host = _nginx_site(nginx_target)
    before = _state(host, SITE_LINK)
    original = host.file(SITE_REAL).content_string
    owner = (host.file(SITE_REAL).uid, host.file(SITE_REAL).gid, host.file(SITE_REAL).mode)
    listing = host.run("ls -A /etc/nginx/sites-available /etc/nginx/sites-enabled").stdout
    said = _run(nginx_target, tmp_path, ["lock", "config"], **NGINX, wp502_test_settings={"fastcgi_read_timeout": "120s"})
    config = said["config"]
    assert config["changed"] and not config.get("failed"), config
    assert host.file(SITE_LINK).is_symlink and host.run("readlink %s", SITE_LINK).stdout.strip() == "../sites-available/wordpress"
    site = host.file(SITE_REAL)
    assert "fastcgi_read_timeout 120s;" in site.content_string and not site.is_symlink
    assert (site.uid, site.gid, site.mode) == owner
    assert host.run("nginx -t").rc == 0
    assert host.run("ls -A /etc/nginx/sites-available /etc/nginx/sites-enabled").stdout == listing  # no candidate left
    # what wp502 said agrees with the host
    assert config["real_path"] == SITE_REAL and config["validation"].endswith("test is successful")
    assert any(c["key"] == "fastcgi_read_timeout" and c["after"] == "120s" for c in config["changes"])

    said = _run(nginx_target, tmp_path, ["rollback", "unlock"])
    assert said["rollback"].get("changed"), said["rollback"]
    after = _state(host, SITE_LINK)
    assert host.file(SITE_LINK).is_symlink and host.run("readlink %s", SITE_LINK).stdout.strip() == "../sites-available/wordpress"
    assert host.file(SITE_REAL).content_string == original and after["sha256"] == before["sha256"]
    assert (host.file(SITE_REAL).uid, host.file(SITE_REAL).gid, host.file(SITE_REAL).mode) == owner
    assert (after["kind"], after["name"]) == (before["kind"], before["name"])


def test_a_candidate_nginx_refuses_never_goes_live(nginx_target, tmp_path):
    host = _nginx_site(nginx_target)
    before = _state(host, SITE_LINK)
    master = _pid(host, "/run/nginx.pid")
    listing = host.run("ls -A /etc/nginx/sites-available").stdout
    said = _run(nginx_target, tmp_path, ["lock", "config", "unlock"], **NGINX,
                wp502_test_settings={"fastcgi_read_timeout": "soon"})
    config = said["config"]
    assert not config["changed"] and "rejected the change" in config["msg"] and "live file was not touched" in config["msg"]
    assert "invalid value" in config["msg"]  # nginx's own words about the candidate
    assert _state(host, SITE_LINK) == before  # same type, link, inode, mtime, owner, mode and bytes
    assert _pid(host, "/run/nginx.pid") == master and host.run("nginx -t").rc == 0
    assert host.run("ls -A /etc/nginx/sites-available").stdout == listing
    assert nginx_target.get("/") == 200


def test_a_pool_change_php_fpm_refuses_never_touches_the_live_file(nginx_target, tmp_path):
    host = nginx_target.host
    before = _state(host, POOL)
    master = _pid(host, "/run/php/php8.2-fpm.pid")
    listing = host.run("ls -A /etc/php/8.2/fpm/pool.d").stdout
    said = _run(nginx_target, tmp_path, ["lock", "config", "unlock"], wp502_test_kind="fpm_pool", wp502_test_path=POOL,
                wp502_test_pool="www", wp502_test_settings={"pm.max_spare_servers": 50},
                wp502_test_validate=["php-fpm8.2", "-t"])
    config = said["config"]
    assert not config["changed"] and "rejected the change" in config["msg"], config
    assert "pm.max_spare_servers" in config["msg"]  # FPM's own refusal of the candidate
    assert _state(host, POOL) == before
    assert _pid(host, "/run/php/php8.2-fpm.pid") == master
    assert host.run("ls -A /etc/php/8.2/fpm/pool.d").stdout == listing
    assert host.run("php-fpm8.2 -t").rc == 0


def test_apache_symlinked_vhost_refused_then_changed_through_the_link(apache_target, tmp_path):
    host = apache_target.host
    link, real = "/etc/apache2/sites-enabled/wordpress.conf", "/etc/apache2/sites-available/wordpress.conf"
    assert host.file(link).linked_to == real
    before = _state(host, link)
    apache = {"wp502_test_kind": "apache", "wp502_test_path": link, "wp502_test_validate": ["apachectl", "-t"]}
    said = _run(apache_target, tmp_path, ["lock", "config"], **apache, wp502_test_settings={"ProxyTimeout": "soon"})
    assert not said["config"]["changed"] and "rejected the change" in said["config"]["msg"], said["config"]
    assert "Proxy Timeout must be at least 1 second" in said["config"]["msg"]  # Apache's reason, about the candidate
    assert _state(host, link) == before
    said = _run(apache_target, tmp_path, ["config", "rollback", "unlock"], **apache, wp502_test_settings={"ProxyTimeout": "120"})
    assert said["config"]["changed"] and said["config"]["real_path"] == real, said["config"]
    assert said["rollback"].get("changed")
    assert _state(host, link)["sha256"] == before["sha256"] and host.file(link).linked_to == real
    assert host.run("apachectl -t").rc == 0
