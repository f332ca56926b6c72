#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: wp502_config
short_description: Change a PHP-FPM pool, nginx or Apache setting minimally, validated, backed up and journaled
description:
  - The file changes of the emergency ladder's pool-limits and front-end rungs.
  - Edits only the directives named in O(settings), keeping every other byte of the file (comments, order,
    indentation, line endings). C(fpm_pool) sets them in the O(pool) section (appending what is not set);
    C(nginx) in every block that passes requests to FastCGI (C(fastcgi_pass)); C(apache) in every
    C(<VirtualHost>) (or at the top level of a file without one).
  - Writes like C(lineinfile) does. The path is resolved (C(os.path.realpath)) and the change is written through
    a symlink into the real file (Debian's C(sites-enabled/SITE) stays the link to C(sites-available/SITE)); the
    new text goes to a temp file beside the real file, O(validate) checks that candidate, and only then does the
    candidate replace the live file (C(atomic_move), keeping its owner, mode and SELinux context). A candidate
    the validator refuses never goes live, not even for a moment; the module fails with the validator's output.
  - The validator checks the whole configuration the running service would load with the candidate in place
    (C(php-fpm8.2 -t), C(nginx -t), C(apachectl -t)), although the file is only included by the main config; it
    runs in a private mount namespace in which the candidate is bind-mounted over the real file
    (C(unshare --mount --propagation private), then C(mount --bind CANDIDATE REAL)), so nothing outside that one
    process sees it. This needs root (CAP_SYS_ADMIN) and C(unshare)/C(mount); where they are missing the change
    is refused before anything is written. A O(validate) command with a C(%s) argument (C([nginx, -t, -c, %s])
    for a main config) is run directly with the candidate's path instead, as C(lineinfile) does.
  - The file's exact bytes, its type (file or symlink with its target), owner, mode and SELinux context are
    kept in the journal of O(run_id) before the candidate goes live; rollback (C(wp502_run state=rolled_back))
    puts back all of them. Nothing is reloaded here; the caller reloads after a change.
version_added: "0.1.0"
author:
  - wp502 contributors (@wp502)
options:
  kind:
    description: What the file is.
    type: str
    required: true
    choices: [fpm_pool, nginx, apache]
  path:
    description: The file to change.
    type: path
    required: true
  pool:
    description: The pool section (C([www])) to change, for C(kind=fpm_pool).
    type: str
  settings:
    description: 'Directive names and values to set, such as C({"pm.max_children": 24}) or C({"fastcgi_read_timeout": "120s"}).'
    type: dict
    required: true
  validate:
    description:
      - Command (argv) that validates the configuration with the candidate in place of the file, before the candidate
        goes live; the change is refused when it exits non-zero.
      - Without a C(%s) argument it runs in a private mount namespace where the candidate is bind-mounted over the
        real file; with one, C(%s) is replaced by the candidate's path and the command runs directly.
      - Empty means no validation (the candidate is still written beside the file and moved over it atomically).
    type: list
    elements: str
    default: []
  run_id:
    description: The emergency run that holds the host; its journal keeps the backup.
    type: str
    required: true
  step:
    description: The rung the change belongs to (rollback of one rung undoes only its changes).
    type: str
    default: config
  state_dir:
    description: Where locks, journals and backups live on the host.
    type: path
    default: /var/lib/wp502
attributes:
  check_mode:
    support: full
    description: Shows the change (with C(--diff)) and writes nothing; the validator is not run.
  diff_mode:
    support: full
    description: The file before and after; the headers name the real file when the path is a symlink.
notes:
  - The run must hold the host (C(wp502_run) with C(state=locked)).
"""

EXAMPLES = r"""
- name: Raise the pool's limits, validated by FPM itself
  wp502_config:
    kind: fpm_pool
    path: /etc/php/8.2/fpm/pool.d/www.conf
    pool: www
    settings:
      pm.max_children: 24
      pm.start_servers: 6
      pm.min_spare_servers: 2
      pm.max_spare_servers: 8
    validate: [php-fpm8.2, -t]
    run_id: "{{ wp502_run_id }}"
    step: pool_limits

- name: Give PHP longer before nginx answers 504
  wp502_config:
    kind: nginx
    path: /etc/nginx/sites-enabled/wordpress
    settings:
      fastcgi_read_timeout: 120s
    validate: [nginx, -t]
    run_id: "{{ wp502_run_id }}"
    step: frontend
"""

RETURN = r"""
changes:
  description: Each directive changed, with its value before (null when it was not set) and after.
  returned: always
  type: list
  elements: dict
  sample: [{"key": "pm.max_children", "before": "5", "after": "24"}]
backup:
  description: Where the file's previous bytes are kept (the journal's backup).
  returned: when changed and not in check mode
  type: str
real_path:
  description: The file the change is written to (O(path) with its symlinks resolved).
  returned: always
  type: str
  sample: /etc/nginx/sites-available/wordpress
validation:
  description: Output of the validator.
  returned: when the validator ran
  type: str
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wp502_edit import set_apache_directives, set_fpm_pool, set_nginx_directives
from ansible.module_utils.wp502_host import CommandTimeoutError, deadline_runner
from ansible.module_utils.wp502_journal import RUN_ID, Journal, write_candidate

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\[\]-]*$")
# Run inside a private mount namespace: the candidate is bind-mounted over the real file, then the
# validator is exec'd. Data only ever reaches it as positional arguments ($1 candidate, $2 real file,
# then the validator's argv), never through the script text. 125: the bind mount itself failed.
BIND_SCRIPT = 'mount --bind "$1" "$2" || exit 125; shift 2; exec "$@"'


# Seconds a validator (nginx -t, php-fpm -t, apachectl -t) may take.
VALIDATE_TIMEOUT = 60


def namespace_validator(module):
    """The argv prefix that runs a validator with the candidate over the real file, or (None, why not)."""
    unshare = module.get_bin_path("unshare")
    mount = module.get_bin_path("mount")
    shell = module.get_bin_path("sh") or ("/bin/sh" if os.path.exists("/bin/sh") else None)
    missing = [name for name, found in (("unshare", unshare), ("mount", mount), ("sh", shell)) if not found]
    if missing:
        return None, "%s not found" % ", ".join(missing)
    prefix = [unshare, "--mount", "--propagation", "private", "--"]
    try:
        rc, out, err = deadline_runner()([*prefix, "true"], timeout=15)
    except CommandTimeoutError as exc:
        return None, str(exc)
    if rc != 0:
        return None, "a private mount namespace is not allowed here (%s)" % ((err or out).strip() or "rc=%d" % rc)
    return [*prefix, shell, "-c", BIND_SCRIPT, "wp502-validate"], None


def validate_candidate(module, validate, candidate, real):
    """Run the validator against the candidate; returns (rc, output). The live file is not touched."""
    if any("%s" in arg for arg in validate):
        argv = [arg.replace("%s", candidate) for arg in validate]
    else:
        prefix, why = namespace_validator(module)
        if prefix is None:
            return None, why
        argv = [*prefix, candidate, real, *list(validate)]
    try:
        # A validator has a deadline too: one that hangs is a refusal naming it, never a stalled run.
        rc, out, err = deadline_runner()(argv, timeout=VALIDATE_TIMEOUT)
    except CommandTimeoutError as exc:
        rc, out, err = 124, "", str(exc)
    except Exception as exc:  # noqa: BLE001 - a validator that cannot run is a failed validation
        rc, out, err = 127, "", str(exc)
    output = (out + err).strip()
    if rc == 125 and "%s" not in " ".join(validate):
        output = "could not bind-mount the candidate over %s: %s" % (real, output)
    return rc, output


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kind=dict(type="str", required=True, choices=["fpm_pool", "nginx", "apache"]),
            path=dict(type="path", required=True),
            pool=dict(type="str"),
            settings=dict(type="dict", required=True),
            validate=dict(type="list", elements="str", default=[]),
            run_id=dict(type="str", required=True),
            step=dict(type="str", default="config"),
            state_dir=dict(type="path", default="/var/lib/wp502"),
        ),
        required_if=[("kind", "fpm_pool", ["pool"])],
        supports_check_mode=True,
    )
    p = module.params
    if not RUN_ID.match(p["run_id"]) or not RUN_ID.match(p["step"]):
        module.fail_json(msg="run_id and step must be letters, digits, dots, dashes or underscores")
    bad = [k for k, v in p["settings"].items() if not _NAME.match(str(k)) or re.search(r"[\r\n;{}]", str(v))]
    if bad or not p["settings"]:
        module.fail_json(msg="settings must name directives and give single-line values: %s" % (", ".join(map(str, bad)) or "(none)"))
    path = p["path"]
    real = os.path.realpath(path)
    try:
        with open(real, "rb") as fh:
            raw = fh.read()
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot read %s: %s" % (path if real == path else "%s (%s)" % (path, real), exc))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        module.fail_json(msg="%s is not UTF-8 text: not edited" % real)
    try:
        if p["kind"] == "fpm_pool":
            new, changes = set_fpm_pool(text, p["pool"], p["settings"])
        elif p["kind"] == "nginx":
            new, changes = set_nginx_directives(text, p["settings"])
        else:
            new, changes = set_apache_directives(text, p["settings"])
    except ValueError as exc:
        module.fail_json(msg="%s: %s" % (real, exc))
    result = {"changed": new != text, "changes": changes, "real_path": real}
    if module._diff and new != text:
        result["diff"] = {"before": text, "after": new, "before_header": real, "after_header": real}
    if module.check_mode or new == text:
        module.exit_json(**result)

    journal = Journal(p["run_id"], p["state_dir"])
    if not journal.holds_lock():
        module.fail_json(msg="run %s does not hold this host: take it first (wp502_run state=locked run_id=%s)"
                             % (p["run_id"], p["run_id"]))
    try:
        candidate = write_candidate(real, new.encode("utf-8"))
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot write a candidate beside %s: %s (nothing changed)" % (real, exc))
    refused = dict(result)
    refused["changed"] = False  # a refusal changes nothing
    try:
        if p["validate"]:
            rc, output = validate_candidate(module, p["validate"], candidate, real)
            if rc is None:
                module.fail_json(msg="refusing to change %s: the candidate cannot be validated before it goes live (%s). "
                                     "Run as root (become: true) where unshare(1) may create a mount namespace, or give "
                                     "a validate command that takes the candidate's path as %%s" % (real, output), **refused)
            result["validation"] = refused["validation"] = output[-2000:]
            if rc != 0:
                module.fail_json(msg="%s rejected the change to %s; the live file was not touched (byte for byte as it was): %s"
                                     % (" ".join(p["validate"]), real, output[-500:]), **refused)
        seq = journal.intend_file(p["step"], path)
        try:
            module.atomic_move(candidate, real)
        except Exception as exc:  # noqa: BLE001 - atomic_move raises plain Exception
            journal.rollback(seqs=[seq])
            module.fail_json(msg="cannot replace %s: %s (left as it was)" % (real, exc), **refused)
        journal.done(seq)
    finally:
        if os.path.lexists(candidate):
            os.unlink(candidate)
    result["backup"] = os.path.join(journal.run_dir, "backup", str(seq))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
