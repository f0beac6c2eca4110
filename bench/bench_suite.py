"""The whole suite, as CI runs it: the README's test command, several times in a row.

    python bench/bench_suite.py [--runs 5] [--workers N] [--slowest 10]

Each run is `bash scripts/test.sh` from this checkout (everything already installed, so a run
is the tests alone; CI adds its installs). The table gives each run's wall time, its result,
and the machine's load average as it started (the machine is shared: a run's time is not its
own), then the median; after it, the slowest tests of the last run, by pytest's junit times
(setup, call and teardown together). The suite's tests reach only loopback (tests/conftest.py
and each test's own servers); this script starts nothing else.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_app import ROOT, machine, markdown_table, met  # noqa: E402

TARGET_S = 480.0  # issue 29: the landing's CI under 8 minutes, installs included
RESULT = re.compile(r"(\d+ (?:passed|failed)[^\n]*?) in [\d.]+s")  # pytest's last line, with -q or without


def one_run(workers: int | None, junit: Path) -> tuple[float, str, bool]:
    env = dict(os.environ)
    if workers is not None:
        env["SKYREELS_TEST_WORKERS"] = str(workers)
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "scripts/test.sh", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    took = time.monotonic() - started
    said = RESULT.findall(done.stdout)
    return took, (said[-1] if said else f"exit {done.returncode}"), done.returncode == 0


def failed(junit: Path) -> list[str]:
    """The tests that failed or erred in a run, by name."""
    if not junit.exists():
        return []
    return [
        f"{case.get('classname').split('.')[-1]}::{case.get('name')}"
        for case in ElementTree.parse(junit).iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]


def slowest(junit: Path, count: int) -> list[tuple[float, str]]:
    cases = ElementTree.parse(junit).iter("testcase")
    timed = [(float(c.get("time", 0)), f"{c.get('classname').split('.')[-1]}::{c.get('name')}") for c in cases]
    return sorted(timed, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="SKYREELS_TEST_WORKERS (default: the script's own)")
    parser.add_argument("--slowest", type=int, default=10)
    parser.add_argument("--keep", type=Path, default=None, help="a folder to keep each run's junit in (junit-N.xml)")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    rows, times = [], []
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as folder:
        junit = Path(folder) / "junit.xml"
        for number in range(1, args.runs + 1):
            load = os.getloadavg()[0]
            took, result, green = one_run(args.workers, junit)
            times.append(took)
            names = [] if green else failed(junit)
            rows.append([number, f"{round(took) // 60} min {round(took) % 60:02d} s", result, "green" if green else "RED",
                         f"{load:.1f}", ", ".join(names)])
            print(f"run {number}: {took:.0f} s, {result}{': ' if names else ''}{', '.join(names)}", file=sys.stderr, flush=True)
            if args.keep is not None and junit.exists():
                args.keep.mkdir(parents=True, exist_ok=True)
                (args.keep / f"junit-{number}.xml").write_bytes(junit.read_bytes())
        last = slowest(junit, args.slowest) if junit.exists() else []
    median = statistics.median(times)
    print(f"# The suite, {args.runs} runs in a row (commit {commit}; {machine()})\n")
    print(markdown_table(["run", "wall", "result", "", "load at start", "failed"], rows))
    print(f"\nMedian {median:.0f} s; tests alone, installs not included. Target for CI (installs "
          f"included): under {TARGET_S:.0f} s: {met(median < TARGET_S)} (the tests alone).\n")
    if last:
        print(f"Slowest {len(last)} of the last run (seconds):\n")
        print(markdown_table(["s", "test"], [[f"{s:.1f}", name] for s, name in last]))


if __name__ == "__main__":
    main()
