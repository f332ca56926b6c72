"""Reading (the evidence: wp502_fpm, wp502_frontend) and editing (the rungs: wp502_edit) use one lexer per
format, so they agree about every file: what the evidence reads is what the editor finds and replaces."""

from __future__ import annotations

from pathlib import Path

import pytest
import wp502_edit as edit
import wp502_fpm as fpm
import wp502_frontend as fe

CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "config"

POOLS = [
    "[www] ; main site\nlisten = /run/php/php8.2-fpm.sock ; nginx\npm = dynamic\npm.max_children = 5\n",
    "[www]\r\nlisten = [::]:9000\r\npm.max_children = \"12\" ; quoted\r\nslowlog = '/var/log/$pool.slow'\r\n",
    "[global]\npid = /run/x.pid\n[www]\nlisten = 9000\n[WWW]\npm.max_children = 7 ; the same pool, again\n",
    "[www]\nenv[PATH] = \"/usr/bin\"  \":/bin\"\naccess.format = \"%R - %u %t\" ; spaces\ncatch_workers_output = yes\n",
]


@pytest.mark.parametrize("text", POOLS)
def test_the_editor_finds_every_value_the_evidence_reads(text):
    conf = fpm.parse_fpm_config("/pool.conf", read=lambda path: text, expand=lambda pattern: [])
    assert conf["errors"] == []
    (name,) = conf["pools"]
    read = {k: v for k, v in conf["pools"][name].items() if k != "__source__" and "$pool" not in text.split(k)[-1][:40]}
    # the values as read are the values as the editor sees them: setting them again changes nothing
    assert edit.set_fpm_pool(text, name, read) == (text, [])
    # and a change starts from exactly the value the evidence read
    _text, changes = edit.set_fpm_pool(text, name, {key: "changed" for key in read})
    assert {c["key"]: c["before"] for c in changes} == read


@pytest.mark.parametrize("line", ["# a comment?", "listen = \"/run/php.sock", "pm.max_children"])
def test_a_line_php_fpm_refuses_is_refused_by_both(line):
    text = f"[www]\nlisten = /run/php.sock\n{line}\n"
    conf = fpm.parse_fpm_config("/pool.conf", read=lambda path: text, expand=lambda pattern: [])
    with pytest.raises(ValueError, match="line 3"):
        edit.set_fpm_pool(text, "www", {"pm.max_children": 9})
    assert conf["errors"] and conf["errors"][0].startswith("/pool.conf:3:")


ODD_SITE = ("server {\r\n    server_name odd.example;\r\n    root /srv/${host}_live;\r\n"
            "    if ($request_method = \"TRACE\") { return 405; }\r\n"
            "    location ~ \\.php$ {\r\n"
            "        fastcgi_param SCRIPT_FILENAME ${document_root}$fastcgi_script_name;\r\n"
            "        fastcgi_pass unix:/run/php/php8.2-fpm.sock; # the pool\r\n        fastcgi_read_timeout 45s;\r\n    }\r\n"
            "    location ^~ /wp-admin/ { fastcgi_pass \"unix:/run/php/admin.sock\"; }\r\n}\r\n")
DUMPS = {
    "lab": (CONFIG / "nginx-T-lab.txt").read_text(),
    "odd": "# configuration file /etc/nginx/nginx.conf:\nhttp {\n    fastcgi_read_timeout 30s;\n"
           "    include /etc/nginx/sites-enabled/*;\n}\n# configuration file /etc/nginx/sites-enabled/odd:\n" + ODD_SITE,
}


@pytest.mark.parametrize("dump", DUMPS.values(), ids=DUMPS.keys())
def test_nginx_the_rung_edits_the_blocks_the_evidence_reads(dump):
    parsed = fe.parse_nginx(dump)
    assert parsed["errors"] == []
    read = sorted(loc["fastcgi_read_timeout"] for srv in parsed["servers"] for loc in srv["php_locations"])
    inherited = fe.nginx_time(parsed["http"].get("fastcgi_read_timeout"), 60.0)
    edited = []
    for fname in fe.nginx_fastcgi_files(dump):
        text = dict(fe.split_nginx_dump(dump))[fname]
        _text, changes = edit.set_nginx_directives(text, {"fastcgi_read_timeout": "999s"})
        edited.extend(fe.nginx_time(c["before"]) if c["before"] else inherited for c in changes)
    # one change per PHP location the evidence reads, each starting from the timeout the evidence reports
    assert read and sorted(edited) == read


def test_nginx_files_the_editor_finds_nothing_in_are_not_listed():
    for fname, text in fe.split_nginx_dump(DUMPS["lab"]):
        changed = edit.set_nginx_directives(text, {"fastcgi_read_timeout": "999s"})[1]
        assert bool(changed) == (fname in fe.nginx_fastcgi_files(DUMPS["lab"])), fname


APACHE = [
    (CONFIG / "apache-wordpress.conf").read_text(),
    "<VirtualHost *:80>\r\n    ServerName a.example\r\n    ProxyTimeout \\\r\n        90\r\n</VirtualHost>\r\n"
    "<VirtualHost *:443>\r\n    ServerName b.example\r\n    # ProxyTimeout 5\r\n</VirtualHost>\r\n",
]


@pytest.mark.parametrize("text", APACHE)
def test_apache_the_rung_edits_the_vhosts_the_evidence_reads(text):
    vhosts = fe.parse_apache([("site.conf", text)])["vhosts"]
    _text, changes = edit.set_apache_directives(text, {"ProxyTimeout": "999"})
    assert [c["vhost"] for c in changes] == [vh["address"] for vh in vhosts]
    assert [c["before"] for c in changes] == [vh["proxy_timeout"] for vh in vhosts]
