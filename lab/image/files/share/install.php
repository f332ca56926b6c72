<?php
// Install WordPress through its own API (no WP-CLI): php install.php DOCROOT ADMIN_PASSWORD
if (PHP_SAPI !== 'cli') { exit(1); }
[$self, $docroot, $password] = $argv;
define('WP_INSTALLING', true);
$_SERVER['HTTP_HOST'] = 'localhost';
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
require $docroot . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';

if (!is_blog_installed()) {
    $result = wp_install('wp502 lab', 'admin', 'admin@example.invalid', false, '', $password);
    if (is_wp_error($result)) { fwrite(STDERR, $result->get_error_message() . "\n"); exit(1); }
}
// The site answers on whatever host and port the lab publishes it: keep URLs relative to the request.
update_option('siteurl', 'http://localhost');
update_option('home', 'http://localhost');
update_option('permalink_structure', '/%postname%/');
switch_theme('twentytwentythree');

// Real plugins, some active, as on any small site.
foreach (['akismet/akismet.php', 'hello.php', 'xrds-simple/xrds-simple.php'] as $plugin) {
    if (file_exists(WP_PLUGIN_DIR . '/' . $plugin)) {
        $r = activate_plugin($plugin);
        if (is_wp_error($r)) { fwrite(STDERR, "$plugin: " . $r->get_error_message() . "\n"); exit(1); }
    }
}
echo json_encode(['active_plugins' => get_option('active_plugins')]), "\n";
