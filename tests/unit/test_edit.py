"""wp502_edit: minimal edits of FPM, nginx and Apache configs that keep every other byte."""

from __future__ import annotations

import pytest
import wp502_edit as edit

# --- PHP-FPM ----------------------------------------------------------------------------------

WWW = """\
; Start a new pool named 'www'.
; the variable $pool can be used in any directive and will be replaced by the
; pool name ('www' here)
[www]

; Unix user/group of processes
user = www-data
group = www-data

; The address on which to accept FastCGI requests.
listen = /run/php/php8.2-fpm.sock
listen.owner = www-data
listen.group = www-data

; Choose how the process manager will control the number of child processes.
pm = dynamic

; The number of child processes to be created when pm is set to 'static' and the
; maximum number of child processes when pm is set to 'dynamic' or 'ondemand'.
pm.max_children = 5

; The number of child processes created on startup.
pm.start_servers = 2
pm.min_spare_servers = 1
pm.max_spare_servers = 3

; The number of requests each child process should execute before respawning.
;pm.max_requests = 500

"""


def test_fpm_replaces_values_in_place():
    text, changes = edit.set_fpm_pool(WWW, "www", {"pm.max_children": 20, "pm.start_servers": 5})
    assert text == WWW.replace("pm.max_children = 5\n", "pm.max_children = 20\n").replace(
        "pm.start_servers = 2\n", "pm.start_servers = 5\n")
    assert changes == [
        {"key": "pm.max_children", "before": "5", "after": "20"},
        {"key": "pm.start_servers", "before": "2", "after": "5"},
    ]


def test_fpm_appends_missing_directives_after_the_last_non_blank_line():
    text, changes = edit.set_fpm_pool(WWW, "www", {
        "pm.max_children": 20,
        "request_terminate_timeout": "60s",
        "pm.max_requests": 500,
        "listen.backlog": 511,
    })
    assert text == WWW.replace("pm.max_children = 5\n", "pm.max_children = 20\n").replace(
        ";pm.max_requests = 500\n",
        ";pm.max_requests = 500\n"
        "; wp502 emergency run\n"
        "request_terminate_timeout = 60s\n"
        "pm.max_requests = 500\n"
        "listen.backlog = 511\n")
    assert text.endswith("listen.backlog = 511\n\n")
    assert changes == [
        {"key": "pm.max_children", "before": "5", "after": "20"},
        {"key": "request_terminate_timeout", "before": None, "after": "60s"},
        {"key": "pm.max_requests", "before": None, "after": "500"},
        {"key": "listen.backlog", "before": None, "after": "511"},
    ]


def test_fpm_second_run_changes_nothing():
    settings = {"pm.max_children": 20, "request_terminate_timeout": "60s", "listen.backlog": 511}
    once, _changes = edit.set_fpm_pool(WWW, "www", settings)
    twice, changes = edit.set_fpm_pool(once, "www", settings)
    assert twice == once
    assert changes == []
    assert once.count("; wp502 emergency run") == 1


def test_fpm_equal_values_are_not_changes():
    text, changes = edit.set_fpm_pool(WWW, "www", {"pm": "dynamic", "pm.max_children": "  5 ", "pm.max_spare_servers": 3})
    assert text == WWW
    assert changes == []


def test_fpm_last_occurrence_wins_and_is_the_one_replaced():
    src = """\
[www]
pm.max_children = 5
pm = dynamic
pm.max_children = 8
"""
    text, changes = edit.set_fpm_pool(src, "www", {"pm.max_children": 20})
    assert text == """\
[www]
pm.max_children = 5
pm = dynamic
pm.max_children = 20
"""
    assert changes == [{"key": "pm.max_children", "before": "8", "after": "20"}]


def test_fpm_keeps_spacing_quotes_and_inline_comments():
    src = """\
[www]
pm.max_children=5
pm.start_servers    =   2   ; tuned 2023-04
request_terminate_timeout = "30s"
slowlog = '/var/log/php/$pool.slow.log' ; single quotes
"""
    text, changes = edit.set_fpm_pool(src, "www", {
        "pm.max_children": 20,
        "pm.start_servers": 5,
        "request_terminate_timeout": "60s",
        "slowlog": "/var/log/php/www.slow.log",
    })
    assert text == """\
[www]
pm.max_children=20
pm.start_servers    =   5   ; tuned 2023-04
request_terminate_timeout = "60s"
slowlog = '/var/log/php/www.slow.log' ; single quotes
"""
    assert changes == [
        {"key": "pm.max_children", "before": "5", "after": "20"},
        {"key": "pm.start_servers", "before": "2", "after": "5"},
        {"key": "request_terminate_timeout", "before": "30s", "after": "60s"},
        {"key": "slowlog", "before": "/var/log/php/$pool.slow.log", "after": "/var/log/php/www.slow.log"},
    ]


def test_fpm_quoted_value_compares_unquoted():
    src = '[www]\nrequest_terminate_timeout = "60s"\n'
    assert edit.set_fpm_pool(src, "www", {"request_terminate_timeout": "60s"}) == (src, [])


def test_fpm_commented_directives_are_left_alone():
    src = """\
[www]
;pm.max_children = 50
  ; pm.max_children = 30
pm = ondemand
"""
    text, changes = edit.set_fpm_pool(src, "www", {"pm.max_children": 20})
    assert text == src + "; wp502 emergency run\npm.max_children = 20\n"
    assert changes == [{"key": "pm.max_children", "before": None, "after": "20"}]


@pytest.mark.parametrize(("line", "why"), [
    ("# pm.max_children = 40", "'#' does not start a comment"),  # php-fpm 8.2: unknown entry '# pm.max_children'
    ("# a note", "'#' does not start a comment"),  # php-fpm 8.2: value is NULL
    ("pm.max_children", "pm.max_children has no '='"),
    ('listen = "/run/php.sock', "unterminated double quote"),
    ("php_value[x] = a=b", "'=' inside a value"),
    ("[www] extra", "text after the section header"),
])
def test_fpm_lines_php_fpm_refuses_are_not_edited_at_a_guess(line, why):
    with pytest.raises(ValueError, match="line 2: " + why):
        edit.set_fpm_pool(f"[www]\n{line}\npm = dynamic\n", "www", {"pm.max_children": 20})


def test_fpm_section_header_with_a_comment_is_the_pool():
    # The old section pattern wanted nothing after "]" but a comment of its own kind: "[www] ; main site" was no
    # section at all, so the pool vanished ("no [www] section").
    src = "[www] ; main site\nlisten = /run/php/php8.2-fpm.sock ; the socket nginx uses\npm.max_children = 5 ; small\n"
    text, changes = edit.set_fpm_pool(src, "www", {"pm.max_children": 20, "listen": "/run/php/php8.2-fpm.sock"})
    assert text == src.replace("= 5 ;", "= 20 ;")
    assert changes == [{"key": "pm.max_children", "before": "5", "after": "20"}]


def test_fpm_values_as_php_reads_them():
    src = ('[www]\nlisten = [::]:9000\nenv[GREETING] = "a"  "b" ; two strings\naccess.format = "%R \\"%r\\""\n'
           "catch_workers_output = yes\n")
    # "[::]:9000" is one word, not a section; adjacent strings join; \" is a quote; yes is on
    assert edit.set_fpm_pool(src, "www", {"listen": "[::]:9000", "env[GREETING]": "ab", "access.format": '%R "%r"'.replace('"', "'"),
                                          "catch_workers_output": "yes"})[1] == [
        {"key": "access.format", "before": '%R "%r"', "after": "%R '%r'"}]
    text, changes = edit.set_fpm_pool(src, "www", {"listen": "127.0.0.1:9000"})
    assert text == src.replace("[::]:9000", "127.0.0.1:9000") and changes[0]["before"] == "[::]:9000"


def test_fpm_crlf_section_comment_and_quoted_value():
    src = '[www] ; main\r\nlisten = "/run/php/a.sock" ; q\r\npm.max_children = 5\r\n'
    text, changes = edit.set_fpm_pool(src, "www", {"listen": "/run/php/b.sock", "pm.max_requests": 500})
    assert text == ('[www] ; main\r\nlisten = "/run/php/b.sock" ; q\r\npm.max_children = 5\r\n'
                    "; wp502 emergency run\r\npm.max_requests = 500\r\n")
    assert changes[0] == {"key": "listen", "before": "/run/php/a.sock", "after": "/run/php/b.sock"}


SEVERAL = """\
[global]
pid = /run/php/php8.2-fpm.pid

; WordPress front end
[www]
user = www-data
listen = /run/php/php8.2-fpm.sock
pm.max_children = 5


; The API pool, on its own socket
[api]
user = api
listen = /run/php/api.sock
pm.max_children = 3

[cron]
pm = ondemand
pm.max_children = 2
"""


def test_fpm_several_pools_only_the_named_one_changes():
    text, changes = edit.set_fpm_pool(SEVERAL, "api", {"pm.max_children": 12, "listen.backlog": 1024})
    assert text == SEVERAL.replace(
        "listen = /run/php/api.sock\npm.max_children = 3\n",
        "listen = /run/php/api.sock\npm.max_children = 12\n; wp502 emergency run\nlisten.backlog = 1024\n")
    assert changes == [
        {"key": "pm.max_children", "before": "3", "after": "12"},
        {"key": "listen.backlog", "before": None, "after": "1024"},
    ]


def test_fpm_append_stops_before_blank_lines_and_the_next_sections_comment():
    text, _changes = edit.set_fpm_pool(SEVERAL, "www", {"request_terminate_timeout": "60s"})
    assert text == SEVERAL.replace(
        "pm.max_children = 5\n\n\n; The API pool",
        "pm.max_children = 5\n; wp502 emergency run\nrequest_terminate_timeout = 60s\n\n\n; The API pool")


def test_fpm_last_section_of_the_file():
    text, _changes = edit.set_fpm_pool(SEVERAL, "cron", {"pm.process_idle_timeout": "10s"})
    assert text == SEVERAL + "; wp502 emergency run\npm.process_idle_timeout = 10s\n"


def test_fpm_comment_directly_above_next_header_belongs_to_it():
    src = """\
[www]
pm = dynamic
; second pool
[api]
pm = static
"""
    text, _changes = edit.set_fpm_pool(src, "www", {"pm.max_children": 8})
    assert text == """\
[www]
pm = dynamic
; wp502 emergency run
pm.max_children = 8
; second pool
[api]
pm = static
"""


def test_fpm_repeated_section_is_one_pool():
    src = """\
[www]
pm.max_children = 5
pm = dynamic

[other]
pm.max_children = 1

[www]
pm.start_servers = 2
"""
    text, changes = edit.set_fpm_pool(src, "www", {"pm.max_children": 20, "pm.start_servers": 4, "listen.backlog": 511})
    assert text == """\
[www]
pm.max_children = 20
pm = dynamic

[other]
pm.max_children = 1

[www]
pm.start_servers = 4
; wp502 emergency run
listen.backlog = 511
"""
    assert [c["key"] for c in changes] == ["pm.max_children", "pm.start_servers", "listen.backlog"]


def test_fpm_empty_section_gets_directives_after_its_header():
    src = "[www]\n\n[api]\npm = static\n"
    text, _changes = edit.set_fpm_pool(src, "www", {"pm.max_children": 4})
    assert text == "[www]\n; wp502 emergency run\npm.max_children = 4\n\n[api]\npm = static\n"


def test_fpm_crlf_and_tab_indentation_are_kept():
    src = "\r\n".join([
        "[www]",
        "\tuser = www-data",
        "\tpm.max_children = 5 ; low",
        "\t;pm.max_requests = 500",
        "",
        "",
    ])
    text, _changes = edit.set_fpm_pool(src, "www", {"pm.max_children": 20, "pm.max_requests": 500})
    assert text == "\r\n".join([
        "[www]",
        "\tuser = www-data",
        "\tpm.max_children = 20 ; low",
        "\t;pm.max_requests = 500",
        "\t; wp502 emergency run",
        "\tpm.max_requests = 500",
        "",
        "",
    ])


def test_fpm_no_final_newline_stays_without_one():
    src = "[www]\npm = dynamic\npm.max_children = 5"
    text, _changes = edit.set_fpm_pool(src, "www", {"pm.max_children": 6, "pm.start_servers": 2})
    assert text == "[www]\npm = dynamic\npm.max_children = 6\n; wp502 emergency run\npm.start_servers = 2"


def test_fpm_names_are_case_insensitive_like_fpm():
    src = "[WWW]\nPM.Max_Children = 5\n"
    text, changes = edit.set_fpm_pool(src, "www", {"pm.max_children": 9})
    assert text == "[WWW]\nPM.Max_Children = 9\n"
    assert changes == [{"key": "pm.max_children", "before": "5", "after": "9"}]


def test_fpm_array_directives():
    src = """\
[www]
php_admin_value[memory_limit] = 128M
php_admin_value[error_log] = /var/log/fpm-php.www.log
php_admin_flag[log_errors] = on
"""
    text, changes = edit.set_fpm_pool(src, "www", {
        "php_admin_value[memory_limit]": "256M",
        "php_admin_value[max_execution_time]": 60,
    })
    assert text == """\
[www]
php_admin_value[memory_limit] = 256M
php_admin_value[error_log] = /var/log/fpm-php.www.log
php_admin_flag[log_errors] = on
; wp502 emergency run
php_admin_value[max_execution_time] = 60
"""
    assert [c["before"] for c in changes] == ["128M", None]


def test_fpm_values_that_need_quotes_get_them():
    settings = {"php_admin_value[disable_functions]": "exec;system", "env[GREETING]": "a=b"}
    text, _changes = edit.set_fpm_pool("[www]\npm = static\n", "www", settings)
    assert text == '[www]\npm = static\n; wp502 emergency run\nphp_admin_value[disable_functions] = "exec;system"\nenv[GREETING] = "a=b"\n'


def test_fpm_empty_value_gets_a_space():
    text, _changes = edit.set_fpm_pool("[www]\nlisten.backlog =\n", "www", {"listen.backlog": 511})
    assert text == "[www]\nlisten.backlog = 511\n"


def test_fpm_settings_as_pairs():
    text, changes = edit.set_fpm_pool(WWW, "www", [("pm.max_children", 7)])
    assert "pm.max_children = 7\n" in text
    assert changes == [{"key": "pm.max_children", "before": "5", "after": "7"}]


def test_fpm_missing_pool_is_an_error():
    with pytest.raises(ValueError, match=r"no \[api\] section"):
        edit.set_fpm_pool(WWW, "api", {"pm.max_children": 20})


@pytest.mark.parametrize(("settings", "message"), [
    ({"pm.max_children": "5\n[evil]"}, "line break"),
    ({"pm.max_children": ""}, "empty value"),
    ({"pm.max_children": None}, "no value"),
    ({"pm max_children": 5}, "invalid directive name"),
    ({"slowlog": 'a"b'}, "double quote"),
])
def test_fpm_refuses_values_that_would_break_the_file(settings, message):
    with pytest.raises(ValueError, match=message):
        edit.set_fpm_pool(WWW, "www", settings)


# --- nginx ------------------------------------------------------------------------------------

VHOST = """\
server {
    listen 80 default_server;
    root /var/www/wordpress;
    location = /fpm-status {
        allow 127.0.0.1;
        include fastcgi_params;
        fastcgi_pass unix:/run/php/php8.2-fpm.sock;
    }
    location ~ \\.php$ {
        include snippets/fastcgi-php.conf;
        fastcgi_pass unix:/run/php/php8.2-fpm.sock;
        # The lab answers timeouts in seconds rather than nginx's 60 s default.
        fastcgi_read_timeout 15s;
    }
}
"""


def test_nginx_read_timeout_replaced_and_inserted():
    text, changes = edit.set_nginx_directives(VHOST, {"fastcgi_read_timeout": "120s"})
    assert text == """\
server {
    listen 80 default_server;
    root /var/www/wordpress;
    location = /fpm-status {
        allow 127.0.0.1;
        include fastcgi_params;
        fastcgi_pass unix:/run/php/php8.2-fpm.sock;
        fastcgi_read_timeout 120s;
    }
    location ~ \\.php$ {
        include snippets/fastcgi-php.conf;
        fastcgi_pass unix:/run/php/php8.2-fpm.sock;
        # The lab answers timeouts in seconds rather than nginx's 60 s default.
        fastcgi_read_timeout 120s;
    }
}
"""
    assert changes == [
        {"block_line": 7, "key": "fastcgi_read_timeout", "before": None, "after": "120s"},
        {"block_line": 11, "key": "fastcgi_read_timeout", "before": "15s", "after": "120s"},
    ]


def test_nginx_buffers_inserted_in_settings_order():
    settings = {"fastcgi_buffer_size": "32k", "fastcgi_buffers": "16 32k", "fastcgi_busy_buffers_size": "64k"}
    text, changes = edit.set_nginx_directives(VHOST, settings)
    assert text == VHOST.replace(
        "        fastcgi_pass unix:/run/php/php8.2-fpm.sock;\n",
        "        fastcgi_pass unix:/run/php/php8.2-fpm.sock;\n"
        "        fastcgi_buffer_size 32k;\n"
        "        fastcgi_buffers 16 32k;\n"
        "        fastcgi_busy_buffers_size 64k;\n")
    assert text.count("fastcgi_buffers 16 32k;") == 2
    assert [(c["block_line"], c["key"]) for c in changes] == [
        (7, "fastcgi_buffer_size"), (7, "fastcgi_buffers"), (7, "fastcgi_busy_buffers_size"),
        (11, "fastcgi_buffer_size"), (11, "fastcgi_buffers"), (11, "fastcgi_busy_buffers_size"),
    ]


def test_nginx_second_run_changes_nothing():
    settings = {"fastcgi_read_timeout": "120s", "fastcgi_buffers": "16 32k"}
    once, _changes = edit.set_nginx_directives(VHOST, settings)
    assert edit.set_nginx_directives(once, settings) == (once, [])


def test_nginx_equal_values_compare_by_words():
    src = "location ~ \\.php$ {\n    fastcgi_pass php;\n    fastcgi_buffers   16\t32k;\n    fastcgi_read_timeout \"60s\";\n}\n"
    assert edit.set_nginx_directives(src, {"fastcgi_buffers": "16 32k", "fastcgi_read_timeout": "60s"}) == (src, [])


def test_nginx_no_match_is_unchanged():
    src = """\
server {
    listen 80;
    # fastcgi_pass unix:/run/php/php8.2-fpm.sock;
    location / {
        proxy_pass http://127.0.0.1:8080;
        proxy_read_timeout 60s;
    }
}
"""
    assert edit.set_nginx_directives(src, {"fastcgi_read_timeout": "120s"}) == (src, [])
    assert edit.set_nginx_directives("", {"fastcgi_read_timeout": "120s"}) == ("", [])


def test_nginx_quotes_with_hash_and_braces():
    src = """\
server {
    server_name example.org;
    location ~ "\\.php(/|$)" {
        add_header X-Note "closing } here; and # not a comment" always;
        if ($request_uri ~ "^/(#|%23)") { return 404; }
        fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
        fastcgi_pass unix:/run/php/php8.2-fpm.sock;   # main pool
        fastcgi_param SCRIPT_FILENAME ${document_root}$fastcgi_script_name;
    }
    location ~ '^/x{2}' { return 200 'a { b'; }
}
"""
    text, changes = edit.set_nginx_directives(src, {"fastcgi_read_timeout": "120s"})
    assert text == src.replace(
        "php8.2-fpm.sock;   # main pool\n",
        "php8.2-fpm.sock;   # main pool\n        fastcgi_read_timeout 120s;\n")
    assert changes == [{"block_line": 7, "key": "fastcgi_read_timeout", "before": None, "after": "120s"}]


def test_nginx_comments_and_nested_blocks_are_not_the_block():
    src = """\
server {
    fastcgi_read_timeout 300s;
    location ~ \\.php$ {
        # fastcgi_read_timeout 30s;
        #fastcgi_read_timeout 31s;
        if ($arg_debug) {
            fastcgi_read_timeout 5s;
        }
        fastcgi_pass 127.0.0.1:9000;
    }
}
"""
    text, changes = edit.set_nginx_directives(src, {"fastcgi_read_timeout": "120s"})
    assert text == src.replace(
        "        fastcgi_pass 127.0.0.1:9000;\n",
        "        fastcgi_pass 127.0.0.1:9000;\n        fastcgi_read_timeout 120s;\n")
    assert changes == [{"block_line": 9, "key": "fastcgi_read_timeout", "before": None, "after": "120s"}]


def test_nginx_nested_block_with_its_own_fastcgi_pass():
    src = """\
location ~ \\.php$ {
    fastcgi_pass php;
    fastcgi_read_timeout 30s;
    location ~ ^/wp-admin/ {
        fastcgi_pass php_admin;
    }
}
"""
    text, changes = edit.set_nginx_directives(src, {"fastcgi_read_timeout": "120s"})
    assert text == """\
location ~ \\.php$ {
    fastcgi_pass php;
    fastcgi_read_timeout 120s;
    location ~ ^/wp-admin/ {
        fastcgi_pass php_admin;
        fastcgi_read_timeout 120s;
    }
}
"""
    assert changes == [
        {"block_line": 2, "key": "fastcgi_read_timeout", "before": "30s", "after": "120s"},
        {"block_line": 5, "key": "fastcgi_read_timeout", "before": None, "after": "120s"},
    ]


def test_nginx_several_servers_tabs_and_crlf():
    src = "\r\n".join([
        "upstream php {",
        "\tserver unix:/run/php/php8.2-fpm.sock;",
        "}",
        "server {",
        "\tlisten 80;",
        "\tlocation ~ \\.php$ {",
        "\t\tinclude fastcgi_params;",
        "\t\tfastcgi_pass php;",
        "\t}",
        "}",
        "server {",
        "\tlisten 443 ssl;",
        "\tlocation ~ \\.php$ {",
        "\t\tfastcgi_pass php;",
        "\t\tfastcgi_read_timeout 60s;",
        "\t}",
        "}",
        "",
    ])
    text, changes = edit.set_nginx_directives(src, {"fastcgi_read_timeout": "120s"})
    assert text == "\r\n".join([
        "upstream php {",
        "\tserver unix:/run/php/php8.2-fpm.sock;",
        "}",
        "server {",
        "\tlisten 80;",
        "\tlocation ~ \\.php$ {",
        "\t\tinclude fastcgi_params;",
        "\t\tfastcgi_pass php;",
        "\t\tfastcgi_read_timeout 120s;",
        "\t}",
        "}",
        "server {",
        "\tlisten 443 ssl;",
        "\tlocation ~ \\.php$ {",
        "\t\tfastcgi_pass php;",
        "\t\tfastcgi_read_timeout 120s;",
        "\t}",
        "}",
        "",
    ])
    assert [(c["block_line"], c["before"]) for c in changes] == [(8, None), (14, "60s")]


def test_nginx_one_line_block_stays_on_its_line():
    src = "server {\n    location ~ \\.php$ { include fastcgi_params; fastcgi_pass php; }\n}\n"
    text, changes = edit.set_nginx_directives(src, {"fastcgi_read_timeout": "120s", "fastcgi_buffers": "16 32k"})
    assert text == ("server {\n    location ~ \\.php$ { include fastcgi_params; fastcgi_pass php;"
                    " fastcgi_read_timeout 120s; fastcgi_buffers 16 32k; }\n}\n")
    assert [c["block_line"] for c in changes] == [2, 2]


def test_nginx_snippet_without_braces_or_final_newline():
    src = "fastcgi_split_path_info ^(.+?\\.php)(/.*)$;\ninclude fastcgi.conf;\nfastcgi_pass php;"
    text, changes = edit.set_nginx_directives(src, {"fastcgi_read_timeout": "120s"})
    assert text == src + "\nfastcgi_read_timeout 120s;"
    assert changes == [{"block_line": 3, "key": "fastcgi_read_timeout", "before": None, "after": "120s"}]


def test_nginx_multi_line_value_is_replaced():
    src = "location / {\n    fastcgi_pass php;\n    fastcgi_buffers 8\n                    16k;  # old\n}\n"
    text, changes = edit.set_nginx_directives(src, {"fastcgi_buffers": "16 32k"})
    assert text == "location / {\n    fastcgi_pass php;\n    fastcgi_buffers 16 32k;  # old\n}\n"
    assert changes == [{"block_line": 2, "key": "fastcgi_buffers", "before": "8 16k", "after": "16 32k"}]


def test_nginx_other_match_directive():
    src = "location / {\n  proxy_pass http://backend;\n  proxy_read_timeout 60;\n}\nlocation ~ \\.php$ {\n  fastcgi_pass php;\n}\n"
    text, changes = edit.set_nginx_directives(src, {"proxy_read_timeout": "120s"}, match="proxy_pass")
    assert text == src.replace("proxy_read_timeout 60;", "proxy_read_timeout 120s;")
    assert changes == [{"block_line": 2, "key": "proxy_read_timeout", "before": "60", "after": "120s"}]


def test_nginx_hash_inside_a_word_is_not_a_comment():
    src = "location / {\n    add_header X-Frag a#b;\n    fastcgi_pass php;\n}\n"
    text, _changes = edit.set_nginx_directives(src, {"fastcgi_read_timeout": "90s"})
    assert text == "location / {\n    add_header X-Frag a#b;\n    fastcgi_pass php;\n    fastcgi_read_timeout 90s;\n}\n"


@pytest.mark.parametrize(("src", "message"), [
    ("server {\n    location / {\n        fastcgi_pass php;\n    }\n", "expecting \"}\""),
    ("server {\n}\n}\n", "unexpected \"}\" on line 3"),
    ("location / {\n    fastcgi_pass php\n}\n", "expecting \";\""),
    ("location / {\n    return 200 \"oops;\n    fastcgi_pass php;\n}\n", "unterminated quoted string starting on line 2"),
    ("location / {\n    fastcgi_pass php;\n    fastcgi_param A \"x\"y;\n}\n", "after a quoted string"),
    ("server {\n    ;\n}\n", "unexpected ';' on line 2"),
])
def test_nginx_unreadable_text_is_an_error(src, message):
    with pytest.raises(ValueError, match=message):
        edit.set_nginx_directives(src, {"fastcgi_read_timeout": "120s"})


@pytest.mark.parametrize(("settings", "message"), [
    ({"fastcgi_read_timeout": "120s; include /tmp/x"}, "contains ;"),
    ({"fastcgi_read_timeout": "1\n2"}, "line break"),
    ({"fastcgi read": "1"}, "invalid directive name"),
    ({"fastcgi_read_timeout": " "}, "empty value"),
])
def test_nginx_refuses_unsafe_values(settings, message):
    with pytest.raises(ValueError, match=message):
        edit.set_nginx_directives(VHOST, settings)


# --- Apache -----------------------------------------------------------------------------------

APACHE = """\
<VirtualHost *:80>
    ServerName example.org
    DocumentRoot /var/www/wordpress
    # ProxyTimeout 300
    <FilesMatch "\\.php$">
        SetHandler "proxy:unix:/run/php/php8.2-fpm.sock|fcgi://localhost"
        ProxyTimeout 5
    </FilesMatch>
    ProxyTimeout 15
    ErrorLog ${APACHE_LOG_DIR}/error.log
</VirtualHost>
"""


def test_apache_replaces_vhost_level_value():
    text, changes = edit.set_apache_directives(APACHE, {"ProxyTimeout": "120"})
    assert text == APACHE.replace("    ProxyTimeout 15\n", "    ProxyTimeout 120\n")
    assert "        ProxyTimeout 5\n" in text
    assert "    # ProxyTimeout 300\n" in text
    assert changes == [{"line": 9, "vhost": "*:80", "key": "ProxyTimeout", "before": "15", "after": "120"}]


def test_apache_inserts_after_the_virtualhost_line():
    text, changes = edit.set_apache_directives(APACHE, {"Timeout": 120, "ProxyTimeout": 120})
    assert text == APACHE.replace(
        "<VirtualHost *:80>\n", "<VirtualHost *:80>\n    Timeout 120\n").replace(
        "    ProxyTimeout 15\n", "    ProxyTimeout 120\n")
    assert changes == [
        {"line": 1, "vhost": "*:80", "key": "Timeout", "before": None, "after": "120"},
        {"line": 9, "vhost": "*:80", "key": "ProxyTimeout", "before": "15", "after": "120"},
    ]


def test_apache_second_run_changes_nothing():
    settings = {"Timeout": 120, "ProxyTimeout": 120}
    once, _changes = edit.set_apache_directives(APACHE, settings)
    assert edit.set_apache_directives(once, settings) == (once, [])


def test_apache_names_are_case_insensitive_and_keep_their_spelling():
    src = "<VirtualHost *:80>\n\tproxytimeout   15\n</VirtualHost>\n"
    text, changes = edit.set_apache_directives(src, {"ProxyTimeout": 60})
    assert text == "<VirtualHost *:80>\n\tproxytimeout   60\n</VirtualHost>\n"
    assert changes == [{"line": 2, "vhost": "*:80", "key": "ProxyTimeout", "before": "15", "after": "60"}]


SSL_SITE = """\
<IfModule mod_ssl.c>
\t<VirtualHost _default_:443>
\t\tServerAdmin webmaster@localhost
\t\t<Directory /var/www/wordpress>
\t\t\tProxyTimeout 10
\t\t</Directory>
\t\t<IfModule mod_proxy.c>
\t\t\tTimeout 30
\t\t</IfModule>
\t\tSSLEngine on
\t</VirtualHost>
\t<VirtualHost 192.0.2.10:443>
\t\tProxyTimeout 15
\t</VirtualHost>
</IfModule>
"""


def test_apache_every_vhost_even_inside_ifmodule():
    text, changes = edit.set_apache_directives(SSL_SITE, {"ProxyTimeout": 120, "Timeout": 120})
    assert text == """\
<IfModule mod_ssl.c>
\t<VirtualHost _default_:443>
\t\tProxyTimeout 120
\t\tTimeout 120
\t\tServerAdmin webmaster@localhost
\t\t<Directory /var/www/wordpress>
\t\t\tProxyTimeout 10
\t\t</Directory>
\t\t<IfModule mod_proxy.c>
\t\t\tTimeout 30
\t\t</IfModule>
\t\tSSLEngine on
\t</VirtualHost>
\t<VirtualHost 192.0.2.10:443>
\t\tTimeout 120
\t\tProxyTimeout 120
\t</VirtualHost>
</IfModule>
"""
    assert changes == [
        {"line": 2, "vhost": "_default_:443", "key": "ProxyTimeout", "before": None, "after": "120"},
        {"line": 13, "vhost": "192.0.2.10:443", "key": "ProxyTimeout", "before": "15", "after": "120"},
        {"line": 2, "vhost": "_default_:443", "key": "Timeout", "before": None, "after": "120"},
        {"line": 12, "vhost": "192.0.2.10:443", "key": "Timeout", "before": None, "after": "120"},
    ]


def test_apache_top_level_outside_vhosts_is_not_touched_when_there_are_vhosts():
    src = "Timeout 300\n<VirtualHost *:80>\n  ServerName a\n</VirtualHost>\n"
    text, _changes = edit.set_apache_directives(src, {"Timeout": 60})
    assert text == "Timeout 300\n<VirtualHost *:80>\n  Timeout 60\n  ServerName a\n</VirtualHost>\n"


def test_apache_empty_vhost_gets_four_spaces_more():
    src = "<IfModule mod_ssl.c>\n  <VirtualHost *:443>\n  </VirtualHost>\n</IfModule>\n"
    text, _changes = edit.set_apache_directives(src, {"ProxyTimeout": 60})
    assert text == "<IfModule mod_ssl.c>\n  <VirtualHost *:443>\n      ProxyTimeout 60\n  </VirtualHost>\n</IfModule>\n"


def test_apache_continuation_lines():
    src = """\
<VirtualHost 192.0.2.10:80 \\
             [2001:db8::10]:80>
    # a comment that goes on \\
    ProxyTimeout 300
    ProxyTimeout \\
        15
    SetEnvIf Request_URI \\
        "^/wp-admin" admin
</VirtualHost>
"""
    text, changes = edit.set_apache_directives(src, {"ProxyTimeout": 120, "Timeout": 120, "SetEnvIf": "Request_URI ^/api api"})
    assert text == """\
<VirtualHost 192.0.2.10:80 \\
             [2001:db8::10]:80>
    Timeout 120
    # a comment that goes on \\
    ProxyTimeout 300
    ProxyTimeout \\
        120
    SetEnvIf Request_URI ^/api api
</VirtualHost>
"""
    assert changes == [
        {"line": 5, "vhost": "192.0.2.10:80 [2001:db8::10]:80", "key": "ProxyTimeout", "before": "15", "after": "120"},
        {"line": 1, "vhost": "192.0.2.10:80 [2001:db8::10]:80", "key": "Timeout", "before": None, "after": "120"},
        {"line": 7, "vhost": "192.0.2.10:80 [2001:db8::10]:80", "key": "SetEnvIf",
         "before": 'Request_URI "^/wp-admin" admin', "after": "Request_URI ^/api api"},
    ]


def test_apache_crlf():
    src = "<VirtualHost *:80>\r\n    ServerName a\r\n    ProxyTimeout 15\r\n</VirtualHost>\r\n"
    text, _changes = edit.set_apache_directives(src, {"ProxyTimeout": 120, "Timeout": 120})
    assert text == "<VirtualHost *:80>\r\n    Timeout 120\r\n    ServerName a\r\n    ProxyTimeout 120\r\n</VirtualHost>\r\n"


GLOBAL = """\
# This is the main Apache server configuration file.
DefaultRuntimeDir ${APACHE_RUN_DIR}
PidFile ${APACHE_PID_FILE}

#
# Timeout: The number of seconds before receives and sends time out.
#
Timeout 300
<Directory /var/www/>
\tOptions Indexes FollowSymLinks
\tTimeout 10
</Directory>
IncludeOptional sites-enabled/*.conf
"""


def test_apache_without_vhosts_top_level_or_appended():
    text, changes = edit.set_apache_directives(GLOBAL, {"Timeout": 120, "ProxyTimeout": 120})
    assert text == GLOBAL.replace("\nTimeout 300\n", "\nTimeout 120\n") + "ProxyTimeout 120\n"
    assert changes == [
        {"line": 8, "vhost": None, "key": "Timeout", "before": "300", "after": "120"},
        {"line": 14, "vhost": None, "key": "ProxyTimeout", "before": None, "after": "120"},
    ]


def test_apache_append_adds_the_missing_final_newline():
    text, changes = edit.set_apache_directives("ServerName a\nKeepAlive On", {"ProxyTimeout": 60, "Timeout": 60})
    assert text == "ServerName a\nKeepAlive On\nProxyTimeout 60\nTimeout 60\n"
    assert [c["line"] for c in changes] == [3, 4]
    assert edit.set_apache_directives("", {"Timeout": 60}) == ("Timeout 60\n", [
        {"line": 1, "vhost": None, "key": "Timeout", "before": None, "after": "60"}])


def test_apache_directive_without_value():
    text, _changes = edit.set_apache_directives("<VirtualHost *:80>\n    ProxyTimeout\n</VirtualHost>\n", {"ProxyTimeout": 60})
    assert text == "<VirtualHost *:80>\n    ProxyTimeout 60\n</VirtualHost>\n"


@pytest.mark.parametrize(("src", "message"), [
    ("<VirtualHost *:80>\n    ServerName a\n", "<virtualhost> is not closed"),
    ("<VirtualHost *:80>\n</Directory>\n", "unexpected </Directory> on line 2"),
])
def test_apache_unbalanced_sections_are_an_error(src, message):
    with pytest.raises(ValueError, match=message):
        edit.set_apache_directives(src, {"Timeout": 60})


def test_apache_refuses_line_breaks():
    with pytest.raises(ValueError, match="line break"):
        edit.set_apache_directives(APACHE, {"Timeout": "60\nInclude /tmp/evil"})


# --- all three -------------------------------------------------------------------------------

def test_a_leading_bom_is_kept_and_does_not_hide_the_first_line():
    text, _changes = edit.set_fpm_pool("\ufeff[www]\npm.max_children = 5\n", "www", {"pm.max_children": 20})
    assert text == "\ufeff[www]\npm.max_children = 20\n"
    text, _changes = edit.set_nginx_directives("\ufeff\ufefffastcgi_pass php;\n", {"fastcgi_read_timeout": "60s"})
    assert text == "\ufeff\ufefffastcgi_pass php;\nfastcgi_read_timeout 60s;\n"
    text, changes = edit.set_apache_directives("\ufeff<VirtualHost *:80>\n</VirtualHost>\n", {"Timeout": 60})
    assert text == "\ufeff<VirtualHost *:80>\n    Timeout 60\n</VirtualHost>\n"
    assert changes == [{"line": 1, "vhost": "*:80", "key": "Timeout", "before": None, "after": "60"}]


# --- BOM and diffs ----------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "expected"), [
    (b"\xef\xbb\xbf[www]\n", b"[www]\n"),
    (b"\xef\xbb\xbf\xef\xbb\xbf[www]\n", b"[www]\n"),
    (b"\xef\xbb\xbf", b""),
    (b"[www]\n\xef\xbb\xbf", b"[www]\n\xef\xbb\xbf"),
    (b"", b""),
    (b"\xef\xbb[www]", b"\xef\xbb[www]"),
    ("\ufeff\ufeffserver {}", "server {}"),
])
def test_strip_bom(data, expected):
    assert edit.strip_bom(data) == expected


def test_strip_bom_without_bom_returns_the_same_object():
    data = b"pm = dynamic\n"
    assert edit.strip_bom(data) is data
    assert edit.strip_bom(bytearray(b"\xef\xbb\xbfx")) == bytearray(b"x")


def test_unified_diff():
    before = "[www]\npm.max_children = 5\npm.start_servers = 2\n"
    after = "[www]\npm.max_children = 20\npm.start_servers = 2\n"
    assert edit.unified_diff(before, after, "/etc/php/8.2/fpm/pool.d/www.conf") == """\
--- a/etc/php/8.2/fpm/pool.d/www.conf
+++ b/etc/php/8.2/fpm/pool.d/www.conf
@@ -1,3 +1,3 @@
 [www]
-pm.max_children = 5
+pm.max_children = 20
 pm.start_servers = 2
"""
    assert edit.unified_diff(before, before, "www.conf") == ""


def test_unified_diff_marks_a_missing_final_newline():
    assert edit.unified_diff("a\nb", "a\nc\n", "sites/wp") == """\
--- a/sites/wp
+++ b/sites/wp
@@ -1,2 +1,2 @@
 a
-b
\\ No newline at end of file
+c
"""


def test_unified_diff_of_an_edit():
    after, _changes = edit.set_nginx_directives(VHOST, {"fastcgi_read_timeout": "120s"})
    assert edit.unified_diff(VHOST, after, "etc/nginx/sites-enabled/wordpress") == """\
--- a/etc/nginx/sites-enabled/wordpress
+++ b/etc/nginx/sites-enabled/wordpress
@@ -5,11 +5,12 @@
         allow 127.0.0.1;
         include fastcgi_params;
         fastcgi_pass unix:/run/php/php8.2-fpm.sock;
+        fastcgi_read_timeout 120s;
     }
     location ~ \\.php$ {
         include snippets/fastcgi-php.conf;
         fastcgi_pass unix:/run/php/php8.2-fpm.sock;
         # The lab answers timeouts in seconds rather than nginx's 60 s default.
-        fastcgi_read_timeout 15s;
+        fastcgi_read_timeout 120s;
     }
 }
"""


def test_ansible_diff():
    assert edit.ansible_diff("a\n", "b\n", "/etc/nginx/nginx.conf") == {
        "before": "a\n", "after": "b\n",
        "before_header": "/etc/nginx/nginx.conf", "after_header": "/etc/nginx/nginx.conf",
    }
