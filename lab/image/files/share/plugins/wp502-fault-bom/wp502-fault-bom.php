<?php
/**
 * Plugin Name: wp502 fault: UTF-8 BOM
 * Description: A harmless footer credit, saved by an editor that put a UTF-8 BOM before <?php.
 * Version: 1.0.0
 * Author: wp502 lab
 */

function wp502_fault_bom_credit() {
    echo "<!-- served by wp502 lab -->";
}
add_action('wp_footer', 'wp502_fault_bom_credit');
