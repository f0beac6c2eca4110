"""A pytest plugin that writes, per test, its wall time and the CPU its worker's process tree
spent on it: the worker itself, the apps and CLIs it started, Chromium, and every process of
theirs that ended and was waited for.

    python -m pytest -p tests.cpu_ledger ...   (SKYREELS_CPU_LEDGER=path.tsv, one row per test)

bench/bench_suite.py reads it for its CPU by file. A module's shared fixtures fall on the tests
that set them up and tear them down. Not loaded by the README's test command.
"""

from __future__ import annotations

import os
import time

import psutil
import pytest

_LEDGER = os.environ.get("SKYREELS_CPU_LEDGER", "")


def tree_cpu() -> float:
    """Seconds of CPU of this process and everything under it, reaped children included."""
    me = psutil.Process()
    total = 0.0
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:  # ended between the listing and the read
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not _LEDGER:
        yield
        return
    wall, cpu = time.monotonic(), tree_cpu()
    yield
    spent_wall, spent_cpu = time.monotonic() - wall, tree_cpu() - cpu
    with open(_LEDGER, "a", encoding="utf-8") as ledger:
        ledger.write(f"{item.nodeid}\t{spent_wall:.2f}\t{max(spent_cpu, 0.0):.2f}\t{os.getpid()}\n")
