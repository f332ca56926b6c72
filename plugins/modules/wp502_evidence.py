#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: wp502_evidence
short_description: Gather a WordPress host's 502 evidence in one round trip and rank the causes
description:
  - Collects, in one module run, everything the 502 runbook looks at, and turns it into a ranked verdict.
  - "PHP-FPM: installed versions and their services (systemd state, main PID), pools parsed from the real
    configuration (includes, C($pool)), listen addresses and whether they exist, pm limits, timeouts, slowlog,
    live workers per pool with average and p95 RSS read from /proc (so it works when the pool is saturated),
    the pool's status page over FastCGI when it answers within 2 seconds, and a recommended C(pm.max_children)
    from RAM, MySQL's RSS and the p95 worker size."
  - "Front-end: nginx servers from C(nginx -T) or Apache vhosts from its configuration: names, root, logs, the
    address PHP is passed to (compared with what FPM listens on), and the timeout chain: the front-end's read
    timeout against FPM's C(request_terminate_timeout) and PHP's C(max_execution_time), flagged when they disagree."
  - "WordPress, for each site whose root holds a wp-config.php: its settings read without running PHP (the
    database password is used for the database queries and never returned), plugins and their versions,
    active plugins, mu-plugins, themes, PHP files starting with a UTF-8 BOM or whitespace, files changed
    recently, the end of debug.log with file attribution."
  - "Database, with the mysql or mariadb client and the site's credentials: reachability, long-running
    queries, slow-log entries over 2 s (normalised, top by time), autoloaded options size and top offenders
    counting every autoload value WordPress 6.6 uses (yes, on, auto-on, auto), rows of options and postmeta."
  - "HTTP: C(/) and C(/wp-login.php) at the origin (127.0.0.1 with the site's Host header, bypassing any CDN),
    and through the public URL when given, with CDN detection (Cloudflare Ray ID, Fastly, BunnyCDN,
    CloudFront, Akamai)."
  - "Host pressure: memory, swap, load, disk space of the log and database filesystems, OOM-killer kills of
    php-fpm or mysqld in the kernel log within the window. Logs: the wp502_log_scan classification of every
    error log and slowlog found (the same classification as the wp502_log_scan module). Peak hours: 502/503/504
    answers per hour from the access logs."
  - Every part fails soft; what could not be read is listed in RV(errors).
version_added: "0.1.0"
author:
  - wp502 contributors (@wp502)
options:
  since:
    description: Window of the log, slow-log, OOM and access-log evidence (C(15m), C(1h), C(24h), C(7d), an ISO-8601 time, C(all)).
    type: str
    default: 1h
  sites:
    description:
      - The WordPress sites to examine. By default they are discovered from the front-end's document roots that hold
        a wp-config.php (in the root or its parent).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Document root of the site.
        type: path
        required: true
      host:
        description: Host header for the origin probe (default the server's first name).
        type: str
      url:
        description: Public URL, probed through the CDN when given (for example C(https://www.example.com)).
        type: str
  probe:
    description: Probe the site over HTTP.
    type: bool
    default: true
  probe_timeout:
    description: Deadline of each HTTP probe in seconds.
    type: float
    default: 10
  probe_cookie_paths:
    description:
      - Paths whose origin answer must also set a cookie for C(http.origin_healthy) (see C(wp502_probe)).
    type: list
    elements: str
    default: [/wp-login.php]
  database:
    description: Query the database with the site's credentials.
    type: bool
    default: true
  scan_files:
    description: Check every PHP file of the sites for a BOM or whitespace before C(<?php) and for recent changes.
    type: bool
    default: true
  recent_days:
    description: What counts as a recent change, in days.
    type: int
    default: 7
  max_php_files:
    description: Stop checking PHP files after this many per site (reported in RV(errors)).
    type: int
    default: 20000
  extra_logs:
    description: More log files or globs to classify, besides those the configuration names.
    type: list
    elements: path
    default: []
  os_reserve_mb:
    description: Memory kept for the OS when recommending C(pm.max_children) (default 10% of RAM, at least 256 MiB).
    type: int
  low_priority:
    description: Lower the module's CPU and I/O priority, since the host is usually already in trouble.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs the same collection.
  diff_mode:
    support: none
    description: Nothing is changed.
notes:
  - Run it with C(become) so that logs, configurations and /proc of other users can be read.
  - The database password is read from wp-config.php and passed to the client in its environment, never on the
    command line; it is masked in every error message.
"""

EXAMPLES = r"""
- name: Gather the evidence and the verdict
  wp502_evidence:
    since: 1h
  become: true
  register: wp502

- name: Show the most likely cause
  ansible.builtin.debug:
    msg: "{{ wp502.top_cause }}: {{ wp502.verdict[0].evidence | join('; ') }}"

- name: A site behind Cloudflare, told apart from its origin
  wp502_evidence:
    sites:
      - path: /var/www/shop
        host: shop.example.com
        url: https://shop.example.com
  become: true
"""

RETURN = r"""
top_cause:
  description: The most likely cause (one of the causes of RV(verdict)).
  returned: always
  type: str
  sample: pool_saturated
verdict:
  description: Ranked causes, most likely first, each with its confidence, evidence and the ladder rungs that can help.
  returned: always
  type: list
  elements: dict
  sample:
    - cause: slow_plugin
      confidence: 0.95
      evidence: ["plugin heavy-analytics named in 9 slow request stacks"]
      rungs: [plugins]
      slug: heavy-analytics
fpm:
  description: PHP-FPM versions, services, pools with settings, live workers, RSS and the recommendation.
  returned: always
  type: dict
frontend:
  description: The active front-end (nginx or apache), its servers and the PHP upstreams they use.
  returned: always
  type: dict
wordpress:
  description: One entry per site found, with its settings (no password), plugins, themes, file checks and database facts.
  returned: always
  type: list
  elements: dict
db:
  description: The first site's database facts (reachable, autoload size, slow and long-running queries).
  returned: always
  type: dict
http:
  description:
    - Origin (and public URL) probes with status, latency and the CDN detected; C(origin_healthy) is the emergency
      ladder's test on the origin's answers (every path 200 within O(probe_timeout), the cookie paths setting one).
  returned: always
  type: dict
logs:
  description: The wp502_log_scan result over every error log and slowlog found.
  returned: always
  type: dict
host:
  description: Memory, load, CPUs, MySQL RSS, disk usage and OOM kills.
  returned: always
  type: dict
peak_hours:
  description: 502/503/504 answers per hour from the access logs, and the hours that recur on several days.
  returned: always
  type: dict
errors:
  description: What could not be read or run, and why.
  returned: always
  type: list
  elements: str
collected_at:
  description: When the evidence was collected (ISO-8601).
  returned: always
  type: str
collect_seconds:
  description: How long the collection took on the host.
  returned: always
  type: float
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wp502_collect import Collector
from ansible.module_utils.wp502_host import deadline_runner
from ansible.module_utils.wp502_logscan import lower_priority, parse_since


def main():
    module = AnsibleModule(
        argument_spec=dict(
            since=dict(type="str", default="1h"),
            sites=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True),
                host=dict(type="str"),
                url=dict(type="str"),
            )),
            probe=dict(type="bool", default=True),
            probe_timeout=dict(type="float", default=10),
            probe_cookie_paths=dict(type="list", elements="str", default=["/wp-login.php"]),
            database=dict(type="bool", default=True),
            scan_files=dict(type="bool", default=True),
            recent_days=dict(type="int", default=7),
            max_php_files=dict(type="int", default=20000),
            extra_logs=dict(type="list", elements="path", default=[]),
            os_reserve_mb=dict(type="int"),
            low_priority=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        since = parse_since(p["since"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    for site in p["sites"]:
        if site.get("url") and not re.match(r"^https?://[^/\s]+", site["url"]):
            module.fail_json(msg="sites[].url must be an http:// or https:// URL, not %r" % site["url"])
    if p["probe_timeout"] <= 0 or p["probe_timeout"] > 120:
        module.fail_json(msg="probe_timeout must be between 0 and 120 seconds, not %s" % p["probe_timeout"])
    if p["low_priority"]:
        lower_priority()

    # Every command under its deadline (nginx -T, systemctl, mysql, journalctl, dmesg): a hung one is
    # killed and named in errors, and the round trip goes on.
    collector = Collector(deadline_runner(module.run_command), since, probe_timeout=p["probe_timeout"], scan_files=p["scan_files"],
                          recent_days=p["recent_days"], max_php_files=p["max_php_files"],
                          os_reserve=p["os_reserve_mb"] * 1024 * 1024 if p["os_reserve_mb"] else None,
                          db=p["database"], probe=p["probe"], sites=p["sites"], extra_logs=p["extra_logs"],
                          cookie_paths=p["probe_cookie_paths"])
    evidence = collector.collect()
    module.exit_json(changed=False, **evidence)


if __name__ == "__main__":
    main()
