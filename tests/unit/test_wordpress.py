"""wp502_wordpress: wp-config.php without running it, serialized options, file heads."""

from __future__ import annotations

import pytest
import wp502_wordpress as wp

SAMPLE = """<?php
/**
 * The base configuration for WordPress
 */
// ** Database settings - You can get this info from your web host ** //
/** The name of the database for WordPress */
define( 'DB_NAME', 'wordpress' );
define( 'DB_USER', 'wordpress' );
define( 'DB_PASSWORD', 'p@ss\\'word;with)chars' );
define( 'DB_HOST', 'localhost' );
define( 'DB_CHARSET', 'utf8mb4' );
// define( 'DB_NAME', 'commented_out' );
/* define( 'WP_DEBUG', true ); */
$table_prefix = 'wp_';
define( 'WP_DEBUG', false );
define('WP_DEBUG_LOG', true);
define( 'WP_HOME', 'http://' . ( $_SERVER['HTTP_HOST'] ?? 'localhost' ) );
if ( ! defined( 'ABSPATH' ) ) {
\tdefine( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
"""

DOCKER = """<?php
define( 'DB_NAME', getenv_docker('WORDPRESS_DB_NAME', 'wordpress') );
define( "DB_HOST", "db:3306" );
$table_prefix  = "shop_";
define( 'WP_DEBUG', !!getenv_docker('WORDPRESS_DEBUG', '') );
"""


def test_standard_wp_config():
    cfg = wp.parse_wp_config(SAMPLE)
    assert cfg["db_name"] == "wordpress"
    assert cfg["db_password"] == "p@ss'word;with)chars"  # noqa: S105 - a fixture, not a secret
    assert cfg["db_host"] == "localhost"
    assert cfg["table_prefix"] == "wp_"
    assert cfg["wp_debug"] is False
    assert cfg["wp_debug_log"] is True
    assert cfg["wp_home"] == {"expression": "'http://' . ( $_SERVER['HTTP_HOST'] ?? 'localhost' )"}


def test_docker_style_wp_config_keeps_expressions():
    cfg = wp.parse_wp_config(DOCKER)
    assert cfg["db_name"] == {"expression": "getenv_docker('WORDPRESS_DB_NAME', 'wordpress')"}
    assert cfg["db_host"] == "db:3306"
    assert cfg["table_prefix"] == "shop_"
    assert "expression" in cfg["wp_debug"]


@pytest.mark.parametrize(("value", "expected"), [
    ("localhost", {"host": "localhost", "port": None, "socket": None}),
    ("127.0.0.1:3307", {"host": "127.0.0.1", "port": 3307, "socket": None}),
    ("localhost:/run/mysqld/mysqld.sock", {"host": "localhost", "port": None, "socket": "/run/mysqld/mysqld.sock"}),
    ("[::1]:3306", {"host": "::1", "port": 3306, "socket": None}),
    (None, {"host": "localhost", "port": None, "socket": None}),
])
def test_db_host_forms(value, expected):
    assert wp.split_db_host(value) == expected


@pytest.mark.parametrize(("data", "values", "ok"), [
    ('a:2:{i:0;s:19:"akismet/akismet.php";i:1;s:27:"xrds-simple/xrds-simple.php";}',
     ["akismet/akismet.php", "xrds-simple/xrds-simple.php"], True),
    # keys left non-sequential by deactivate_plugins()
    ('a:2:{i:0;s:19:"akismet/akismet.php";i:2;s:27:"xrds-simple/xrds-simple.php";}',
     ["akismet/akismet.php", "xrds-simple/xrds-simple.php"], True),
    # byte lengths with a multibyte slug and a quote inside
    ('a:1:{i:0;s:19:"caf\u00e9-\"x/plugin.php";}', ['caf\u00e9-"x/plugin.php'], True),
    # multisite: plugin files are the keys, activation times the values
    ('a:1:{s:19:"akismet/akismet.php";i:1700000000;}', ["akismet/akismet.php"], True),
    ("a:0:{}", [], True),
    ('a:2:{i:0;s:19:"akismet/akismet.php";i:1;s:99:"trunc', ["akismet/akismet.php"], False),
    ("not serialized", [], False),
])
def test_unserialize_plugin_lists(data, values, ok):
    res = wp.php_unserialize_strings(data)
    assert res == {"values": values, "ok": ok}


def test_plugin_slug():
    assert wp.plugin_slug("akismet/akismet.php") == "akismet"
    assert wp.plugin_slug("hello.php") == "hello"


@pytest.mark.parametrize(("head", "issue"), [
    (b"\xef\xbb\xbf<?php\n", "bom"),
    (b"\n\n<?php\n", "whitespace"),
    (b"  <?php", "whitespace"),
    (b"<?php\n", None),
    (b"<html>", None),
    (b"", None),
])
def test_php_file_head(head, issue):
    assert wp.php_file_head_issue(head) == issue


def test_comments_are_stripped_but_strings_kept():
    src = "<?php\n# define('DB_NAME', 'no');\ndefine('DB_NAME', 'a#b//c/*d*/');  // trailing\n/* define('DB_USER','x'); */\n"
    assert wp.parse_wp_config(src) == {"db_name": "a#b//c/*d*/"}
