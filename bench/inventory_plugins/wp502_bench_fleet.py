# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""wp502_bench_fleet: the benchmark's fleet, N hosts each holding one lab host's evidence (bench/bench_report.py).

The evidence is parsed with the standard library's JSON, a fresh copy per host, and set as the host's
``wp502_evidence_result``, as the audit's evidence play leaves a module's result on each host: plain
data, a copy per host, so the controller's heap is as large as a real fleet's. It is set on the
inventory itself, past the proxy Ansible hands inventory plugins, which copies every value to tag
each string with its origin (the file it was read from): about 8 s per 1000 hosts of this evidence, as
slow as reading it from a YAML or JSON inventory, a cost no audit pays for its evidence (a module's
result is not a file's) and one that would leave no time for the measurement itself.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

from ansible.plugins.inventory import BaseInventoryPlugin

DOCUMENTATION = r"""
---
name: wp502_bench_fleet
short_description: The benchmark's fleet of hosts with lab evidence
description: N hosts (web00000...) in the group C(fleet), each with one lab host's evidence, and localhost.
options:
  plugin:
    description: This plugin's name.
    required: true
    choices: [wp502_bench_fleet]
  hosts:
    description: How many hosts.
    type: int
    required: true
  evidence:
    description: Directory of evidence files (C(*.json)), given to the hosts in turn.
    type: path
    required: true
"""


class InventoryModule(BaseInventoryPlugin):
    NAME = "wp502_bench_fleet"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(".wp502_bench.yml")

    def parse(self, inventory, loader, path, cache=False):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        texts = [p.read_text(encoding="utf-8") for p in sorted(Path(self.get_option("evidence")).glob("*.json"))]
        inventory.add_group("fleet")
        # The InventoryData behind Ansible's proxy (wrapt's __wrapped__), when there is one.
        data = getattr(inventory, "__wrapped__", inventory)
        # No cyclic garbage collection while the heap grows by a few million objects that all stay (each
        # collection would walk all of them): 5000 hosts load in 1 s instead of 4.
        gc.disable()
        try:
            for i in range(int(self.get_option("hosts"))):
                host = f"web{i:05d}"
                inventory.add_host(host, group="fleet")
                data.set_variable(host, "wp502_evidence_result", json.loads(texts[i % len(texts)]))
        finally:
            gc.enable()
        inventory.add_host("localhost")
        inventory.set_variable("localhost", "ansible_connection", "local")
        inventory.set_variable("localhost", "ansible_python_interpreter", sys.executable)
