# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)

# The documentation of the action plugin plugins/action/wp502_write_report.py, which does all the work on the
# controller: nothing here runs (as ansible.builtin.debug's or template's module file documents its action).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: wp502_write_report
short_description: Write a report's files on the controller (no module run, check mode included)
description:
  - Writes the files of a wp502 report (the audit's fleet report, an emergency run's results) into O(dir) on the
    controller, in the controller's own process (no module run, no Python start-up or checksum round per file).
  - Each file is written atomically (a temporary file beside it, then a rename) with mode C(0644); O(dir) and the
    directories of the files are created as needed. The target is never touched.
  - With O(hosts), writes C(hosts/HOST.json) from each host's C(wp502_evidence_result), read from the hosts'
    variables one host at a time (not through a template) and serialised once, as C(to_nice_json) would.
  - With O(summary) (C(wp502_fleet_summary)'s), the result also has RV(console), the bounded summary for the
    console, whatever the fleet's size.
version_added: "0.1.0"
author:
  - wp502 contributors (@wp502)
options:
  dir:
    description: Directory to create (with its parents) and write into.
    type: path
    required: true
  files:
    description:
      - File names (relative paths inside O(dir), no C(..)) and their text.
      - At least one of O(files) and O(hosts) must be given.
    type: dict
    default: {}
  hosts:
    description:
      - Hosts whose C(wp502_evidence_result) the action writes as C(hosts/HOST.json) (an object whose C(collected) is
        false when a host has none), read from the hosts' variables one at a time, not through a template.
    type: list
    elements: str
    default: []
  summary:
    description: The fleet summary (C(wp502_fleet_summary)); when given, the result has RV(console).
    type: dict
  console_limit:
    description: Unhealthy hosts named in RV(console); the others are counted ("and N more").
    type: int
    default: 20
  title:
    description: The report's title, on the first line of RV(console).
    type: str
    default: wp502 fleet audit
  generated:
    description: When the audit ran, on the first line of RV(console).
    type: str
    default: ""
attributes:
  action:
    support: full
    details: The action plugin does the work on the controller; this file only documents it.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details:
      - Writes the report in check mode too (the report of a C(--check) run is what shows the plan); it writes on
        the controller only and changes no target.
  diff_mode:
    support: none
  platform:
    platforms: all
    details: Runs on the controller (POSIX), whatever the target.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
notes:
  - The roles C(wp502_report) and C(wp502_emergency) write their reports with it.
seealso:
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Write an emergency run's results and page
  wp502.wp502.wp502_write_report:
    dir: /var/lib/wp502/reports/emergency-20261124T020000Z
    files:
      results.json: "{{ results | to_nice_json }}"
      report.html: "{{ results | wp502.wp502.wp502_emergency_html('wp502 emergency run', now(utc=true).isoformat()) }}"

- name: Write each host's evidence and the fleet's pages, and get the console summary
  wp502.wp502.wp502_write_report:
    dir: /var/lib/wp502/reports/audit-20261124T020000Z
    hosts: "{{ groups['wordpress'] }}"
    summary: "{{ summary }}"
    console_limit: 20
    files:
      summary.json: "{{ summary | to_nice_json }}"
      report.html: "{{ summary | wp502.wp502.wp502_report_html('wp502 fleet audit', '2026-11-24T02:00:00Z') }}"
  register: written
"""

RETURN = r"""
dir:
  description: The directory the files were written into (absolute, with C(~) expanded).
  returned: always
  type: str
  sample: /var/lib/wp502/reports/audit-20261124T020000Z
written:
  description: The paths written, the hosts' files first.
  returned: always
  type: list
  elements: str
  sample: ["/var/lib/wp502/reports/audit-20261124T020000Z/hosts/wp1.json",
           "/var/lib/wp502/reports/audit-20261124T020000Z/report.html"]
console:
  description:
    - The audit on the console in a bounded number of lines, whatever the fleet's size (the counts by status and by
      cause, the largest groups, the unhealthy hosts up to O(console_limit), and where C(report.html) is).
  returned: when O(summary) is given
  type: list
  elements: str
  sample: ["wp502 fleet audit, 2026-11-24T02:00:00Z: 3 hosts: 2 healthy, 1 unhealthy", "Causes: max_children 1"]
"""
