#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: wp502_log_scan
short_description: Classify WordPress 502 signatures in nginx, Apache and PHP-FPM logs
description:
  - Reads web-server and PHP-FPM logs on the target, only within the time window asked for, and counts
    every signature of a 502/504 Bad Gateway; nginx C(connect() ... failed), C(upstream timed out),
    C(upstream sent invalid header) and the like, Apache 2.4 C(mod_proxy_fcgi) and C(mod_fcgid) messages,
    and PHP-FPM C(server reached pm.max_children), C(exited on signal), C(execution timed out),
    C(executing too slow), C(seems busy).
  - Replaces C(tail -f error.log | grep -E 'upstream|connect\(\)|recv\(\)|FastCGI') and reading the FPM log by eye.
  - Only lines that hold a literal anchor of their kind of log are decoded and classified, files are read in
    large chunks, a time window is found by bisecting on timestamps, and rotated C(.gz) files are streamed,
    never decompressed to disk. The scan runs at low CPU and I/O priority on one core.
  - Lines at any level count (a missing FPM socket is logged at C([crit])); copies behind syslog or journald
    prefixes count; 404 C(open() failed), rate limiting, SSL handshakes, C(Primary script unknown) and PHP
    notices or warnings without a fatal error are not 502 signatures and are not counted.
  - Apache lines map to the nearest signature, see the notes. Apache often logs two lines for one failed
    request from the same worker in the same second (for example AH02454 then AH01079); they count once.
  - A missing or unreadable file, a directory, a corrupt or truncated C(.gz) is reported as a warning and in
    its entry of RV(files); the module fails only when nothing at all could be read.
version_added: "0.1.0"
author:
  - wp502 contributors (@wp502)
options:
  path:
    description:
      - Log files or glob patterns, for example C(/var/log/nginx/*error.log) or C(/var/log/php*-fpm.log).
    type: list
    elements: str
    required: true
  since:
    description:
      - Start of the window, back from now; C(15m), C(1h), C(24h), C(7d), an ISO-8601 time
        such as C(2026-11-23T21:00:00+00:00), or C(all) for whole files.
      - Lines without a timestamp of their own belong to the file's window.
    type: str
    default: 1h
  kind:
    description:
      - The kind of log. C(auto) decides per file from its first lines (nginx, Apache, PHP-FPM log or slowlog)
        and falls back to looking for every kind of signature (for syslog or journald exports).
    type: str
    choices: [auto, nginx, apache, fpm, fpm_slowlog]
    default: auto
  rotated:
    description:
      - Also read the rotated siblings of each file (C(.1), C(.N.gz), C(-YYYYMMDD), C(-YYYYMMDD.gz)) when the
        window reaches them; a rotated file last written before the window is not opened.
    type: bool
    default: true
  max_samples:
    description:
      - How many of the latest matching lines to keep per signature (each cut to 2 KiB).
    type: int
    default: 5
  low_priority:
    description:
      - Lower the scan's CPU (nice 10) and I/O (idle class) priority, since the host is usually already in trouble.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs the same scan.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
notes:
  - "Apache mapping: C(AH01079 failed to make connection to backend), C(AH02454)/C(AH00957 attempt to connect ... failed)
    and C(AH00959 disabling worker) are C(connect_refused); C((70007\\)The timeout specified has expired ... AH01075),
    C(Timeout waiting for output from CGI script) and C(mod_fcgid: read data timeout) are C(upstream_timeout);
    C(AH01067 Failed to read FastCGI header), C(End of script output before headers), C((104\\)Connection reset by peer
    ... AH01075) and C(mod_fcgid: error reading data from FastCGI server) are C(premature_close); C(AH02429 Response
    header name ... contains invalid characters), C(AH01070 Error parsing script headers) and C(malformed header from
    script) are C(invalid_header); C(AH01071 Got error 'PHP message: PHP Fatal error ...') is C(fastcgi_stderr), as are
    the fatal errors PHP writes to a pool's own log (C(php_admin_value[error_log]), C([23-Nov-2026 22:10:01 UTC] PHP Fatal
    error: ...));
    C(mod_fcgid: can't apply process slot) is C(max_children)."
  - Timestamps without a zone (nginx, Apache, PHP-FPM) are read in the target's local time.
  - PHP-FPM's slowlog and its C(executing too slow) line describe the same request; it is counted once.
    A worker killed right after C(execution timed out, terminating) counts as C(terminate_timeout), not C(child_signal).
  - A log truncated while it is read (logrotate's C(copytruncate)) loses no line. The rest of what it held is read
    from its rotated copy (a plain C(.1) or C(-YYYYMMDD) sibling, used only when it starts with the same bytes and
    reaches the offset read so far, so another rotated file is never mistaken for it). Then the lines written since
    are read from offset 0 of the log. A warning says so, and the copy's own entry in RV(files) is not read a second
    time. Without a matching copy, the warning says after which offset lines may be missing.
seealso:
  - name: nginx error log messages of ngx_http_upstream
    description: Where the nginx messages come from.
    link: https://nginx.org/en/docs/http/ngx_http_upstream_module.html
"""

EXAMPLES = r"""
- name: Count 502 signatures of the last hour in nginx and PHP-FPM logs
  wp502_log_scan:
    path:
      - /var/log/nginx/error.log
      - /var/log/php8.2-fpm.log
      - /var/log/php8.2-fpm.slow.log
  register: wp502_logs

- name: Look at a whole week, rotated files included
  wp502_log_scan:
    path: /var/log/nginx/*error.log
    since: 7d

- name: Everything since the incident started, Apache front-end
  wp502_log_scan:
    path: /var/log/apache2/error.log
    kind: apache
    since: "2026-11-23T21:00:00+00:00"
    max_samples: 3

- name: Show what was found
  ansible.builtin.debug:
    msg: "{{ wp502_logs.signatures | dict2items | selectattr('value.count') | map(attribute='key') | list }}"
"""

RETURN = r"""
signatures:
  description:
    - Every signature, always all keys, with its count (0 when absent), first and last time seen (ISO-8601) and
      the latest matching lines.
    - "Front-end: connect_refused, connect_unavailable, upstream_timeout, premature_close, invalid_header,
      too_big_header, fastcgi_stderr. PHP-FPM: max_children, child_signal, terminate_timeout, slow_request, seems_busy."
  returned: always
  type: dict
  sample:
    connect_refused:
      count: 3
      first_seen: "2026-11-23T21:42:05+00:00"
      last_seen: "2026-11-23T21:43:10+00:00"
      samples:
        - "2026/11/23 21:43:10 [crit] 131#131: *19 connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file ...)"
total:
  description: Sum of all signature counts.
  returned: always
  type: int
  sample: 3
by_upstream:
  description: Signature counts per upstream or FPM socket named by the front-end (C(unix:/path) or C(host:port)).
  returned: always
  type: dict
  sample: {"unix:/run/php/php8.2-fpm.sock": 3}
by_pool:
  description: PHP-FPM signature counts per pool.
  returned: always
  type: dict
  sample: {"www": 2}
child_signals:
  description: Workers that died on a signal, per signal name.
  returned: always
  type: dict
  sample: {"SIGSEGV": 4}
top_requests:
  description: Up to 10 request paths (query strings dropped) most often named by signature lines, with counts.
  returned: always
  type: list
  elements: dict
  sample: [{"request": "/wp-login.php", "count": 12}]
suspects:
  description:
    - Plugins, mu-plugins and themes named in FPM slowlog stack frames, C(execution timed out) script paths and
      fatal FastCGI stderr file paths, most named first, with the count per source.
    - C(pools), C(servers) and C(scripts) say which FPM pools, nginx server names and site directories (see
      RV(attributed)) the lines that named it carried, with counts.
  returned: always
  type: list
  elements: dict
  sample: [{"type": "plugin", "slug": "heavy-analytics", "count": 7, "sources": {"slowlog": 7},
            "pools": {"siteb": 7}, "servers": {}, "scripts": {"/var/www/siteb": 7}}]
attributed:
  description:
    - The counted lines split by what they name, to tell which site each belongs to, found in the same pass as
      RV(signatures) (no file is read twice). Lines that carry the same keys form one group; every counted line is
      in exactly one group, so the groups of a site add up without counting a line twice.
    - "Keys (null when the line does not name it): C(file), the log it was read from (a rotated copy counts as its
      log, C(error.log.2.gz) as C(error.log)); C(server), nginx's C(server: NAME); C(upstream), nginx's
      C(upstream: \"fastcgi://...\") or Apache's C(Unix domain socket PATH) / C(attempt to connect to HOST:PORT), as
      C(unix:/path) or C(host:port); C(pool), PHP-FPM's C([pool NAME]) and the slowlog header's pool; C(script), the
      directory of the script named by a slowlog C(script_filename), an FPM C(script '...') line or a fatal error's
      file, cut before C(/wp-content/), C(/wp-admin/) or C(/wp-includes/) (so usually the site's docroot)."
    - Each group has C(total), C(signatures) (only those seen, each with C(count), C(first_seen), C(last_seen) and up
      to 2 C(samples)), C(suspects) named by its lines, C(child_signals) and C(slow_functions).
    - Deciding which site owns a group is left to the reader, who knows the sites (the evidence's per-site verdict
      takes the most specific key first, and leaves a group no site claims at host level). At most 4096 groups are
      kept; further lines count in a group with only their C(file) key.
  returned: always
  type: list
  elements: dict
  sample:
    - file: /var/log/nginx/error.log
      server: siteb.test
      upstream: unix:/run/php/siteb.sock
      pool: null
      script: null
      total: 2
      signatures:
        connect_refused:
          count: 2
          first_seen: "2026-11-23T22:10:01+00:00"
          last_seen: "2026-11-23T22:10:03+00:00"
          samples: ["2026/11/23 22:10:03 [crit] 812#812: *1203 connect() to unix:/run/php/siteb.sock failed ..."]
      suspects: []
      child_signals: {}
      slow_functions: {}
files:
  description:
    - Each file considered, with size, inode, bytes read, whether rotated or compressed, and its warnings.
    - C(truncated_at) and C(rest_from) appear only for a log truncated while it was read (copytruncate), with the
      offset where it was found truncated and the rotated copy the rest was read from (null when none matched).
  returned: always
  type: list
  elements: dict
  sample:
    - path: /var/log/nginx/error.log
      kind: nginx
      size: 1048576
      inode: 1234
      bytes_read: 65536
      rotated: false
      compressed: false
      lines_scanned: 420
      start_offset: 983040
      read: true
bytes_read:
  description: Bytes read from disk over all files (compressed bytes for C(.gz)).
  returned: always
  type: int
  sample: 65536
lines_scanned:
  description: Lines in the parts of the files that were read.
  returned: always
  type: int
  sample: 420
window:
  description: The window asked for (O(since)) and the start and end times actually covered by what was read.
  returned: always
  type: dict
  sample: {"since": "2026-11-23T21:00:00+00:00", "start": "2026-11-23T21:00:00+00:00", "end": "2026-11-23T21:59:58+00:00"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wp502_logscan import KINDS, Scanner, lower_priority, parse_since


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="list", elements="str", required=True),
            since=dict(type="str", default="1h"),
            kind=dict(type="str", default="auto", choices=list(KINDS)),
            rotated=dict(type="bool", default=True),
            max_samples=dict(type="int", default=5),
            low_priority=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["max_samples"] < 0:
        module.fail_json(msg="max_samples must be 0 or more, not %d" % params["max_samples"])
    if not params["path"]:
        module.fail_json(msg="path is empty: give at least one log file or glob")
    try:
        since = parse_since(params["since"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if params["low_priority"]:
        lower_priority()

    scanner = Scanner(since_epoch=since, kind=params["kind"], max_samples=params["max_samples"], rotated=params["rotated"])
    scanner.scan_paths(params["path"])
    result = scanner.result()
    read_any = any(f["read"] for f in result["files"])
    if not read_any:
        reasons = "; ".join("%s: %s" % (f["path"], ", ".join(f.get("warnings", ["not read"]))) for f in result["files"])
        result.pop("warnings")
        module.fail_json(msg="no log could be read (%s). Check the paths and that the play can read them "
                             "(become: true for logs owned by root)." % reasons, **result)
    # Each becomes an Ansible warning, returned under the usual "warnings" key.
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(changed=False, **result)


def main():
    run_module()


if __name__ == "__main__":
    main()
