<?php
/**
 * Plugin Name: wp502 fault: slow requests
 * Description: Holds every request for wp502_fault_slow_seconds (default 8) seconds, like a plugin waiting on a slow API; with a small pool the workers run out.
 * Version: 1.0.0
 * Author: wp502 lab
 */

// Lab fault: only misbehaves under PHP-FPM, so the CLI that (de)activates it is safe.
if (PHP_SAPI !== 'fpm-fcgi') {
    return;
}

function wp502_fault_slow_wait() {
    $seconds = (int) get_option('wp502_fault_slow_seconds', 8);
    sleep(max(0, min($seconds, 120)));
}
add_action('init', 'wp502_fault_slow_wait');
