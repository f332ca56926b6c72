# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""wp502_bench_cpu: the controller's CPU seconds from a playbook's first task to its end (bench/bench_report.py).

CPU time, the controller process's and its workers' (each task runs in a forked worker, reaped at the
end of the play, before the stats), is what a playbook costs whatever else the machine runs at the
same time: the wall-clock time of the same run grows with the load of the other processes on the
machine, its CPU time hardly does. Written as JSON ({"cpu", "wall"} in seconds) to the file named by
WP502_BENCH_CPU.
"""

from __future__ import annotations

import json
import os
import resource
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
---
name: wp502_bench_cpu
type: aggregate
short_description: The controller's CPU seconds from the first task to the end (wp502's report benchmark)
description: Writes {"cpu", "wall"} (seconds) to the file named by the environment variable WP502_BENCH_CPU.
requirements: [enable in callbacks_enabled]
"""


def _cpu() -> float:
    """CPU seconds of this process and of its reaped children (the workers), user and system."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "wp502_bench_cpu"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._start = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        if self._start is None:  # the inventory is loaded by now: not in the figure
            self._start = (_cpu(), time.monotonic())

    def v2_playbook_on_stats(self, stats):
        out = os.environ.get("WP502_BENCH_CPU")
        if out and self._start is not None:
            cpu, wall = self._start
            with open(out, "w", encoding="utf-8") as fh:
                json.dump({"cpu": _cpu() - cpu, "wall": time.monotonic() - wall}, fh)
