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
  - The file's exact bytes are backed up in the journal of O(run_id) before it is written; then O(validate) runs
    (C(php-fpm8.2 -t), C(nginx -t), C(apachectl configtest)). When validation fails the file is put back byte for
    byte and the module fails with the validator's output, so a change that does not validate never goes live
    (nothing is reloaded here; the caller reloads after a change).
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
      - Command (argv) that validates the configuration after the change; the change is undone when it exits non-zero.
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
    description: The file before and after.
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
validation:
  description: Output of the validator.
  returned: when the validator ran
  type: str
"""

import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wp502_edit import set_apache_directives, set_fpm_pool, set_nginx_directives
from ansible.module_utils.wp502_journal import RUN_ID, Journal

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\[\]-]*$")


def _write_keeping_owner(path, data):
    st = os.stat(path)
    fd, tmp = tempfile.mkstemp(prefix=".wp502-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, st.st_mode & 0o7777)
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except OSError:
            pass
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        module.fail_json(msg="%s is not UTF-8 text: not edited" % path)
    try:
        if p["kind"] == "fpm_pool":
            new, changes = set_fpm_pool(text, p["pool"], p["settings"])
        elif p["kind"] == "nginx":
            new, changes = set_nginx_directives(text, p["settings"])
        else:
            new, changes = set_apache_directives(text, p["settings"])
    except ValueError as exc:
        module.fail_json(msg="%s: %s" % (path, exc))
    result = {"changed": new != text, "changes": changes}
    if module._diff and new != text:
        result["diff"] = {"before": text, "after": new, "before_header": path, "after_header": path}
    if module.check_mode or new == text:
        module.exit_json(**result)

    journal = Journal(p["run_id"], p["state_dir"])
    if not journal.holds_lock():
        module.fail_json(msg="run %s does not hold this host: take it first (wp502_run state=locked run_id=%s)"
                             % (p["run_id"], p["run_id"]))
    seq = journal.intend_file(p["step"], path)
    try:
        _write_keeping_owner(path, new.encode("utf-8"))
    except (IOError, OSError) as exc:
        journal.rollback(seqs=[seq])
        module.fail_json(msg="cannot write %s: %s (left as it was)" % (path, exc))
    journal.done(seq)
    result["backup"] = os.path.join(journal.run_dir, "backup", str(seq))
    if p["validate"]:
        try:
            rc, out, err = module.run_command(p["validate"])
        except Exception as exc:  # noqa: BLE001 - a validator that cannot run is a failed validation
            rc, out, err = 127, "", str(exc)
        result["validation"] = (out + err).strip()[-2000:]
        if rc != 0:
            journal.rollback(seqs=[seq])
            with open(path, "rb") as fh:
                back = fh.read() == raw
            module.fail_json(msg="%s rejected the change to %s, which was put back %s: %s"
                                 % (" ".join(p["validate"]), path, "byte for byte" if back else "(CHECK IT: bytes differ)",
                                    result["validation"][-500:]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
