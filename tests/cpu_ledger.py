"""A pytest plugin that writes, per test, its wall time and the CPU its worker's process tree
spent on it: the worker itself, the apps and CLIs it started, Chromium, and every process of
theirs that ended and was waited for; in all, and by kind of process.

    python -m pytest -p tests.cpu_ledger ...   (SKYREELS_CPU_LEDGER=path.tsv, one row per test)

Each row: the test's id, wall seconds, CPU seconds in all, the worker's pid, then CPU seconds by
kind (KINDS, in that order). A process that ended counts under the kind of the one that waited
for it: Chromium's renderers under "chromium", forked apps under "apps", a CLI the worker ran
under "ended"; "other" is mostly Chromium's renderers that have ended and wait to be reaped
(their command line is gone). bench/bench_suite.py reads it for its CPU by file. A module's
shared fixtures fall on the tests that set them up and tear them down. Not loaded by the README's
test command.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import psutil
import pytest

_LEDGER = os.environ.get("SKYREELS_CPU_LEDGER", "")
KINDS = ("worker", "apps", "chromium", "cli", "node", "ended", "other")


def _kind(process: psutil.Process, me: int) -> str:
    if process.pid == me:
        return "worker"
    command = " ".join(process.cmdline())
    if "chrom" in command or "playwright" in command:
        return "chromium"
    if "warm_start" in command or "app.py" in command:
        return "apps"
    if "skyreels_demo" in command:
        return "cli"
    if "node" in command:
        return "node"
    return "other"


def tree_cpu_by_kind() -> Counter:
    """Seconds of CPU of this process and everything under it, reaped children included, by kind."""
    me = psutil.Process()
    spent: Counter = Counter()
    for process in [me, *me.children(recursive=True)]:
        try:
            kind, times = _kind(process, me.pid), process.cpu_times()
        except psutil.Error:  # ended between the listing and the read
            continue
        spent[kind] += times.user + times.system
        spent["ended" if kind == "worker" else kind] += times.children_user + times.children_system
    return spent


def tree_cpu() -> float:
    """Seconds of CPU of this process and everything under it, reaped children included."""
    return sum(tree_cpu_by_kind().values())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not _LEDGER:
        yield
        return
    wall, before = time.monotonic(), tree_cpu_by_kind()
    yield
    spent_wall, after = time.monotonic() - wall, tree_cpu_by_kind()
    # A process that ended unwaited takes its CPU with it: never below zero.
    by_kind = [max(after[kind] - before[kind], 0.0) for kind in KINDS]
    with open(_LEDGER, "a", encoding="utf-8") as ledger:
        ledger.write(
            f"{item.nodeid}\t{spent_wall:.2f}\t{sum(by_kind):.2f}\t{os.getpid()}\t"
            + "\t".join(f"{value:.2f}" for value in by_kind) + "\n"
        )
