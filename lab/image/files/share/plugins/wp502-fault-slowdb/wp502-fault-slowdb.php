<?php
/**
 * Plugin Name: wp502 fault: slow database
 * Description: Runs slow queries on every request and, when activated, autoloads about 1.5 MB of options.
 * Version: 1.0.0
 * Author: wp502 lab
 */

// Activation bloats the autoloaded options the way a careless plugin's cache does.
function wp502_fault_slowdb_activate() {
    for ($i = 0; $i < 30; $i++) {
        update_option('wp502_report_cache_' . $i, str_repeat(md5((string) $i), 1600), 'yes');
    }
}
register_activation_hook(__FILE__, 'wp502_fault_slowdb_activate');

// Lab fault: only misbehaves under PHP-FPM, so the CLI that (de)activates it is safe.
if (PHP_SAPI !== 'fpm-fcgi') {
    return;
}

function wp502_fault_slowdb_query() {
    global $wpdb;
    for ($i = 0; $i < 6; $i++) {
        $wpdb->get_var(
            "SELECT SLEEP(3) + (SELECT COUNT(*) FROM {$wpdb->options} WHERE option_name LIKE '%wp502_report_cache%')"
        );
    }
}
add_action('init', 'wp502_fault_slowdb_query');
