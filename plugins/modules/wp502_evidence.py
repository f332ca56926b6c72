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
    the pool's status page over FastCGI when it answers within 2 seconds (with each worker's request count), and a
    recommended C(pm.max_children) (C(recommendation) of each pool in RV(fpm))."
  - "Sizing, per pool: the smallest of three bounds, named in C(limited_by) and C(reason). Memory: the cgroup's
    limit when the pool's cgroup or an ancestor has one (C(memory.max), v1 C(memory.limit_in_bytes); a container's
    C(--memory)), else RAM, minus the database and the other pools inside it and a reserve (10%, at least 64 MiB
    in a cgroup, 256 MiB on a host), over the worker size (the p95 RSS of the workers the status page says served
    requests, else the largest worker, never below the pool's C(memory_limit) while no worker is known to have
    served one). CPU: the cgroup's quota (C(cpu.max), v1 C(cpu.cfs_quota_us)) or the cores the host gives,
    times O(workers_per_cpu). Database: the server's C(max_connections) minus a tenth (at least 2) and the workers
    of the other pools on the same server."
  - "Front-end: nginx servers from C(nginx -T) or Apache vhosts from its configuration: names, root, logs, the
    address PHP is passed to (compared with what FPM listens on), and the timeout chain: the front-end's read
    timeout against FPM's C(request_terminate_timeout) and PHP's C(max_execution_time), flagged when they disagree."
  - "Sites: the map of every WordPress site the active front-end serves (RV(sites)). Vhosts sharing a docroot are
    one site, with all their names and aliases, listen addresses, the port and scheme its origin is asked on, whether
    it is a default server, its logs, its upstreams and the PHP-FPM pools (and services) listening there, its
    WordPress and database, and its probes. Docroots without a wp-config.php are not sites (listed in
    C(frontend.not_wordpress))."
  - "WordPress, for each site whose root holds a wp-config.php: its settings read without running PHP (the
    database password is used for the database queries and never returned), plugins and their versions,
    active plugins (network-active ones on a multisite), mu-plugins, drop-ins, themes, wp-content wherever
    C(WP_CONTENT_DIR) puts it, PHP files starting with a UTF-8 BOM or whitespace (in C(bom_files) only those WordPress
    is proven to load; with the database unreadable plugin and theme files are in C(bom_files_unproven)), files
    changed recently, the end of debug.log with file attribution."
  - "Database, with the mysql or mariadb client and the site's credentials: reachability, long-running
    queries, slow-log entries over 2 s (normalised, top by time), autoloaded options size and top offenders
    counting every autoload value WordPress 6.6 uses (yes, on, auto-on, auto), rows of options and postmeta; each
    distinct database (host, name, table prefix) is read once. The host's MariaDB/MySQL service, its state and its
    socket are in C(host.database)."
  - "HTTP: C(/) and C(/wp-login.php) of every site at the origin (127.0.0.1 with the site's Host header, port and
    scheme, bypassing any CDN), and through its public URL when given, with CDN detection (Cloudflare Ray ID, Fastly,
    BunnyCDN, CloudFront, Akamai). All sites are asked at once (at most 32 requests in flight) within one deadline of
    O(probe_timeout) + 5 s; a site that could not be asked in time is listed in C(probe.skipped)."
  - "Host pressure: memory, swap, load, disk space of the log and database filesystems, OOM-killer kills of
    php-fpm or mysqld in the kernel log within the window. Logs: the wp502_log_scan classification of every
    error log and slowlog found, a pool's C(php_admin_value[error_log]) included (the same classification as the
    wp502_log_scan module). Peak hours: 502/503/504
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
      - WordPress sites to name, with a public URL or a Host header of their own. Sites are always discovered from
        the active front-end's document roots that hold a wp-config.php (in the root or its parent); a site given
        here is matched to a discovered one by its docroot (symlinks resolved) or by O(sites[].host) being one of
        its names, and one that matches none is examined on its own. Given sites come first in RV(sites).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Document root of the site (one of O(sites[].path) and O(sites[].host) is required).
        type: path
      host:
        description:
          - Host header for the origin probe (default the server's first name); without O(sites[].path), the
            discovered site that has this name.
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
  workers_per_cpu:
    description:
      - Workers per core in the CPU bound of the sizing. A WordPress request mostly waits for the database, the disk
        and remote APIs, so about 4 workers keep a core busy; lower it for CPU-bound sites.
    type: int
    default: 4
  known_culprits:
    description:
      - Plugins an emergency proved guilty on other hosts (the records of the C(wp502_known_culprits) lookup). Those
        active on a site are listed in its RV(sites[].known_culprits) with the reasons its evidence points to them.
    type: list
    elements: dict
    default: []
    suboptions:
      plugin:
        description: The plugin (its directory under wp-content/plugins, or its file for a single-file plugin).
        type: str
        required: true
      host:
        description: Where taking it out healed a site.
        type: str
      site:
        description: That site.
        type: str
      run_id:
        description: The run that proved it.
        type: str
      at:
        description: When.
        type: str
      cause:
        description: The site's top cause there.
        type: str
      signatures:
        description: The 502-class log signatures of that site there.
        type: list
        elements: str
        default: []
  lock:
    description:
      - Take the host for an emergency run in the same round trip, exactly as C(wp502_run state=locked) does (storm
        control, then the lock), but only when a site does not answer at its origin (C(http.origin_healthy) of
        RV(sites) not true) and the plan (RV(plan), or RV(plan_every) with O(lock.plan)) has a step of O(lock.rungs)
        for it, so that a host whose every site answers, or where the run could climb no rung, is never locked.
        RV(lock) says what came of it.
      - The suboptions are C(wp502_run)'s options of the same names.
    type: dict
    suboptions:
      run_id:
        description: The run's id (letters, digits, dashes, dots, underscores).
        type: str
        required: true
      state_dir:
        description: Where locks, journals and backups live on the host.
        type: path
        default: /var/lib/wp502
      stale_minutes:
        description: A lock without a heartbeat for this long belongs to a dead run.
        type: int
        default: 15
      storm_minutes:
        description: Refuse a new run this soon after the last one ended (0 turns storm control off).
        type: int
        default: 10
      force:
        description: Take a live lock or ignore storm control. Only after checking the other run is gone.
        type: bool
        default: false
      owner:
        description: Where the run comes from, recorded in the lock and named in the refusal another run gets.
        type: dict
        suboptions:
          controller:
            description: The controller's host name.
            type: str
          user:
            description: Who runs the playbook on the controller.
            type: str
          pid:
            description: The controller process running the playbook, when known.
            type: int
          host:
            description: This host's name in the controller's inventory.
            type: str
      rungs:
        description: The rungs the run may climb (switched on, chosen by tags); all of them when left out.
        type: list
        elements: str
      plan:
        description: Which plan the run climbs, RV(plan) (the verdict's rungs) or RV(plan_every) (every rung after those).
        type: str
        choices: [plan, plan_every]
        default: plan
attributes:
  check_mode:
    support: full
    description:
      - The module only reads; check mode runs the same collection. With O(lock), check mode only says whether the
        host could be taken.
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
  description:
    - PHP-FPM versions, services, pools with settings, live workers, RSS and the recommendation.
    - "Each pool's C(recommendation): C(pm.max_children) (and spare settings for a dynamic pool), C(limited_by)
      (C(memory), C(cpu) or C(database)), C(reason) (for example C(limited by CPU: 2 cores x 4)), C(bounds) (each
      bound's number), C(reasons) (each bound's sentence) and C(basis) (the figures used). C(emergency_raise) is the
      bounded step the pool-limits rung would write, never past the recommendation."
  returned: always
  type: dict
frontend:
  description: The active front-end (nginx or apache), its servers and the PHP upstreams they use.
  returned: always
  type: dict
sites:
  description:
    - Every WordPress site of the host, the given ones first. The host's RV(verdict) is its worst site's.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The site's first server name that is not C(_), C(localhost), a wildcard or a regex; else its docroot.
      type: str
    names:
      description: Every server_name / ServerName / ServerAlias of its vhosts (wildcards and regexes kept).
      type: list
      elements: str
    docroot:
      description: Its document root.
      type: str
    server:
      description: The active front-end that serves it (C(nginx) or C(apache)).
      type: str
    vhosts:
      description:
        - Its server blocks or VirtualHosts (C(file), C(names), C(listen), C(default_server), C(root)), C(redirect) true
          for one that sends every request elsewhere, C(http) for one that sends plain HTTP to https.
      type: list
      elements: dict
    listen:
      description: Every listen address of its vhosts.
      type: list
      elements: str
    port:
      description: The port its origin is probed on (where a vhost carrying its id serves it, plain HTTP first).
      type: int
    scheme:
      description: C(http) or C(https).
      type: str
    default_server:
      description: Whether it answers requests for names no vhost carries, on one of its addresses.
      type: bool
    probe_host:
      description: The Host header its origin is probed with (its id, or C(localhost) when it has no usable name).
      type: str
    error_log:
      description: Its front-end error log.
      type: str
    access_log:
      description: Its front-end access log.
      type: str
    upstreams:
      description: Where its PHP requests go, as C(unix:/path) or C(host:port).
      type: list
      elements: str
    pools:
      description: Names of the pools of RV(fpm) listening on those upstreams.
      type: list
      elements: str
    fpm_services:
      description: The PHP-FPM services of those pools.
      type: list
      elements: str
    url:
      description: Its public URL, when given in O(sites).
      type: str
    given:
      description: Whether it was named in O(sites).
      type: bool
    wordpress:
      description:
        - Its WordPress, as an entry of RV(wordpress) (C(path), C(config), C(content_dir), C(table_prefix), C(multisite),
          C(plugins), C(mu_plugins), C(dropins), C(themes), C(bom_files), C(bom_files_inactive), C(bom_files_unproven),
          C(db), ...); None for a given site without a wp-config.php.
      type: dict
    http:
      description:
        - "Its probes: C(origin) (by path), C(origin_healthy) (None when it could not be asked in time) and, with a
          URL, C(public), C(cdn) and C(ray_id)."
      type: dict
    verdict:
      description: Its own ranked causes.
      type: list
      elements: dict
    top_cause:
      description: Its most likely cause.
      type: str
    failing:
      description: Whether its origin is not healthy or its public URL does not answer.
      type: bool
    signatures:
      description: The 502-class log signatures counted for this site in the window (its share of RV(logs)).
      type: list
      elements: str
    suspects:
      description: The plugins and themes its logs name most (C(type), C(slug), C(count), C(sources)), at most 5.
      type: list
      elements: dict
    known_culprits:
      description:
        - The plugins of O(known_culprits) active on this site, each with C(reasons) its evidence points to it
          (C(active here), named by this site's slowlog or error log, the same signature), C(strong) (more than
          active) and C(from) (where it was proved). A strong one puts the plugins rung first in its C(plan).
      type: list
      elements: dict
    plan:
      description: The ladder for this site alone, as RV(plan) gives it for the host.
      type: list
      elements: dict
  sample:
    - id: siteb.test
      names: [siteb.test, www.siteb.test]
      docroot: /var/www/siteb
      server: nginx
      listen: ["80"]
      port: 80
      scheme: http
      default_server: false
      probe_host: siteb.test
      upstreams: ["unix:/run/php/siteb.sock"]
      pools: [siteb]
      fpm_services: [php8.2-fpm]
      url: null
probe:
  description: How the sites were probed.
  returned: always
  type: dict
  contains:
    sites:
      description: Sites in the map.
      type: int
    probed:
      description: Sites whose origin was asked.
      type: int
    skipped:
      description: Sites that could not be asked before the deadline, each with C(id) and C(why).
      type: list
      elements: dict
    seconds:
      description: How long probing every site took.
      type: float
    targets:
      description: Where each site is asked (C(id), C(host), C(port), C(scheme), C(url)), as C(wp502_probe sites=) takes them.
      type: list
      elements: dict
  sample: {sites: 3, probed: 3, skipped: [], seconds: 0.214}
plan:
  description:
    - The emergency's steps for the failing sites (wp502_ladder.plan_ladder), most likely first, each C({rung, sites,
      cause, scope}), from each failing site's top cause only; host rungs (reload_fpm, restart_fpm, restart_db) once for
      every site they serve. Each site also carries its own C(plan) and C(plan_every).
  returned: always
  type: list
  elements: dict
  sample: [{rung: plugins, sites: [siteb.test], cause: crashing_worker, scope: site}]
plan_every:
  description: The same with every other rung of the ladder after the top cause's (wp502_emergency_ignore_verdict).
  returned: always
  type: list
  elements: dict
ladder:
  description: Every rung of the emergency ladder, in ladder order (wp502_ladder.LADDER).
  returned: always
  type: list
  elements: str
  sample: [reload_fpm, restart_fpm, restart_db, plugins, pool_limits, frontend, bom]
wordpress:
  description: One entry per site found, with its settings (no password), plugins, themes, file checks and database facts.
  returned: always
  type: list
  elements: dict
db:
  description: The first site's database facts (reachable, autoload size, slow and long-running queries); each site's are in RV(sites).
  returned: always
  type: dict
http:
  description:
    - The worst site's probes (the first failing site's, else the first site's), for one-site readers; every site's are
      in RV(sites).
    - Origin (and public URL) probes with status, latency and the CDN detected; C(origin_healthy) is the emergency
      ladder's test on the origin's answers (every path 200 within O(probe_timeout), the cookie paths setting one).
  returned: always
  type: dict
logs:
  description: The wp502_log_scan result over every error log and slowlog found.
  returned: always
  type: dict
host:
  description: Memory, load, CPUs, MySQL RSS, disk usage, OOM kills and the database service.
  returned: always
  type: dict
  contains:
    database:
      description:
        - "The host's MariaDB/MySQL: C(service) (the C(mariadb), C(mysql) or C(mysqld) unit, None when there is none),
          C(active) (its systemd state), C(socket) (from the server sections of my.cnf, else /run/mysqld/mysqld.sock)
          and C(socket_exists)."
      type: dict
      sample: {service: mariadb, active: active, socket: /run/mysqld/mysqld.sock, socket_exists: true}
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
lock:
  description:
    - With O(lock), when a site failed at its origin, what C(wp502_run state=locked) returns (C(run_id), C(lock), the
      lock now on the host, C(last_run), C(recovered)), with C(msg) when the host was refused (another run holds it,
      or storm control).
  returned: when O(lock) is given, a site does not answer at its origin and the plan has a step of O(lock.rungs) for it
  type: dict
  sample: {"changed": true, "run_id": "20261201T213005-wp1-3f9a2c", "recovered": null, "last_run": null,
           "lock": {"run_id": "20261201T213005-wp1-3f9a2c", "started_utc": "2026-12-01T21:30:05Z"}}
collect_seconds:
  description: How long the collection took on the host.
  returned: always
  type: float
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wp502_collect import Collector
from ansible.module_utils.wp502_host import deadline_runner
from ansible.module_utils.wp502_journal import lock_options, take_host
from ansible.module_utils.wp502_ladder import climbs, failing_at_origin
from ansible.module_utils.wp502_logscan import lower_priority, parse_since


def main():
    module = AnsibleModule(
        argument_spec=dict(
            since=dict(type="str", default="1h"),
            sites=dict(type="list", elements="dict", default=[], required_one_of=[["path", "host"]], options=dict(
                path=dict(type="path"),
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
            workers_per_cpu=dict(type="int", default=4),
            known_culprits=dict(type="list", elements="dict", default=[], options=dict(
                plugin=dict(type="str", required=True),
                host=dict(type="str"),
                site=dict(type="str"),
                run_id=dict(type="str"),
                at=dict(type="str"),
                cause=dict(type="str"),
                signatures=dict(type="list", elements="str", default=[]),
            )),
            lock=dict(type="dict", options=dict(
                run_id=dict(type="str", required=True),
                rungs=dict(type="list", elements="str"),
                plan=dict(type="str", default="plan", choices=["plan", "plan_every"]),
                **lock_options()
            )),
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
    if p["workers_per_cpu"] < 1:
        module.fail_json(msg="workers_per_cpu must be 1 or more, not %s" % p["workers_per_cpu"])
    if p["probe_timeout"] <= 0 or p["probe_timeout"] > 120:
        module.fail_json(msg="probe_timeout must be between 0 and 120 seconds, not %s" % p["probe_timeout"])
    if p["low_priority"]:
        lower_priority()

    # Every command under its deadline (nginx -T, systemctl, mysql, journalctl, dmesg): a hung one is
    # killed and named in errors, and the round trip goes on.
    collector = Collector(deadline_runner(), since, probe_timeout=p["probe_timeout"], scan_files=p["scan_files"],
                          recent_days=p["recent_days"], max_php_files=p["max_php_files"],
                          os_reserve=p["os_reserve_mb"] * 1024 * 1024 if p["os_reserve_mb"] else None,
                          db=p["database"], probe=p["probe"], sites=p["sites"], extra_logs=p["extra_logs"],
                          cookie_paths=p["probe_cookie_paths"], known_culprits=p["known_culprits"],
                          workers_per_cpu=p["workers_per_cpu"])
    evidence = collector.collect()
    changed = False
    lock = p["lock"]
    # Only a host where a site fails at its origin is taken (the emergency's ladder starts there); the
    # lock comes after the collection, which only reads.
    if lock and climbs(evidence.get(lock["plan"]), failing_at_origin(evidence.get("sites")), lock["rungs"]):
        evidence["lock"] = take_host(lock["run_id"], lock["state_dir"], stale_minutes=lock["stale_minutes"],
                                     storm_minutes=lock["storm_minutes"], force=lock["force"], owner=lock["owner"],
                                     check_mode=module.check_mode)
        changed = bool(evidence["lock"].get("changed")) and not module.check_mode
    module.exit_json(changed=changed, **evidence)


if __name__ == "__main__":
    main()
