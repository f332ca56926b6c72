"""wp502_frontend: nginx -T dumps and Apache vhosts, as the front-end really runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
import wp502_frontend as fe

CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "config"


def test_lab_nginx_dump():
    parsed = fe.parse_nginx((CONFIG / "nginx-T-lab.txt").read_text())
    assert parsed["errors"] == []
    (srv,) = parsed["servers"]
    assert srv["server_names"] == ["_"]
    assert srv["root"] == "/var/www/wordpress"
    assert srv["fastcgi_pass"] == ["unix:/run/php/php8.2-fpm.sock"]
    assert srv["fastcgi_read_timeout"] == 15  # the .php location's, not the status page's default
    assert (srv["error_log"], srv["access_log"]) == ("/var/log/nginx/error.log", "/var/log/nginx/access.log")


MULTI = """# configuration file /etc/nginx/nginx.conf:
user www-data;
error_log /var/log/nginx/main-error.log warn;
http {
    fastcgi_read_timeout 300;
    upstream php {
        server unix:/var/run/php/php7.4-fpm.sock;
        server 127.0.0.1:9000 backup;
    }
    include /etc/nginx/conf.d/*.conf;
    include sites-enabled/*;
}

# configuration file /etc/nginx/conf.d/timeouts.conf:
fastcgi_buffer_size 32k;

# configuration file /etc/nginx/sites-enabled/shop:
server {
    listen 443 ssl http2;
    server_name shop.example.com www.shop.example.com;  # shop
    root "/srv/shop/public";
    location ~ \\.php$ {
        fastcgi_pass php;
        fastcgi_read_timeout 2m;
    }
}

# configuration file /etc/nginx/sites-enabled/blog:
server {
    listen 80;
    server_name blog.example.com;
    root /srv/blog;
    error_log /var/log/nginx/blog.error.log;
    location / { try_files $uri $uri/ /index.php?$args; }
    location ~ [^/]\\.php(/|$) { fastcgi_pass 127.0.0.1:9074; }
}
"""


def test_includes_upstream_groups_inheritance_and_quotes():
    parsed = fe.parse_nginx(MULTI)
    shop, blog = parsed["servers"]
    assert shop["server_names"] == ["shop.example.com", "www.shop.example.com"]
    assert shop["root"] == "/srv/shop/public"
    assert shop["fastcgi_pass"] == ["127.0.0.1:9000", "unix:/var/run/php/php7.4-fpm.sock"]
    assert shop["fastcgi_read_timeout"] == 120
    assert shop["fastcgi_buffer_size"] == "32k"
    assert shop["error_log"] == "/var/log/nginx/main-error.log"  # inherited from the main context
    assert blog["fastcgi_pass"] == ["127.0.0.1:9074"]
    assert blog["fastcgi_read_timeout"] == 300  # http level
    assert blog["error_log"] == "/var/log/nginx/blog.error.log"
    assert parsed["upstreams"]["php"] == ["unix:/var/run/php/php7.4-fpm.sock", "127.0.0.1:9000"]


def test_not_a_dump():
    assert fe.parse_nginx("server { }")["errors"]


@pytest.mark.parametrize(("value", "seconds"), [("60", 60), ("60s", 60), ("2m", 120), ("500ms", 0.5), ("x", None)])
def test_nginx_time(value, seconds):
    assert fe.nginx_time(value) == seconds


def test_lab_apache_vhost_with_debian_envvars():
    envvars = fe.parse_envvars((CONFIG / "apache-envvars.txt").read_text())
    assert envvars["APACHE_LOG_DIR"] == "/var/log/apache2"
    parsed = fe.parse_apache([("wordpress.conf", (CONFIG / "apache-wordpress.conf").read_text())])
    (vh,) = parsed["vhosts"]
    assert vh["document_root"] == "/var/www/wordpress"
    assert vh["php_backends"] == ["unix:/run/php/php8.2-fpm.sock"]
    assert vh["effective_proxy_timeout"] == 15.0
    assert fe.expand_apache_vars(vh["error_log"], envvars) == "/var/log/apache2/error.log"


def test_apache_proxypassmatch_and_global_timeout():
    conf = """Timeout 300
<VirtualHost *:443>
    ServerName www.example.com
    ServerAlias example.com
    DocumentRoot "/var/www/example"
    # ProxyPassMatch ^/(.*\\.php)$ fcgi://127.0.0.1:9999/var/www/example/$1
    ProxyPassMatch ^/(.*\\.php(/.*)?)$ fcgi://127.0.0.1:9000/var/www/example/$1
    CustomLog "/var/log/httpd/example-access.log" combined
</VirtualHost>
"""
    (vh,) = fe.parse_apache([("example.conf", conf)])["vhosts"]
    assert vh["server_names"] == ["www.example.com", "example.com"]
    assert vh["php_backends"] == ["127.0.0.1:9000"]
    assert vh["effective_proxy_timeout"] == 300.0
    assert vh["access_log"] == "/var/log/httpd/example-access.log"


# --- the lexer wp502_edit uses too: nginx's own rules ------------------------------------------

ODD = (
    "# configuration file /etc/nginx/nginx.conf:\n"
    "http {\n"
    "    fastcgi_read_timeout 30s;\n"
    "    include /etc/nginx/sites-enabled/*;\n"
    "}\n"
    "# configuration file /etc/nginx/sites-enabled/wordpress:\n"
    "server {\r\n"
    "    server_name blog.example.com;\r\n"
    "    root /srv/www/${host}_live;\r\n"
    "    if ($request_method = \"TRACE\") { return 405; }\r\n"
    "    location ~ \\.php$ {\r\n"
    "        include snippets/wp502-php.conf;\r\n"
    "        fastcgi_param SCRIPT_FILENAME ${document_root}$fastcgi_script_name;\r\n"
    "        fastcgi_read_timeout 120s;\r\n"
    "    }\r\n"
    "}\r\n"
    "# configuration file /etc/nginx/snippets/wp502-php.conf:\n"
    "fastcgi_pass unix:/run/php/php8.2-fpm.sock; # the pool\n"
    "fastcgi_buffer_size 32k;\n"
)


def test_variables_in_braces_if_blocks_nested_includes_and_crlf():
    # The old lexer opened a block at "${": the root read "/srv/www/$" and "_live" became a statement of its own.
    parsed = fe.parse_nginx(ODD)
    assert parsed["errors"] == []
    (server,) = parsed["servers"]
    assert server["server_names"] == ["blog.example.com"] and server["root"] == "/srv/www/${host}_live"
    assert server["fastcgi_pass"] == ["unix:/run/php/php8.2-fpm.sock"]  # from the snippet included in the location
    (php,) = server["php_locations"]
    assert php["match"] == "~ \\.php$" and php["fastcgi_buffer_size"] == "32k"
    assert server["fastcgi_read_timeout"] == 120


def test_fastcgi_files_are_the_files_the_rung_edits():
    assert fe.nginx_fastcgi_files(ODD) == ["/etc/nginx/snippets/wp502-php.conf"]
    assert fe.nginx_fastcgi_files(ODD.replace("fastcgi_pass", "# fastcgi_pass")) == []


def test_a_file_nginx_could_not_read_is_an_error_not_a_guess():
    parsed = fe.parse_nginx("# configuration file /etc/nginx/nginx.conf:\nhttp { server { listen 80; }\n")
    assert parsed["servers"] == [] and "expecting \"}\"" in parsed["errors"][0]


def test_apache_continuation_lines_and_crlf_as_httpd_reads_them():
    # The old reader took each physical line alone: the backend on the continuation line was never seen.
    conf = ("<VirtualHost *:80>\r\n    ServerName wp.example\r\n    ProxyPassMatch ^/(.*\\.php(/.*)?)$ \\\r\n"
            "        fcgi://127.0.0.1:9000/var/www/wp/$1\r\n    ProxyTimeout \\\r\n        90\r\n</VirtualHost>\r\n")
    (vh,) = fe.parse_apache([("wp.conf", conf)])["vhosts"]
    assert vh["server_names"] == ["wp.example"]
    assert vh["php_backends"] == ["127.0.0.1:9000"] and vh["effective_proxy_timeout"] == 90.0


NESTED = (
    "# configuration file /etc/nginx/nginx.conf:\n"
    "http {\n"
    "    server {\n"
    "        server_name shop.example.com;\n"
    "        location / {\n"
    "            try_files $uri /index.php?$args;\n"
    "            location ~ ^/wp-admin/.+\\.php$ {\n"
    "                fastcgi_pass 127.0.0.1:9001;\n"
    "            }\n"
    "        }\n"
    "        location ~ \\.php$ {\n"
    "            if (-f $request_filename) {\n"
    "                fastcgi_pass unix:/run/php/shop.sock;\n"
    "            }\n"
    "        }\n"
    "        # written after the locations, inherited by them all the same\n"
    "        fastcgi_read_timeout 90s;\n"
    "    }\n"
    "}\n"
)


def test_fastcgi_passed_from_nested_locations_and_if_blocks_with_server_settings_inherited():
    # The editor changes every block that passes to FastCGI; the reader must see the same blocks.
    (server,) = fe.parse_nginx(NESTED)["servers"]
    assert server["fastcgi_pass"] == ["127.0.0.1:9001", "unix:/run/php/shop.sock"]
    assert [loc["match"] for loc in server["php_locations"]] == ["~ ^/wp-admin/.+\\.php$", "~ \\.php$ if (-f $request_filename)"]
    assert {loc["fastcgi_read_timeout"] for loc in server["php_locations"]} == {90}
    assert fe.nginx_fastcgi_files(NESTED) == ["/etc/nginx/nginx.conf"]
