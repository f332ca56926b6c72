<?php
// Back end of wp502-lab-wp: plugin list/activate/deactivate, option get/set, through WordPress's API.
if (PHP_SAPI !== 'cli') { exit(1); }
$docroot = $argv[1];
$args = array_slice($argv, 2);
$_SERVER['HTTP_HOST'] = 'localhost';
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
// Whatever loading prints (a plugin saved with a BOM prints three bytes) must not corrupt the JSON.
ob_start();
require $docroot . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
$noise = ob_get_clean();
if ($noise !== '') { fwrite(STDERR, 'wp502-lab-wp: loading WordPress printed ' . strlen($noise) . " bytes\n"); }

function fail($msg) { fwrite(STDERR, $msg . "\n"); exit(1); }
function plugin_file($slug) {
    foreach (array_keys(get_plugins()) as $file) {
        if ($file === $slug || dirname($file) === $slug || $file === $slug . '.php') { return $file; }
    }
    fail("no such plugin: $slug");
}

[$noun, $verb] = array_pad($args, 2, '');
$rest = array_slice($args, 2);
$changed = false;
switch ("$noun $verb") {
    case 'plugin list':
        $out = [];
        foreach (get_plugins() as $file => $data) {
            $out[] = ['file' => $file, 'name' => $data['Name'], 'version' => $data['Version'],
                      'active' => is_plugin_active($file)];
        }
        echo json_encode($out, JSON_PRETTY_PRINT), "\n";
        exit(0);
    case 'plugin activate':
        foreach ($rest as $slug) {
            $file = plugin_file($slug);
            if (!is_plugin_active($file)) {
                $r = activate_plugin($file);
                // Like the Plugins screen, WordPress activates a plugin that prints output (a BOM,
                // whitespace) and then reports "unexpected output": a warning, not a failure.
                if (is_wp_error($r) && $r->get_error_code() === 'unexpected_output') {
                    fwrite(STDERR, "$slug: activated, but it generated " . strlen($r->get_error_data()) . " characters of unexpected output\n");
                } elseif (is_wp_error($r)) {
                    fail("$slug: " . $r->get_error_message());
                }
                $changed = true;
            }
        }
        break;
    case 'plugin deactivate':
        foreach ($rest as $slug) {
            $file = plugin_file($slug);
            if (is_plugin_active($file)) { deactivate_plugins($file); $changed = true; }
        }
        break;
    case 'option get':
        echo json_encode(get_option($rest[0] ?? fail('option get NAME'))), "\n";
        exit(0);
    case 'option set':
        if (count($rest) !== 2) { fail('option set NAME VALUE'); }
        $changed = update_option($rest[0], $rest[1]);
        break;
    default:
        fail("usage: wp502-lab-wp plugin list|activate|deactivate SLUG... | option get|set NAME [VALUE]");
}
echo json_encode(['changed' => $changed, 'active_plugins' => get_option('active_plugins')]), "\n";
