"""What a crowd waiting in line costs the app: threads and resident memory of `python app.py`
before and after sixty visitors join a line behind one run on a single slot.

    python bench/bench_line_crowd.py [--visitors 60]

These figures used to be asserted inside tests/test_line.py, where a loaded machine moved them;
the test keeps the behaviour (every visitor is shown a place), this prints the figures beside
their targets: waiting runs hold a ticket, not a thread, so the crowd adds at most the server's
shared pool and the line's arriving runs' few threads (10), and little memory (100 MB).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_app import loopback_only  # noqa: E402
from tests.conftest import LaunchedApp, jpeg_bytes, photo  # noqa: E402
from tests.test_line import app_env, crowd_in_line, places_of  # noqa: E402

from skyreels_demo.local_api import LocalBackend, TaskTiming  # noqa: E402

TARGET_THREADS = 10
TARGET_MB = 100


def process_figures(pid: int) -> tuple[int, float]:
    """Threads and resident memory (MB) of a process, from /proc."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(status["Threads"]), int(status["VmRSS"].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=60)
    args = parser.parse_args()
    loopback_only()
    folder = Path(tempfile.mkdtemp(prefix="bench-line-crowd-"))
    picture = folder / "photo.jpg"
    picture.write_bytes(jpeg_bytes(photo()))
    with LocalBackend(timing=TaskTiming(queue_s=0.0, processing_s=600.0), render=False) as api, LaunchedApp(
        folder / "app",
        **app_env(api, SKYREELS_VISITOR_RUNS_PER_HOUR=str(args.visitors + 40), SKYREELS_MAX_WAIT_MINUTES="600"),
    ) as app:
        before: list[tuple[int, float]] = []

        def settled() -> None:
            time.sleep(2)  # the holding run under way: the figures before the crowd
            before.append(process_figures(app.process.pid))
            arrived.append(time.monotonic())

        arrived: list[float] = []
        holder, jobs = crowd_in_line(app, api, picture, args.visitors, held=settled)
        placed_s = time.monotonic() - arrived[0]
        [(threads_before, rss_before)] = before
        time.sleep(3)  # a few refreshes of every estimate
        threads_after, rss_after = process_figures(app.process.pid)
        deepest = max(places_of(job.outputs())[-1] for job in jobs)
        for job in [holder, *jobs]:
            job.cancel()
    added_threads, added_mb = threads_after - threads_before, rss_after - rss_before
    print(f"{args.visitors} visitors waiting in line on one slot ({os.cpu_count()} CPUs)\n")
    print("| figure | before | after | added | target | met? |")
    print("|---|---|---|---|---|---|")
    print(f"| threads | {threads_before} | {threads_after} | {added_threads} | <= {TARGET_THREADS} | "
          f"{'yes' if added_threads <= TARGET_THREADS else 'no'} |")
    print(f"| RSS MB | {rss_before:.0f} | {rss_after:.0f} | {added_mb:.0f} | <= {TARGET_MB} | "
          f"{'yes' if added_mb <= TARGET_MB else 'no'} |")
    print(f"| deepest place | | {deepest} | | {args.visitors - 1} | {'yes' if deepest == args.visitors - 1 else 'no'} |")
    print(f"| all placed in s | | {placed_s:.1f} | | | |")


if __name__ == "__main__":
    main()
