<?php
/**
 * Plugin Name: wp502 fault: too big header
 * Description: Sets 40 cookies of 1000 bytes, more than nginx's default FastCGI buffer holds.
 * Version: 1.0.0
 * Author: wp502 lab
 */

// Lab fault: only misbehaves under PHP-FPM, so the CLI that (de)activates it is safe.
if (PHP_SAPI !== 'fpm-fcgi') {
    return;
}

function wp502_fault_cookies_send() {
    for ($i = 0; $i < 40; $i++) {
        setcookie('wp502_tracking_' . $i, str_repeat(chr(97 + $i % 26), 1000), 0, '/');
    }
}
add_action('send_headers', 'wp502_fault_cookies_send');
add_action('login_init', 'wp502_fault_cookies_send');
