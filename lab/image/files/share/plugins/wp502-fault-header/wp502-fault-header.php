<?php
/**
 * Plugin Name: wp502 fault: invalid header
 * Description: Sends a header whose name contains a space, which nginx rejects as an invalid upstream header.
 * Version: 1.0.0
 * Author: wp502 lab
 */

// Lab fault: only misbehaves under PHP-FPM, so the CLI that (de)activates it is safe.
if (PHP_SAPI !== 'fpm-fcgi') {
    return;
}

function wp502_fault_header_send() {
    header('Bad Name: wp502');
}
add_action('send_headers', 'wp502_fault_header_send');
add_action('login_init', 'wp502_fault_header_send');
