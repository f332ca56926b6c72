<?php
/**
 * Plugin Name: wp502 fault: segfault
 * Description: Kills its PHP-FPM worker with SIGSEGV, like a crashing extension.
 * Version: 1.0.0
 * Author: wp502 lab
 */

// Lab fault: only misbehaves under PHP-FPM, so the CLI that (de)activates it is safe.
if (PHP_SAPI !== 'fpm-fcgi') {
    return;
}

function wp502_fault_segfault_crash() {
    posix_kill(posix_getpid(), 11);
    sleep(5);
}
add_action('init', 'wp502_fault_segfault_crash');
