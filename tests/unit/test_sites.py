"""The site map (issue #11): every WordPress site of a host with what serves it, and every site probed at once.

Front-end configurations are real-world shapes (an agency's ``nginx -T`` dump, Debian Apache vhosts with
certbot's redirect, an ISPConfig per-client pool); WordPress trees are built in tmp_path.
"""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import pytest
import wp502_collect as ev
import wp502_frontend as fe
import wp502_http
import wp502_sites as ws

SITES = Path(__file__).resolve().parent.parent / "fixtures" / "config" / "sites"

POOLS = [
    {"name": "www", "listen": "/run/php/php8.2-fpm.sock", "service": "php8.2-fpm"},
    {"name": "siteb", "listen": "127.0.0.1:9001", "service": "php8.2-fpm"},
    {"name": "web4", "listen": "/var/lib/php8.2-fpm/web4.sock", "service": "php8.2-fpm"},
    {"name": "dev", "listen": "9002", "service": "php8.1-fpm"},
    {"name": "sitec", "listen": "[::]:9004", "service": "php8.3-fpm"},
    {"name": "siteb-apache", "listen": "/run/php/siteb.sock", "service": "php8.3-fpm"},
]


def same(path):
    return path.rstrip("/") or "/"


def nginx_sites(given=()):
    parsed = fe.parse_nginx((SITES / "nginx-T-agency.txt").read_text())
    assert parsed["errors"] == []
    return ws.build_sites(ev.nginx_servers(parsed), POOLS, given, "nginx", realpath=same)


def by_id(sites):
    return {s["id"]: s for s in sites}


def test_nginx_vhosts_sharing_a_docroot_are_one_site_and_each_site_knows_what_serves_it():
    sites = nginx_sites()
    # nginx's order: conf.d/*.conf is included before sites-enabled/*
    assert [s["id"] for s in sites] == ["/var/www/dev", "/var/www/html", "shop.example.com", "siteb.test",
                                        "web4.example.org"]
    dev, default, shop, siteb, web4 = sites
    # the :80 redirect, the :443 server and the staging name on 127.0.0.1:8081 share /var/www/shop
    assert shop["names"] == ["shop.example.com", "www.shop.example.com", "staging.shop.example.com"]
    assert [v["file"] for v in shop["vhosts"]] == ["/etc/nginx/sites-enabled/shop.example.com.conf"] * 2 + \
        ["/etc/nginx/sites-enabled/staging.conf"]
    assert [v["redirect"] for v in shop["vhosts"]] == [True, False, False]
    assert (shop["port"], shop["scheme"], shop["probe_host"]) == (443, "https", "shop.example.com")
    assert shop["upstreams"] == ["unix:/run/php/php8.2-fpm.sock"] and shop["pools"] == ["www"]
    assert shop["fpm_services"] == ["php8.2-fpm"]
    assert (shop["error_log"], shop["access_log"]) == ("/var/log/nginx/shop.error.log", "/var/log/nginx/shop.access.log")
    # an upstream block on TCP, a quoted name, a port of its own
    assert siteb["names"] == ["siteb.test", "www.siteb.test"] and siteb["upstreams"] == ["127.0.0.1:9001"]
    assert (siteb["pools"], siteb["port"], siteb["scheme"]) == (["siteb"], 8080, "http")
    # ISPConfig: one socket per client web; the wildcard is a name but never the id
    assert web4["names"] == ["web4.example.org", "*.web4.example.org"] and web4["pools"] == ["web4"]
    assert web4["upstreams"] == ["unix:/var/lib/php8.2-fpm/web4.sock"]
    # a regex server name: the docroot is the id; localhost:9002 is the pool listening on the bare port 9002
    assert dev["names"] == ["~^(?<sub>[a-z0-9-]+)\\.dev\\.test$"] and dev["upstreams"] == ["127.0.0.1:9002"]
    assert dev["pools"] == ["dev"] and dev["fpm_services"] == ["php8.1-fpm"] and dev["probe_host"] == "localhost"
    # default_server on port 80, though dev's server comes first; siteb is the only (so default) one of :8080
    assert default["default_server"] and default["probe_host"] == "localhost" and default["pools"] == []
    assert [s["default_server"] for s in sites] == [False, True, True, True, False]  # shop: first of :443
    assert all(s["server"] == "nginx" and s["url"] is None and not s["given"] for s in sites)


def test_the_first_server_of_an_address_is_its_default_unless_another_says_default_server():
    servers = [
        {"kind": "nginx", "names": ["a.test"], "root": "/srv/a", "listen": ["8080"]},
        {"kind": "nginx", "names": ["b.test"], "root": "/srv/b", "listen": ["8080", "80"]},
        {"kind": "nginx", "names": ["c.test"], "root": "/srv/c", "listen": ["80 default_server"]},
        {"kind": "nginx", "names": ["d.test"], "root": "/srv/d", "listen": ["127.0.0.1:8081"]},
        {"kind": "apache", "names": ["e.test"], "root": "/srv/e", "listen": ["*:80"]},  # not the active front-end
    ]
    sites = ws.build_sites(servers, [], (), "nginx", realpath=same)
    assert {s["id"]: s["default_server"] for s in sites} == {"a.test": True, "b.test": False, "c.test": True,
                                                             "d.test": True}


def apache_sites(given=()):
    snippets = {"/etc/apache2/snippets/php-siteb.conf": (SITES / "apache-php-siteb.conf").read_text()}
    files = [("/etc/apache2/sites-enabled/000-default.conf", (SITES / "apache-000-default.conf").read_text()),
             ("/etc/apache2/sites-enabled/siteb.conf", (SITES / "apache-siteb.conf").read_text()),
             ("/etc/apache2/sites-enabled/sitec.conf", (SITES / "apache-sitec.conf").read_text())]
    parsed = fe.parse_apache(files, include=lambda pattern: [(pattern, snippets[pattern])] if pattern in snippets else [])
    servers = ev.apache_servers(parsed, {"APACHE_LOG_DIR": "/var/log/apache2"})
    return ws.build_sites(servers, POOLS, given, "apache", realpath=same)


def test_apache_vhosts_aliases_certbot_redirect_included_handler_and_the_first_vhost_as_default():
    default, siteb, sitec = apache_sites()
    assert (default["id"], default["default_server"], default["probe_host"]) == ("/var/www/html", True, "localhost")
    assert default["error_log"] == "/var/log/apache2/error.log"
    # :80 (certbot's RewriteRule to https) and :443 are one site; ServerName with a port is still its id
    assert siteb["id"] == "siteb.test" and siteb["names"] == ["siteb.test", "www.siteb.test", "*.siteb.test",
                                                              "siteb.test:443"]
    assert [v["redirect"] for v in siteb["vhosts"]] == [True, False]
    assert (siteb["port"], siteb["scheme"]) == (443, "https") and siteb["listen"] == ["*:80", "*:443 ssl"]
    # the handler comes from a file included inside the vhost
    assert siteb["upstreams"] == ["unix:/run/php/siteb.sock"] and siteb["pools"] == ["siteb-apache"]
    assert siteb["error_log"] == "/var/log/apache2/siteb-error.log"
    assert siteb["default_server"]  # the first vhost of *:443 is its default
    # two addresses, SSLEngine on a port that is not 443, ProxyPassMatch to fcgi://
    assert sitec["listen"] == ["192.0.2.10:8443 ssl", "[2001:db8::10]:8443 ssl"]
    assert (sitec["port"], sitec["scheme"], sitec["upstreams"]) == (8443, "https", ["127.0.0.1:9003"])
    assert sitec["pools"] == [] and sitec["default_server"]  # first (only) vhost of its addresses


def test_given_sites_come_first_match_by_docroot_or_name_and_the_unknown_one_is_its_own_site():
    given = [{"path": "/srv/legacy", "host": "legacy.example.com", "url": "https://legacy.example.com"},
             {"path": "/var/www/siteb/", "url": "https://siteb.example"},
             {"path": "/somewhere/else", "host": "WWW.shop.example.com"}]
    sites = nginx_sites(given)
    assert [s["id"] for s in sites][:3] == ["legacy.example.com", "siteb.test", "shop.example.com"]
    legacy, siteb, shop = sites[:3]
    assert legacy["docroot"] == "/srv/legacy" and legacy["names"] == ["legacy.example.com"] and legacy["vhosts"] == []
    assert legacy["url"] == "https://legacy.example.com" and legacy["probe_host"] == "legacy.example.com"
    assert siteb["url"] == "https://siteb.example" and siteb["probe_host"] == "siteb.test"
    assert shop["probe_host"] == "www.shop.example.com" and shop["docroot"] == "/var/www/shop"
    assert [s["given"] for s in sites] == [True, True, True, False, False, False]
    assert len(sites) == 6 and len({s["id"] for s in sites}) == 6


def test_site_ids_are_unique_and_odd_names_never_become_one():
    assert ws.site_id(["_", "", "localhost", "*.x.test", "~^www\\.(.+)$", "Shop.Example.COM"], "/srv/x") == \
        "shop.example.com"
    assert ws.site_id(["_"], "/var/www/html/") == "/var/www/html"
    assert ws.site_id(["www.example.*", ".example.org"], "/srv/y") == "/srv/y"
    servers = [{"kind": "nginx", "names": ["same.test"], "root": "/srv/one", "listen": ["80"]},
               {"kind": "nginx", "names": ["same.test", "alt.test"], "root": "/srv/two", "listen": ["80"]},
               {"kind": "nginx", "names": ["same.test"], "root": "/srv/three", "listen": ["80"]}]
    assert [s["id"] for s in ws.build_sites(servers, [], (), "nginx", realpath=same)] == \
        ["same.test", "alt.test", "/srv/three"]
    assert ws.probe_host("/srv/w", ["*.wild.test"], False) == "www.wild.test"


def test_docroots_reached_through_a_symlink_are_one_site(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    servers = [{"kind": "nginx", "names": ["a.test"], "root": str(tmp_path / "real"), "listen": ["80"]},
               {"kind": "nginx", "names": ["b.test"], "root": str(tmp_path / "link") + "/", "listen": ["8080"]}]
    (site,) = ws.build_sites(servers, [], (), "nginx")
    assert site["names"] == ["a.test", "b.test"]


@pytest.mark.parametrize(("listen", "key"), [
    ("/run/php/php8.2-fpm.sock", (1, "/run/php/php8.2-fpm.sock")),
    ("unix:/run/php/php8.2-fpm.sock:", (1, "/run/php/php8.2-fpm.sock")),
    ("9001", (2, ("127.0.0.1", 9001))), ("0.0.0.0:9001", (2, ("127.0.0.1", 9001))),
    ("localhost:9001", (2, ("127.0.0.1", 9001))), ("[::]:9004", (10, ("::1", 9004))),
    ("$upstream", None), ("", None),
])
def test_pool_addresses_and_upstreams_compare_in_one_form(listen, key):
    assert ws.addr_key(listen) == key


@pytest.mark.parametrize(("value", "path"), [
    ("/srv/shared/wp-content", "/srv/shared/wp-content"),
    ({"expression": "__DIR__ . '/content'"}, "/var/www/site/content"),
    ({"expression": "dirname(__FILE__) . \"/app\""}, "/var/www/site/app"),
    ({"expression": "dirname(__DIR__) . '/shared/wp-content'"}, "/var/www/shared/wp-content"),
    ({"expression": "ABSPATH . 'wp-content'"}, "/var/www/site/wp/wp-content"),
    ({"expression": "getenv('CONTENT_DIR')"}, None),
    (None, None),
])
def test_wp_content_dir_expressions(value, path):
    assert ws.resolve_php_path(value, "/var/www/site", "/var/www/site/wp") == path


def test_multisite_defines():
    text = "<?php\n// define('MULTISITE', false);\ndefine( 'WP_ALLOW_MULTISITE', true );\ndefine('MULTISITE', true);\n" \
           "define('SUBDOMAIN_INSTALL', false);\n"
    assert ws.wp_multisite(text) == {"multisite": True, "allow_multisite": True, "subdomain_install": False}
    assert ws.wp_multisite("<?php\n")["multisite"] is False


def test_mycnf_socket_last_server_section_wins():
    debian = "[client-server]\n!includedir /etc/mysql/conf.d/\n"
    server = "[mysqld]\nsocket = /run/mysqld/mysqld.sock\n[client]\nsocket=/tmp/client.sock\n"
    custom = "# moved\n[mariadb]\nsocket = \"/var/run/mysqld/custom.sock\"\n"
    assert ev.mycnf_socket([debian, server, custom]) == "/var/run/mysqld/custom.sock"
    assert ev.mycnf_socket([debian, "[client]\nsocket=/tmp/x.sock\n"]) == "/run/mysqld/mysqld.sock"


# ---- WordPress trees on disk ------------------------------------------------------------------

BOM = b"\xef\xbb\xbf<?php\n"


def wp_tree(root, config="", content=None):
    """A WordPress install: core, wp-config.php, and a wp-content (at ``content`` when given)."""
    root.mkdir(parents=True)
    for rel in ("index.php", "wp-settings.php", "wp-login.php", "wp-admin/admin.php", "wp-includes/load.php"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"<?php\n")
    (root / "wp-config.php").write_text("<?php\ndefine('DB_NAME', 'db');\ndefine('DB_USER', 'u');\n"
                                        "define('DB_PASSWORD', 'sekret');\n$table_prefix = 'wp_';\n" + config)
    content = content or root / "wp-content"
    for rel in ("plugins/active/active.php", "plugins/idle/idle.php", "plugins/hello.php", "themes/child/functions.php",
                "themes/parent/functions.php", "themes/old/functions.php", "mu-plugins/loader.php",
                "mu-plugins/lib/inc.php", "object-cache.php", "languages/de_DE.l10n.php"):
        (content / rel).parent.mkdir(parents=True, exist_ok=True)
        (content / rel).write_bytes(BOM)
    (content / "plugins/active/active.php").write_bytes(BOM + b"/* Plugin Name: Active */\n")
    (content / "plugins/idle/idle.php").write_bytes(BOM + b"/* Plugin Name: Idle */\n")
    (content / "plugins/hello.php").write_bytes(BOM + b"/* Plugin Name: Hello */\n")
    (root / "wp-includes/load.php").write_bytes(BOM)
    return root


def collector(monkeypatch, sites=(), db=None):
    monkeypatch.setattr(ev.Collector, "_which", staticmethod(lambda *names: None))
    c = ev.Collector(lambda *a, **k: (1, "", ""), since_epoch=time.time() - 3600, probe=False, db=db is not None,
                     sites=list(sites))
    if db is not None:
        calls = []

        def database(cfg, password, prefix, multisite=False):
            calls.append((cfg.get("db_name"), prefix, multisite))
            return dict(db)

        c.database = database
        c.db_calls = calls
    return c


def read_sites(c, servers, pools=()):
    front = {"kind": "nginx", "servers": servers}
    sites = c.find_sites(front, list(pools))
    out = []
    for site in sites:
        config = site.pop("_config")
        wp = None
        if config:
            wp, cfg, password = c.wordpress(dict(site, _config=config))
            wp["db"] = c.database(cfg, password, wp["table_prefix"], multisite=wp["multisite"]) if c.db_enabled else {}
            readable = bool(wp["db"].get("reachable"))
            active = set(wp["db"].get("active_plugins") or []) | set(wp["db"].get("active_sitewide_plugins") or [])
            ev.split_loaded(wp, active if readable else None,
                            set((wp["db"].get("themes") or {}).values()) if readable else None)
        site["wordpress"] = wp
        out.append(site)
    return out, front


def test_bom_files_are_only_those_proven_loaded(tmp_path, monkeypatch):
    root = wp_tree(tmp_path / "www" / "a")
    db = {"reachable": True, "active_plugins": ["active/active.php", "hello.php"],
          "themes": {"template": "parent", "stylesheet": "child"}}
    c = collector(monkeypatch, db=db)
    (site,), front = read_sites(c, [{"kind": "nginx", "names": ["a.test"], "root": str(root), "listen": ["80"]}])
    wp = site["wordpress"]
    assert sorted(wp["bom_files"]) == ["wp-content/mu-plugins/lib/inc.php", "wp-content/mu-plugins/loader.php",
                                       "wp-content/object-cache.php", "wp-content/plugins/active/active.php",
                                       "wp-content/plugins/hello.php", "wp-content/themes/child/functions.php",
                                       "wp-content/themes/parent/functions.php", "wp-includes/load.php"]
    assert sorted(wp["bom_files_inactive"]) == ["wp-content/plugins/idle/idle.php", "wp-content/themes/old/functions.php"]
    assert wp["bom_files_unproven"] == ["wp-content/languages/de_DE.l10n.php"]
    assert wp["dropins"] == ["object-cache.php"] and wp["content_dir"] == str(root / "wp-content")
    assert "sekret" not in repr(wp) and front["not_wordpress"] == []


def test_an_unreadable_database_proves_no_plugin_or_theme_loaded(tmp_path, monkeypatch):
    root = wp_tree(tmp_path / "a")
    c = collector(monkeypatch, db={"reachable": False, "error": "ERROR 2002 (HY000): Can't connect"})
    (site,), _front = read_sites(c, [{"kind": "nginx", "names": ["a.test"], "root": str(root), "listen": ["80"]}])
    wp = site["wordpress"]
    assert sorted(wp["bom_files"]) == ["wp-content/mu-plugins/lib/inc.php", "wp-content/mu-plugins/loader.php",
                                       "wp-content/object-cache.php", "wp-includes/load.php"]
    assert wp["bom_files_inactive"] == []
    assert not any(f.startswith(("wp-content/plugins/", "wp-content/themes/")) for f in wp["bom_files"])
    assert "wp-content/plugins/idle/idle.php" in wp["bom_files_unproven"]


def test_wp_content_elsewhere_multisite_network_plugins_and_a_docroot_without_wordpress(tmp_path, monkeypatch):
    shared = tmp_path / "www" / "shared" / "content"
    root = wp_tree(tmp_path / "www" / "net", content=shared,
                   config="define('WP_CONTENT_DIR', dirname(__DIR__) . '/shared/content');\n"
                          "define('MULTISITE', true);\ndefine('SUBDOMAIN_INSTALL', true);\n")
    # the docroot's own stale wp-content is not what WordPress loads
    (root / "wp-content/plugins/idle").mkdir(parents=True)
    (root / "wp-content/plugins/idle/idle.php").write_bytes(BOM)
    static = tmp_path / "www" / "static"
    static.mkdir()
    db = {"reachable": True, "active_plugins": [], "active_sitewide_plugins": ["active/active.php"],
          "themes": {"template": "parent", "stylesheet": "parent"}}
    c = collector(monkeypatch, db=db)
    servers = [{"kind": "nginx", "names": ["net.test", "*.net.test"], "root": str(root), "listen": ["80"]},
               {"kind": "nginx", "names": ["static.test"], "root": str(static), "listen": ["80"]}]
    (site,), front = read_sites(c, servers)
    assert front["not_wordpress"] == [{"id": "static.test", "docroot": str(static), "names": ["static.test"]}]
    wp = site["wordpress"]
    assert wp["content_dir"] == str(shared) and wp["content_rel"] == "../shared/content"
    assert (wp["multisite"], wp["subdomain_install"]) == (True, True) and c.db_calls == [("db", "wp_", True)]
    loaded = sorted(wp["bom_files"])
    assert "../shared/content/plugins/active/active.php" in loaded  # network-active
    assert "../shared/content/themes/parent/functions.php" in loaded
    assert "../shared/content/mu-plugins/loader.php" in loaded and "wp-includes/load.php" in loaded
    # a subsite may use what the main site does not: unproven, not inactive, on a network
    assert "../shared/content/plugins/idle/idle.php" in wp["bom_files_unproven"]
    assert "../shared/content/themes/child/functions.php" in wp["bom_files_unproven"]
    assert wp["bom_files_inactive"] == ["wp-content/plugins/idle/idle.php"]
    assert [p["slug"] for p in wp["plugins"]] == ["active", "hello", "idle"]


def test_wp_config_one_level_up_and_a_given_site_without_wordpress_is_kept(tmp_path, monkeypatch):
    base = tmp_path / "client1"
    wp_tree(base / "web")
    (base / "web" / "wp-config.php").rename(base / "wp-config.php")
    c = collector(monkeypatch, sites=[{"path": str(tmp_path / "nothing"), "host": "given.test"}])
    sites, _front = read_sites(c, [{"kind": "nginx", "names": ["web1.test"], "root": str(base / "web"), "listen": ["80"]}])
    given, web = sites
    assert given["id"] == "given.test" and given["wordpress"] is None
    assert web["wordpress"]["config"] == str(base / "wp-config.php") and web["wordpress"]["config_rel"] == "../wp-config.php"


def test_the_bom_module_reaches_a_wp_content_outside_the_docroot_only_when_told(tmp_path, run_module):
    import wp502_bom
    import wp502_journal

    root = wp_tree(tmp_path / "www" / "net", content=tmp_path / "shared")
    wp502_journal.Journal("run1", str(tmp_path / "state")).acquire()
    files = ["../../shared/plugins/active/active.php", "../../etc/passwd.php"]
    args = {"path": str(root), "files": files, "run_id": "run1", "state_dir": str(tmp_path / "state")}
    out = run_module(wp502_bom, **args)
    assert out["stripped"] == [] and (tmp_path / "shared/plugins/active/active.php").read_bytes().startswith(BOM)
    out = run_module(wp502_bom, content_dir=str(tmp_path / "shared"), **args)
    assert out["stripped"] == [files[0]] and not (tmp_path / "shared/plugins/active/active.php").read_bytes().startswith(BOM)
    assert [s["file"] for s in out["not_stripped"]] == [files[1]]


def test_two_hundred_sites_map_quickly():
    servers = [{"kind": "nginx", "names": [f"s{i}.test", f"www.s{i}.test"], "root": f"/srv/s{i}",
                "listen": ["80", "443 ssl"], "upstreams": [f"unix:/run/php/s{i}.sock"]} for i in range(200)]
    pools = [{"name": f"s{i}", "listen": f"/run/php/s{i}.sock", "service": "php8.2-fpm"} for i in range(200)]
    sites = ws.build_sites(servers + servers, pools, [{"path": "/srv/s150", "url": "https://s150.example"}], "nginx",
                           realpath=same)
    assert len(sites) == 200 and sites[0]["id"] == "s150.test" and sites[0]["url"] == "https://s150.example"
    assert all(s["pools"] == [s["id"][:-5]] for s in sites)


# ---- concurrent probes ------------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    hang = threading.Event()

    def do_GET(self):
        host = self.headers.get("Host", "")
        if host == "hang.test":
            Handler.hang.wait(30)
        status = {"ok.test": 200, "broken.test": 502}.get(host, 404)
        self.send_response(status)
        if self.path == "/wp-login.php" and status == 200:
            self.send_header("Set-Cookie", "wordpress_test_cookie=WP%20Cookie%20check")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    Handler.hang.clear()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    Handler.hang.set()
    httpd.shutdown()
    httpd.server_close()


def test_sites_on_one_port_are_told_apart_by_host_and_a_hung_one_costs_one_deadline(server):
    targets = [{"id": "ok", "host": "ok.test", "port": server, "scheme": "http"},
               {"id": "broken", "host": "broken.test", "port": server, "scheme": "http"},
               {"id": "hang", "host": "hang.test", "port": server, "scheme": "http"}]
    res = wp502_http.probe_sites(targets, 1.0, cookie_paths=("/wp-login.php",), deadline=3.0)
    sites = res["sites"]
    assert sites["ok"]["origin_healthy"] is True and sites["ok"]["origin"]["/"]["status"] == 200
    assert sites["broken"]["origin_healthy"] is False and sites["broken"]["origin"]["/wp-login.php"]["status"] == 502
    assert sites["hang"]["origin_healthy"] is False and sites["hang"]["origin"]["/"]["status"] is None
    assert res["skipped"] == [] and set(res) == {"sites", "skipped", "seconds"}


def test_sites_that_cannot_be_started_before_the_deadline_are_skipped_with_why(server):
    targets = [{"id": f"hang{i}", "host": "hang.test", "port": server, "scheme": "http"} for i in range(4)]
    targets.append({"id": "ok", "host": "ok.test", "port": server, "scheme": "http"})
    res = wp502_http.probe_sites(targets, 5.0, workers=2, deadline=1.0)
    skipped = {s["id"]: s["why"] for s in res["skipped"]}
    assert "hang0" not in skipped and "ok" in skipped and "deadline" in skipped["ok"]
    assert res["sites"]["ok"]["origin_healthy"] is None and set(res["sites"]) == {t["id"] for t in targets}


def test_a_public_url_is_asked_as_a_visitor(server):
    res = wp502_http.probe_sites([{"id": "a", "host": "ok.test", "port": server, "scheme": "http",
                                   "url": f"http://127.0.0.1:{server}"}], 2.0)
    site = res["sites"]["a"]
    assert site["origin_healthy"] is True and site["public"]["/"]["status"] == 404  # no Host header of ours
    assert site["cdn"] is None and site["ray_id"] is None
    with pytest.raises(ValueError, match="only http"):
        wp502_http.probe_sites([{"id": "x", "host": "h", "port": 80, "url": "ftp://x"}], 1.0)


def test_site_failing_and_the_worst_site_for_compatibility():
    ok = {"origin": {"/": {"status": 200}}, "origin_healthy": True}
    bad = {"origin": {"/": {"status": 502}}, "origin_healthy": False}
    cdn = {"origin": {"/": {"status": 200}}, "origin_healthy": True, "public": {"/": {"status": 522}}}
    assert [ev.site_failing(h) for h in (ok, bad, cdn, {}, {"origin_healthy": None})] == [False, True, True, False, False]
    assert ev.worst_http([{"http": ok}, {"http": bad}]) is bad and ev.worst_http([{"http": ok}]) is ok
    assert ev.worst_http([]) == {}


def test_a_pools_php_error_log_and_slowlog_are_among_the_logs_read(tmp_path, monkeypatch):
    log = tmp_path / "web4-php.log"
    log.write_text("[02-Dec-2026 00:10:01 UTC] PHP Fatal error:  Allowed memory size of 134217728 bytes exhausted\n")
    fpm = {"logs": [], "pools": [{"name": "web4", "slowlog": str(tmp_path / "slow.log"), "error_log": str(log)},
                                 {"name": "rel", "error_log": "relative.log"}]}
    c = collector(monkeypatch)
    out = c.logs({"kind": "nginx", "servers": []}, fpm)
    assert out["paths"] == [str(tmp_path / "slow.log"), str(log)]


def test_one_block_on_80_and_443_that_sends_plain_http_to_https_is_probed_over_https():
    dump = """# configuration file /etc/nginx/nginx.conf:
http {
    server {
        listen 80;
        listen 443 ssl;
        server_name both.test;
        root /var/www/both;
        if ($scheme != "https") {
            return 301 https://$host$request_uri;
        }
        location ~ \\.php$ { fastcgi_pass unix:/run/php/both.sock; }
    }
    server {
        listen 80;
        server_name plain.test;
        root /var/www/plain;
        if ($http_user_agent ~ bot) { return 403; }
    }
}
"""
    servers = ev.nginx_servers(fe.parse_nginx(dump))
    both, plain = ws.build_sites(servers, [], (), "nginx", realpath=same)
    assert both["vhosts"][0]["redirect"] == "http" and (both["port"], both["scheme"]) == (443, "https")
    assert plain["vhosts"][0]["redirect"] is False and (plain["port"], plain["scheme"]) == (80, "http")


def test_collect_gives_the_site_map_probes_and_compatibility_keys(tmp_path, monkeypatch, server):
    ok, broken = wp_tree(tmp_path / "ok"), wp_tree(tmp_path / "broken")
    (tmp_path / "html").mkdir()
    servers = [{"kind": "nginx", "names": ["_"], "root": str(tmp_path / "html"), "listen": [f"{server} default_server"],
                "upstreams": []},
               {"kind": "nginx", "names": ["ok.test"], "root": str(ok), "listen": [str(server)],
                "upstreams": ["unix:/run/php/ok.sock"]},
               {"kind": "nginx", "names": ["broken.test"], "root": str(broken), "listen": [str(server)],
                "upstreams": ["127.0.0.1:9001"]}]
    pools = [{"name": "ok", "listen": "/run/php/ok.sock", "service": "php8.2-fpm"},
             {"name": "b", "listen": "9001", "service": "php8.2-fpm"}]
    c = collector(monkeypatch)
    c.probe_enabled = True
    monkeypatch.setattr(c, "fpm", lambda *a: {"versions": [], "services": [], "pools": pools, "logs": [], "masters": []})
    monkeypatch.setattr(c, "frontend", lambda: {"kind": "nginx", "servers": servers, "errors": [], "upstreams": []})
    evidence = c.collect()
    assert [s["id"] for s in evidence["sites"]] == ["ok.test", "broken.test"]
    assert evidence["frontend"]["not_wordpress"] == [{"id": str(tmp_path / "html"), "docroot": str(tmp_path / "html"),
                                                      "names": ["_"]}]
    assert {k: v for k, v in evidence["probe"].items() if k in ("sites", "probed", "skipped")} == \
        {"sites": 2, "probed": 2, "skipped": []}
    ok_site, broken_site = evidence["sites"]
    assert ok_site["http"]["origin_healthy"] is True and broken_site["http"]["origin_healthy"] is False
    assert (ok_site["pools"], broken_site["pools"]) == (["ok"], ["b"])
    assert ok_site["failing"] is False and broken_site["failing"] is True
    assert evidence["http"] is broken_site["http"]  # the worst site's, for one-site readers
    assert [w["path"] for w in evidence["wordpress"]] == [str(ok), str(broken)]
    assert set(evidence["host"]["database"]) == {"service", "active", "socket", "socket_exists"}
    assert evidence["verdict"] and evidence["top_cause"] == evidence["verdict"][0]["cause"]
    assert "sekret" not in repr(evidence)


def test_a_wp_content_dir_known_only_to_php_proves_nothing_outside_core(tmp_path, monkeypatch):
    root = wp_tree(tmp_path / "bedrock", config="define('WP_CONTENT_DIR', getenv('CONTENT_DIR'));\n")
    c = collector(monkeypatch, db={"reachable": True, "active_plugins": ["active/active.php"],
                                   "themes": {"template": "parent", "stylesheet": "child"}})
    (site,), _front = read_sites(c, [{"kind": "nginx", "names": ["b.test"], "root": str(root), "listen": ["80"]}])
    wp = site["wordpress"]
    assert wp["content_dir_resolved"] is False and wp["bom_files"] == ["wp-includes/load.php"]
    assert "wp-content/plugins/active/active.php" in wp["bom_files_unproven"] and wp["bom_files_inactive"] == []
    assert any("only known when PHP runs" in e for e in c.errors)


def test_the_bom_module_reaches_a_wp_config_one_level_up_and_nothing_else_there(tmp_path, run_module):
    import wp502_bom
    import wp502_journal

    root = tmp_path / "client1" / "web"
    root.mkdir(parents=True)
    (tmp_path / "client1" / "wp-config.php").write_bytes(BOM)
    (tmp_path / "client1" / "other.php").write_bytes(BOM)
    wp502_journal.Journal("run1", str(tmp_path / "state")).acquire()
    out = run_module(wp502_bom, path=str(root), files=["../wp-config.php", "../other.php"], run_id="run1",
                     state_dir=str(tmp_path / "state"))
    assert out["stripped"] == ["../wp-config.php"] and [s["file"] for s in out["not_stripped"]] == ["../other.php"]
    assert (tmp_path / "client1" / "wp-config.php").read_bytes() == b"<?php\n"
