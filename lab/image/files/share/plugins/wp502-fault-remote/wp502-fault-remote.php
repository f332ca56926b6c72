<?php
/**
 * Plugin Name: wp502 fault: remote call that never answers
 * Description: Calls a local 'API' (127.0.0.1:9099) that accepts and never answers, for up to 60 s.
 * Version: 1.0.0
 * Author: wp502 lab
 */

// Lab fault: only misbehaves under PHP-FPM, so the CLI that (de)activates it is safe.
if (PHP_SAPI !== 'fpm-fcgi') {
    return;
}

function wp502_fault_remote_call() {
    $ctx = stream_context_create(['http' => ['timeout' => 60]]);
    $body = @file_get_contents('http://127.0.0.1:9099/v1/quote', false, $ctx);
    if ($body === false) {
        error_log('wp502-fault-remote: quote API did not answer');
    }
}
add_action('init', 'wp502_fault_remote_call');
