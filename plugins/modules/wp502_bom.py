#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: wp502_bom
short_description: Strip UTF-8 byte order marks that make PHP files send output before their headers
description:
  - The BOM rung of the emergency ladder. A PHP file saved with a UTF-8 BOM sends three bytes before any header,
    so redirects, cookies (logins) and any later C(header()) fail with "headers already sent".
  - Each of O(files) (relative to O(path)) that starts with one or more BOMs is backed up in the journal of O(run_id)
    (exact bytes, file type, owner, mode and SELinux context) and rewritten without them. Files without a BOM are
    left alone.
  - Writes like C(lineinfile) does. A file that is a symlink (a plugin linked in from a shared directory) is
    written through the link; the clean bytes go to a temp file beside the real file, which then replaces it
    atomically (C(atomic_move), keeping owner, mode and SELinux context); the link stays the same link.
    A name must stay under O(path) as written (no C(..) out of it), or under O(content_dir) when that is given,
    or be C(../wp-config.php) (WordPress reads its config one level above its root when the root has none),
    and both it and the real file must be C(.php).
version_added: "0.1.0"
author:
  - wp502 contributors (@wp502)
options:
  path:
    description: The WordPress root the files are relative to.
    type: path
    required: true
  files:
    description: PHP files to check, relative to O(path) (as C(wp502_evidence) lists them in C(bom_files)).
    type: list
    elements: str
    required: true
  content_dir:
    description:
      - The site's wp-content when C(WP_CONTENT_DIR) puts it outside O(path) (the C(content_dir) of the site's
        C(wp502_evidence) entry). Names that leave O(path) as written (C(../shared/wp-content/plugins/x/x.php))
        are then accepted when they land under this directory, and refused otherwise.
    type: path
  run_id:
    description: The emergency run that holds the host; its journal keeps the backups.
    type: str
    required: true
  state_dir:
    description: Where locks, journals and backups live on the host.
    type: path
    default: /var/lib/wp502
  step:
    description:
      - The journal step the changes are recorded under, so that C(wp502_run state=rolled_back step=...) undoes
        exactly this call (the emergency gives each rung of a run its own, such as C(bom-4)).
    type: str
    default: bom
  services:
    description:
      - The PHP-FPM units that run these files (the C(fpm_services) of the site's C(wp502_evidence) entry).
      - Each change's journal entry keeps them, so that C(wp502_run state=rolled_back) names them in its C(reload),
        as OPcache may run the stripped copy until PHP-FPM reloads (and never re-reads it with
        C(opcache.validate_timestamps=0)). This module reloads nothing itself.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Lists the files that would be changed; writes nothing.
  diff_mode:
    support: full
    description: The first line of each file before and after (the BOM shown as C(<U+FEFF>)); the headers name the real file.
"""

EXAMPLES = r"""
- name: Strip the BOMs the evidence found
  wp502_bom:
    path: /var/www/wordpress
    files: "{{ wp502_evidence.wordpress[0].bom_files }}"
    run_id: "{{ wp502_run_id }}"

- name: Strip them on a site whose wp-content lives outside its docroot
  wp502_bom:
    path: "{{ wp502_evidence.sites[0].wordpress.path }}"
    content_dir: "{{ wp502_evidence.sites[0].wordpress.content_dir }}"
    files: "{{ wp502_evidence.sites[0].wordpress.bom_files }}"
    run_id: "{{ wp502_run_id }}"

- name: Strip them and have rollback reload the site's PHP-FPM (OPcache) after putting them back
  wp502_bom:
    path: "{{ wp502_evidence.sites[0].wordpress.path }}"
    files: "{{ wp502_evidence.sites[0].wordpress.bom_files }}"
    services: "{{ wp502_evidence.sites[0].fpm_services }}"
    run_id: "{{ wp502_run_id }}"
"""

RETURN = r"""
stripped:
  description: Files (relative to O(path)) that had a BOM and no longer do.
  returned: always
  type: list
  elements: str
backups:
  description: Where each file's previous bytes are kept, by file.
  returned: when changed and not in check mode
  type: dict
not_stripped:
  description:
    - Files that were not changed, with the reason (no BOM, missing, outside O(path) and O(content_dir)).
    - Formerly C(skipped), a key Ansible reads as the task's own state (a task with such files looked skipped,
      and ansible-core 2.21 turns the list into a boolean).
  returned: always
  type: list
  elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wp502_edit import strip_bom
from ansible.module_utils.wp502_journal import RUN_ID, Journal, write_candidate


def _first_line(data):
    line = data.split(b"\n", 1)[0][:200].decode("utf-8", "replace")
    return line.replace("\ufeff", "<U+FEFF>") + "\n"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            files=dict(type="list", elements="str", required=True),
            run_id=dict(type="str", required=True),
            state_dir=dict(type="path", default="/var/lib/wp502"),
            content_dir=dict(type="path"),
            step=dict(type="str", default="bom"),
            services=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not RUN_ID.match(p["run_id"]) or not RUN_ID.match(p["step"]):
        module.fail_json(msg="run_id %r and step %r must be letters, digits, dots, dashes or underscores"
                             % (p["run_id"], p["step"]))
    root = os.path.realpath(p["path"])
    # wp-content outside the docroot: its files are named relative to the docroot as written (../content/...)
    content = [os.path.realpath(p["content_dir"]), os.path.normpath(os.path.abspath(p["content_dir"]))] \
        if p["content_dir"] else None
    stripped, skipped, backups, diffs, todo = [], [], {}, [], []
    for rel in p["files"]:
        named = os.path.normpath(os.path.join(root, rel))
        inside = named.startswith(root + os.sep) or (rel == "../wp-config.php" and not os.path.exists(os.path.join(root, "wp-config.php")))
        if not inside and content is not None:
            named = os.path.normpath(os.path.join(os.path.abspath(p["path"]), rel))
            inside = any(named.startswith(c + os.sep) for c in content)
        full = os.path.realpath(named)
        if not inside or not named.endswith(".php") or not full.endswith(".php"):
            where = root if content is None else "%s or %s" % (root, content[0])
            skipped.append({"file": rel, "reason": "not a PHP file under %s" % where})
            continue
        try:
            with open(full, "rb") as fh:
                data = fh.read()
        except (IOError, OSError) as exc:
            skipped.append({"file": rel, "reason": str(exc)})
            continue
        clean = strip_bom(data)
        if clean == data:
            skipped.append({"file": rel, "reason": "no BOM"})
            continue
        todo.append((rel, named, full, clean))
        diffs.append({"before": _first_line(data), "after": _first_line(clean), "before_header": full, "after_header": full})
    result = {"changed": bool(todo), "stripped": [t[0] for t in todo], "not_stripped": skipped}
    if module._diff and diffs:
        result["diff"] = diffs
    if module.check_mode or not todo:
        module.exit_json(**result)
    journal = Journal(p["run_id"], p["state_dir"])
    if not journal.holds_lock():
        module.fail_json(msg="run %s does not hold this host: take it first (wp502_run state=locked run_id=%s)"
                             % (p["run_id"], p["run_id"]))
    for rel, named, full, clean in todo:
        seq = journal.intend_file(p["step"], named, reload=p["services"])
        tmp = None
        try:
            tmp = write_candidate(full, clean)
            module.atomic_move(tmp, full)
        except Exception as exc:  # noqa: BLE001 - atomic_move raises plain Exception
            if tmp and os.path.lexists(tmp):
                os.unlink(tmp)
            journal.rollback(seqs=[seq])
            module.fail_json(msg="cannot rewrite %s: %s (left as it was; files already stripped: %s)"
                                 % (full, exc, ", ".join(stripped) or "none"), stripped=stripped, backups=backups)
        journal.done(seq)
        stripped.append(rel)
        backups[rel] = os.path.join(journal.run_dir, "backup", str(seq))
    result.update(stripped=stripped, backups=backups)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
