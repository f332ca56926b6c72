"""A lab target with three WordPress sites (`make lab SITES=3`): each site answers on its own Host
header, `lab-break.yml -e wp502_lab_site=NAME` breaks that site only, mysql_down and static_pool
do what they say, and repair (wp502_lab_fault=none) puts every site back.

Each test starts its own three-site container (site 1 = the image's /var/www/wordpress, siteb.test on
/run/php/siteb.sock, sitec.test on 127.0.0.1:9001), breaks it over SSH as an operator would, and
checks the host from outside: status per Host header on the published 127.0.0.1 port, the site's own
logs, the databases' active_plugins, the pool files' bytes.
"""

from __future__ import annotations

import json
import re

import labctl
import pytest

FAULT_PLUGINS = re.compile(r"^wp502-fault-")
BASE_PLUGINS = {"akismet/akismet.php", "xrds-simple/xrds-simple.php"}
DB_ERROR = "Error establishing a database connection"


def active_plugins(target, site: str) -> set[str]:
    path = target.registry[site]["path"]
    plugins = json.loads(target.host.check_output(f"WP502_LAB_DOCROOT={path} wp502-lab-wp plugin list"))
    return {p["file"] for p in plugins if p["active"]}


def sha256(target, path: str) -> str:
    return target.host.check_output(f"sha256sum {path}").split()[0]


def pool_hashes(target) -> dict[str, str]:
    return {name: sha256(target, site["pool_file"]) for name, site in target.registry.items()}


def test_every_site_answers_on_its_own_host_header(sites_target):
    t = sites_target
    assert list(t.registry) == ["wordpress", "siteb", "sitec"]
    for name in t.sites:
        assert t.get_site(name, "/") == 200, name
        assert t.get_site(name, "/wp-login.php") == 200, name
        code, body = t.fetch_site(name)
        assert code == 200
        title = re.search(r"<title>([^<]*)</title>", body).group(1)
        assert title.startswith("wp502 lab siteb" if name == "siteb" else "wp502 lab sitec" if name == "sitec" else "wp502 lab")
        assert active_plugins(t, name) == BASE_PLUGINS, name
    # The www alias is the same site.
    assert re.search(r"<title>wp502 lab siteb", t.host.check_output("curl -s -H 'Host: www.siteb.test' http://127.0.0.1/"))
    # Own docroot, database, pool and logs per site; one pool on TCP.
    b, c = t.registry["siteb"], t.registry["sitec"]
    assert (b["path"], b["db"], b["listen"]) == ("/var/www/siteb", "siteb", "/run/php/siteb.sock")
    assert (c["path"], c["db"], c["listen"]) == ("/var/www/sitec", "sitec", "127.0.0.1:9001")
    assert t.host.socket("unix:///run/php/siteb.sock").is_listening
    assert t.host.socket("tcp://127.0.0.1:9001").is_listening
    assert t.host.socket("unix:///run/php/php8.2-fpm.sock").is_listening
    for site in (b, c):
        assert t.host.file(site["pool_file"]).content_string == t.host.file(site["baseline"]).content_string
        assert f"slowlog = {site['slowlog']}" in t.host.file(site["pool_file"]).content_string
        assert t.host.file(site["vhost_file"]).exists
        assert t.log(site["access_log"]), f"{site['access_log']} is empty after requests to {site['host']}"
        assert f"DB_NAME', '{site['db']}'" in t.host.file(f"{site['path']}/wp-config.php").content_string
    if t.frontend == "nginx":
        assert t.host.file("/etc/nginx/sites-enabled/wp-siteb").linked_to == "/etc/nginx/sites-available/wp-siteb"
    else:
        assert t.host.file("/etc/apache2/sites-enabled/wp-sitec.conf").is_symlink
    # Adding a site again changes nothing.
    again = json.loads(t.host.check_output("wp502-lab-site add sitec --tcp 9001"))
    assert again["changed"] == []


SITE_B_STATUS = {"nginx": 502, "apache": 503}


def test_breaking_site_b_leaves_the_other_sites_answering(sites_target):
    t = sites_target
    pools = pool_hashes(t)
    t.break_site("segfault", "siteb")
    assert t.statuses() == {"wordpress": 200, "siteb": SITE_B_STATUS[t.frontend], "sitec": 200}
    assert active_plugins(t, "siteb") == BASE_PLUGINS | {"wp502-fault-segfault/wp502-fault-segfault.php"}
    assert active_plugins(t, "wordpress") == BASE_PLUGINS
    assert active_plugins(t, "sitec") == BASE_PLUGINS
    assert pool_hashes(t) == pools
    # The crash is in site b's own front-end log, not in site 1's.
    assert re.search(r"recv\(\) failed|AH01067", t.log(t.registry["siteb"]["error_log"]))
    assert not re.search(r"recv\(\) failed|AH01067", t.log(t.registry["wordpress"]["error_log"]))
    # Repair restores every site.
    t.break_site("none")
    assert t.statuses() == {"wordpress": 200, "siteb": 200, "sitec": 200}
    assert active_plugins(t, "siteb") == BASE_PLUGINS


def test_breaking_site_1_by_default_leaves_the_others(nginx_sites_target):
    t = nginx_sites_target
    t.break_site("invalid_header")
    assert t.statuses() == {"wordpress": 502, "siteb": 200, "sitec": 200}
    assert "wp502-fault-header/wp502-fault-header.php" in active_plugins(t, "wordpress")


def test_max_children_fills_only_that_sites_pool(nginx_sites_target):
    """The burst carries site b's Host header: site b's pool is the one full, site 1 never answers 502."""
    t = nginx_sites_target
    t.break_site("max_children", "siteb")
    b_codes = re.findall(r'" (\d{3}) ', t.log(t.registry["siteb"]["access_log"]))
    a_codes = re.findall(r'" (\d{3}) ', t.log(t.registry["wordpress"]["access_log"]))
    assert "502" in b_codes, sorted(set(b_codes))
    assert "502" not in a_codes
    fpm = t.log("/var/log/php8.2-fpm.log")
    assert re.search(r"WARNING: \[pool siteb\] server reached pm\.max_children setting \(2\)", fpm)
    assert not re.search(r"\[pool (www|sitec)\] server reached", fpm)
    assert re.search(r"^pm\.max_children = 2$", t.host.file(t.registry["siteb"]["pool_file"]).content_string, re.MULTILINE)
    assert re.search(r"^pm\.max_children = 5$", t.host.file(t.registry["wordpress"]["pool_file"]).content_string, re.MULTILINE)


def test_mysql_down_answers_500_with_the_database_error_on_every_site(nginx_sites_target):
    t = nginx_sites_target
    t.break_site("mysql_down")
    for name in t.sites:
        code, body = t.fetch_site(name)
        assert code == 500 and DB_ERROR in body, (name, code, body[:300])
    # A connection does not bring it back: the socket unit that would start it is stopped too.
    assert t.host.run("mariadb -e 'SELECT 1'").rc != 0
    assert not t.host.service("mariadb").is_running
    assert t.host.run("systemctl is-active mariadb.socket").stdout.strip() == "inactive"
    assert t.get_site("siteb") == 500
    t.break_site("none")
    assert t.statuses() == {"wordpress": 200, "siteb": 200, "sitec": 200}
    assert t.host.service("mariadb").is_running
    assert t.host.run("systemctl is-active mariadb.socket").stdout.strip() == "active"


def test_static_pool_is_healthy_and_edits_only_that_sites_pool(nginx_sites_target):
    t = nginx_sites_target
    before = pool_hashes(t)
    t.break_site("static_pool", "sitec.test")
    pool = t.host.file(t.registry["sitec"]["pool_file"]).content_string
    assert re.search(r"^pm = static$", pool, re.MULTILINE)
    assert re.search(r"^pm\.max_children = 5$", pool, re.MULTILINE)
    after = pool_hashes(t)
    assert {k: v for k, v in after.items() if k != "sitec"} == {k: v for k, v in before.items() if k != "sitec"}
    assert after["sitec"] != before["sitec"]
    assert t.statuses() == {"wordpress": 200, "siteb": 200, "sitec": 200}
    status = json.loads(t.host.check_output("curl -s -H 'Host: sitec.test' 'http://127.0.0.1/fpm-status?json'"))
    assert status["pool"] == "sitec" and status["process manager"] == "static"
    assert status["total processes"] == 5 and status["listen queue"] == 0
    t.break_site("none")
    assert pool_hashes(t) == before


def test_repair_restores_every_site(apache_sites_target):
    t = apache_sites_target
    before = pool_hashes(t)
    # Damage two sites by hand, two ways, then repair.
    t.host.run("WP502_LAB_DOCROOT=/var/www/sitec wp502-lab-wp plugin activate wp502-fault-remote")
    t.host.run("sed -i 's/^pm.max_children = 5/pm.max_children = 1/' /etc/php/8.2/fpm/pool.d/siteb.conf")
    t.host.run("WP502_LAB_DOCROOT=/var/www/siteb wp502-lab-wp option set wp502_fault_slow_seconds 9")
    t.break_site("none")
    assert pool_hashes(t) == before
    assert all(active_plugins(t, name) == BASE_PLUGINS for name in t.sites)
    assert t.host.check_output("mariadb -N siteb -e \"SELECT COUNT(*) FROM wp_options WHERE option_name LIKE 'wp502\\_%'\"") == "0"
    assert t.statuses() == {"wordpress": 200, "siteb": 200, "sitec": 200}


def test_an_unknown_site_is_refused_before_any_change(nginx_sites_target):
    t = nginx_sites_target
    proc = t.playbook("playbooks/lab-break.yml", "-e", "wp502_lab_fault=segfault", "-e", "wp502_lab_site=nosuch.test")
    assert proc.returncode != 0
    assert "wp502_lab_site=nosuch.test is not a site of" in proc.stdout
    assert all(active_plugins(t, name) == BASE_PLUGINS for name in t.sites)


@pytest.mark.parametrize("site", ["www.siteb.test", "/var/www/siteb"])
def test_a_site_is_named_by_name_host_or_docroot(nginx_sites_target, site):
    t = nginx_sites_target
    t.break_site("too_big_header", site)
    assert t.statuses() == {"wordpress": 200, "siteb": 502, "sitec": 200}


def test_labctl_up_with_three_sites_twice(lab_images, tmp_path, monkeypatch, capsys):
    """`make lab SITES=3` (scratch inventories): every site answers through the published port, the
    inventory lists the sites, a second `up` keeps the containers and their sites as they are."""
    monkeypatch.setattr(labctl, "ROOT", tmp_path)
    monkeypatch.setattr(labctl, "STATE_DIR", tmp_path / ".lab")
    args = ["--prefix", "wp502-sitesfleet", "up", "--hosts", "2", "--apache", "1", "--sites", "3",
            "--http-base", "38180", "--ssh-base", "32320"]
    try:
        assert labctl.main(args) == 0
        first = {n: labctl.container_state(n)["Id"] for n in labctl.fleet_containers("wp502-sitesfleet")}
        hosts = json.loads((tmp_path / "inventories/lab/hosts.yml").read_text().split("\n", 1)[1])[
            "all"]["children"]["wp502_lab"]["hosts"]
        assert [s["host"] for s in hosts["wp2"]["wp502_lab_sites"]] == ["localhost", "siteb.test", "sitec.test"]
        for port in (38181, 38182):
            for host in ("siteb.test", "www.sitec.test", None):
                assert labctl.http_status(port, "/", host=host) == 200, (port, host)
        assert labctl.main(args) == 0
        assert {n: labctl.container_state(n)["Id"] for n in labctl.fleet_containers("wp502-sitesfleet")} == first
        capsys.readouterr()
        assert labctl.main(["--prefix", "wp502-sitesfleet", "status"]) == 0
        out = capsys.readouterr().out
        assert out.count("sitec.test       / -> 200  /wp-login.php -> 200") == 2, out
    finally:
        assert labctl.main(["--prefix", "wp502-sitesfleet", "down"]) == 0
    assert labctl.fleet_containers("wp502-sitesfleet") == []
