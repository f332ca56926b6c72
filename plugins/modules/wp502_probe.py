#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: wp502_probe
short_description: Ask a WordPress origin whether it answers, bypassing any CDN, with a deadline
description:
  - Requests O(paths) from the origin on the target itself (127.0.0.1 with the site's Host header), side by side,
    and says whether the site is healthy. The emergency ladder runs it after every rung and stops at the first
    rung after which the site is healthy.
  - Healthy means every path answered one of O(accept) within O(deadline) seconds. With O(retries), an unhealthy
    answer is asked again after O(delay) seconds (a restarted pool needs a moment), up to O(retries) times.
  - With O(url), the public URL is asked too (as a visitor, through the CDN) and the CDN is named from the response
    headers (Cloudflare Ray ID, Fastly, BunnyCDN, CloudFront, Akamai), so that a 502 at the edge with a healthy
    origin is told apart.
version_added: "0.1.0"
author:
  - wp502 contributors (@wp502)
options:
  host:
    description: Host header sent to the origin (the site's name).
    type: str
    default: localhost
  port:
    description: Port the origin's front-end listens on.
    type: int
    default: 80
  scheme:
    description: C(https) for an origin that only listens with TLS (its certificate is not checked).
    type: str
    choices: [http, https]
    default: http
  paths:
    description: Paths that must all answer.
    type: list
    elements: str
    default: [/, /wp-login.php]
  deadline:
    description: Seconds each path has to answer.
    type: float
    default: 5
  accept:
    description: Status codes that count as healthy.
    type: list
    elements: int
    default: [200]
  cookie_paths:
    description:
      - Paths whose answer must also set a cookie. WordPress's login page always sets C(wordpress_test_cookie); a
        login page that answers 200 without it has sent output before its headers (a UTF-8 BOM, whitespace before
        C(<?php)), which breaks logins and redirects. An empty list turns the check off.
    type: list
    elements: str
    default: [/wp-login.php]
  retries:
    description: How many more times to ask when the answer is not healthy.
    type: int
    default: 0
  delay:
    description: Seconds between two tries.
    type: float
    default: 2
  url:
    description: The site's public URL (C(http://) or C(https://)), asked too when given.
    type: str
  sites:
    description:
      - Probe every one of these sites instead of O(host) (O(host), O(port), O(scheme) and O(url) are then ignored),
        all at once, within one deadline (C(wp502_evidence) lists them in C(probe.targets) and C(sites)).
      - Each is a dict with C(id) (required), C(host) or C(probe_host) (the Host header), C(port), C(scheme) and
        C(url) (its public URL, asked as a visitor would).
    type: list
    elements: dict
  answering:
    description:
      - With O(sites), the ids of the sites that answered before the change being checked. The result then says
        whether the change healed (RV(judgement)), and retries go on until it has or O(retries) run out.
    type: list
    elements: str
  expect:
    description:
      - With O(answering), the ids of the sites the change was meant to heal. Retries go on until they answer and no
        site of O(answering) fails (instead of until every site answers), so that a step for one site does not wait
        on another that it cannot heal.
    type: list
    elements: str
attributes:
  check_mode:
    support: full
    description: A probe changes nothing; it runs in check mode too.
  diff_mode:
    support: none
    description: Nothing is changed.
"""

EXAMPLES = r"""
- name: Is the site back?
  wp502_probe:
    host: www.example.com
    deadline: 5
    retries: 3
  register: wp502_probe

- name: Did the rung heal every site that failed, and leave every other one answering?
  wp502_probe:
    sites: "{{ wp502_evidence.probe.targets }}"
    answering: [shop.example.com]
    retries: 3
  register: wp502_probe_sites

- name: Origin or CDN?
  wp502_probe:
    host: www.example.com
    url: https://www.example.com
"""

RETURN = r"""
healthy:
  description: Whether every path answered an accepted status within the deadline (on the last try).
  returned: always
  type: bool
  sample: true
origin:
  description: Per path, the status (null when nothing answered), seconds taken, error and redirect location.
  returned: always
  type: dict
  sample: {"/": {"status": 200, "elapsed": 0.12}, "/wp-login.php": {"status": 200, "elapsed": 0.05}}
public:
  description: The same for the public URL, with the CDN detected.
  returned: when url is given
  type: dict
cdn:
  description: The CDN that answered the public URL, and its request id (Cloudflare Ray ID).
  returned: when url is given
  type: dict
  sample: {"name": "cloudflare", "request_id": "8f1c2a3b4c5d6e7f-AMS"}
sites:
  description: With O(sites), per site id whether it answers at its origin (C(healthy)), its probes and the public ones.
  returned: when sites is given
  type: dict
  sample: {"siteb.test": {"healthy": false, "origin": {"/": {"status": 502, "elapsed": 0.01}}}}
failing:
  description: With O(sites), the ids of the sites that do not answer at their origin (on the last try).
  returned: when sites is given
  type: list
  elements: str
  sample: [siteb.test]
not_asked:
  description:
    - With O(sites), the sites that could not be asked within the deadline, and why.
    - Formerly C(skipped), a key Ansible reads as the task's own state (ansible-core 2.21 turns it into a boolean).
  returned: when sites is given
  type: list
  elements: dict
judgement:
  description:
    - With O(answering), C(healed) (every site failing before answers now, and every site answering before still
      does), C(fixed) (answer now, failed before), C(broke) (answered before, fail now), C(answering), C(failing).
  returned: when answering is given
  type: dict
  sample: {"healed": false, "fixed": [siteb.test], "broke": [], "answering": [a.test, siteb.test], "failing": [c.test]}
tries:
  description: How many times the origin was asked.
  returned: always
  type: int
  sample: 1
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wp502_ask import URL, ask_sites, check_limits, probe_options
from ansible.module_utils.wp502_http import healthy, probe_paths


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", default="localhost"),
            port=dict(type="int", default=80),
            scheme=dict(type="str", default="http", choices=["http", "https"]),
            url=dict(type="str"),
            sites=dict(type="list", elements="dict"),
            **probe_options()
        ),
        supports_check_mode=True,
    )
    p = module.params
    wrong = check_limits(p["deadline"], p["retries"], p["delay"], p["paths"])
    if wrong:
        module.fail_json(msg=wrong)
    if not 0 < p["port"] < 65536:
        module.fail_json(msg="port must be between 1 and 65535, not %d" % p["port"])
    if p["url"] and not URL.match(p["url"]):
        module.fail_json(msg="url must be an http:// or https:// URL, not %r" % p["url"])

    if p["sites"] is not None:
        try:
            module.exit_json(**ask_sites(p["sites"], p["deadline"], accept=p["accept"], cookie_paths=p["cookie_paths"],
                                         paths=p["paths"], retries=p["retries"], delay=p["delay"],
                                         answering=p["answering"], expect=p["expect"]))
        except ValueError as exc:
            module.fail_json(msg=str(exc))
    if p["answering"] is not None:
        module.fail_json(msg="answering is only used with sites")

    tries = 0
    while True:
        tries += 1
        origin = probe_paths(p["paths"], p["deadline"], host_header=p["host"], port=p["port"], scheme=p["scheme"])
        ok = healthy(origin, p["deadline"], accept=p["accept"], cookie_paths=p["cookie_paths"])
        if ok or tries > p["retries"]:
            break
        time.sleep(p["delay"])
    result = {"changed": False, "healthy": ok, "origin": origin, "tries": tries}
    if p["url"]:
        public = probe_paths(p["paths"], p["deadline"], url=p["url"])
        found = [(r.get("cdn"), r.get("request_id")) for r in public.values() if r.get("cdn")]
        result["public"] = public
        result["cdn"] = {"name": found[0][0], "request_id": found[0][1]} if found else {"name": None, "request_id": None}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
