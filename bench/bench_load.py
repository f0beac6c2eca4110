"""Load: many visitors at once through one app process, each through its own gradio_client session.

    python bench/bench_load.py [--visitors 50] [--single 5]
    python bench/bench_load.py --line 100      # the line: 100 visitors, 3 slots
    python bench/bench_load.py --waiting 60    # what 60 visitors waiting in line cost the app


One local backend in this process (tasks of ~10 s, so the app's own overhead is what shows),
one `python app.py` with its task cap raised for the run (SKYREELS_MAX_CONCURRENT_TASKS=50,
SKYREELS_QUEUE_SIZE=100). After twelve warm-up runs (the app learns task length from them),
one visitor makes `--single` runs in turn; then `--visitors` visitors press Generate at once.
A run's overhead is its total time, from the call (image upload included) to the downloaded
video, minus the task's own time on the server (created to completed). The app's resident
memory is sampled from /proc every 0.1 s.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_app import (  # noqa: E402
    AppProcess,
    SkyReelsTiming,
    Visit,
    finish_visit,
    high,
    loopback_only,
    machine,
    markdown_table,
    met,
    percentile,
    photo_image,
    seconds,
    start_visit,
    visit_once,
    visitor,
    warm_up,
)

OVERHEAD_FACTOR = 2.0


def overheads(visits: list[Visit], backend) -> list[float]:
    """Each finished run's total time minus its task's own server-side time."""
    spent = []
    for v in visits:
        if v.error or not v.video_at or not v.task_id:
            continue
        task = backend.task(v.task_id)
        spent.append((v.video_at - v.submitted_at) - (task.completed_at - task.created_at))
    return spent


def at_once(clients, image: Path, first_seed: int) -> list[Visit]:
    """Every visitor presses Generate now; wait for all of them."""
    jobs = [start_visit(client, image, seed=first_seed + i) for i, client in enumerate(clients)]
    return [finish_visit(client, *job) for client, job in zip(clients, jobs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=50, help="visitors at once (default 50)")
    parser.add_argument("--single", type=int, default=5, help="single-visitor runs for the baseline (default 5)")
    parser.add_argument(
        "--gradio-max-threads", type=int, default=None,
        help="what-if only: size the worker threads the server and Gradio share in the app under "
        "test (as shipped: 2 x task cap + 4)",
    )
    parser.add_argument("--line", type=int, default=0, metavar="N",
                        help="instead: N visitors through 3 slots, each one's place and estimate")
    parser.add_argument("--task-s", type=float, default=6.0,
                        help="with --line: each task's seconds (a realistic minute, shortened; default 6)")
    parser.add_argument("--waiting", type=int, default=0, metavar="N",
                        help="instead: N visitors waiting in line on one busy slot, the threads and memory they add")
    parser.add_argument("--repeats", type=int, default=3, help="with --waiting: runs of each setup (default 3)")
    args = parser.parse_args()
    loopback_only()
    if args.line:
        line_run(args.line, args.task_s)
        return
    if args.waiting:
        waiting_run(args.waiting, args.repeats)
        return

    from skyreels_demo.local_api import LocalBackend

    timing = SkyReelsTiming(queue_min_s=0.0, queue_max_s=2.0, processing_s=10.0, spread=0.05, seed=23)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        image = photo_image(tmp / "photo.jpg")
        with LocalBackend(timing=timing, data_dir=tmp / "backend") as backend, AppProcess(
            tmp / "app",
            max_threads=args.gradio_max_threads,
            WAVESPEED_BASE_URL=backend.base_url,
            WAVESPEED_API_KEY="bench-key-anything",
            SKYREELS_MAX_CONCURRENT_TASKS=str(args.visitors),
            SKYREELS_QUEUE_SIZE=str(2 * args.visitors),
        ) as app:
            warm_up(app, image, tmp)
            idle_mb = app.rss_mb

            person = visitor(app.url, tmp / "single")
            cpu_before = app.cpu_s
            single = [visit_once(person, image, seed=100 + i) for i in range(args.single)]
            single_cpu_s = (app.cpu_s - cpu_before) / len(single)

            # Each visitor is its own session, set up (config, API info) before the clock starts.
            crowd = [visitor(app.url, tmp / f"crowd-{i}") for i in range(args.visitors)]
            app.peak_rss_mb = app.rss_mb
            cpu_before, ours_before, started = app.cpu_s, _own_cpu_s(), time.monotonic()
            loaded = at_once(crowd, image, 1000)
            burst = Burst(
                wall_s=time.monotonic() - started,
                app_cpu_s=app.cpu_s - cpu_before,
                visitors_cpu_s=_own_cpu_s() - ours_before,
            )
            peak_mb, kernel_peak_mb = app.peak_rss_mb, app.kernel_peak_rss_mb
            report(args, single, loaded, backend, timing, idle_mb, peak_mb, kernel_peak_mb, single_cpu_s, burst)
            app_share(app, loaded, 1000, burst, idle_mb, peak_mb, threads_idle=_threads(app))


def _recorded_at(app) -> dict[int, float]:
    """When each run's record was written (wall clock), by seed: the handler writes it before
    the image is uploaded, so it marks the run's arrival without the app logging for us."""
    with sqlite3.connect(f"file:{app.data_dir / 'runs.sqlite3'}?mode=ro", uri=True) as db:
        return {int(seed): float(at) for seed, at in db.execute("SELECT seed, created_at FROM runs")}


def app_share(app, loaded: list[Visit], first_seed: int, burst: "Burst", idle_mb: float, peak_mb: float, threads_idle: int) -> None:
    """The app's own share of the crowd's wait, apart from the driver's: when each run reached
    the app's handler (its run record's created_at, wall clock) against the driver's click and
    the first status the driver received; the app's CPU from /proc/<pid>/stat."""
    arrived = _recorded_at(app)
    to_app, in_app = [], []
    for i, v in enumerate(loaded):
        at = arrived.get(first_seed + i)  # at_once gives visitor i the seed first_seed + i
        if at is None or not v.updates:
            continue
        to_app.append(at - v.clicked_at)
        in_app.append(v.updates[0][0] - at)
    n = len(loaded)
    rows = [
        ("runs matched to the app's records", f"{len(to_app)}/{n}", "–"),
        ("click → run at the app's handler (driver send + Gradio's queue), median", seconds(statistics.median(to_app)) if to_app else "–", "both"),
        ("click → run at the app's handler, p95", high(to_app) if to_app else "–", "both"),
        ("run at the handler → first status at the driver, median", seconds(statistics.median(in_app)) if in_app else "–", "app (+ delivery)"),
        ("run at the handler → first status at the driver, p95", high(in_app) if in_app else "–", "app (+ delivery)"),
        ("app CPU per run (/proc/<pid>/stat)", seconds(burst.app_cpu_s / n), "app"),
        ("driver CPU per run (gradio_client sessions + local backend)", seconds(burst.visitors_cpu_s / n), "driver"),
        ("app RSS, MB (idle / peak under load)", f"{idle_mb:.0f} / {peak_mb:.0f}", "app"),
        ("app threads after the crowd", str(threads_idle), "app"),
    ]
    print(f"\nThe app's own share, {n} visitors at once:\n")
    print(markdown_table(("figure", "value", "whose"), rows))


@dataclass(frozen=True)
class Burst:
    """Where the machine's time went while the crowd's runs were made."""

    wall_s: float
    app_cpu_s: float
    visitors_cpu_s: float  # this process: 50 gradio_client sessions and the local backend

    @property
    def busy(self) -> float:
        """Share of all the machine's cores in use, on average."""
        return (self.app_cpu_s + self.visitors_cpu_s) / (self.wall_s * (os.cpu_count() or 1))


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def report(args, single, loaded, backend, timing, idle_mb, peak_mb, kernel_peak_mb, single_cpu_s, burst: Burst) -> None:
    alone, crowd = overheads(single, backend), overheads(loaded, backend)
    errors = [v.error or "no video" for v in loaded if v.error or not v.video_at]
    baseline = statistics.median(alone)
    limit = OVERHEAD_FACTOR * baseline
    crowd_p95 = percentile(crowd, 0.95)

    def first(visits):
        return [v.first_update_s for v in visits if v.updates]

    def video(visits):
        return [v.video_at - backend.task(v.task_id).completed_at for v in visits if v.video_at and v.task_id]

    def to_task(visits):
        # Click to the task existing on the server: queue, prepare, upload and submit in the app.
        return [backend.task(v.task_id).created_at - v.clicked_at for v in visits if v.task_id]

    def upload(visits):
        return [v.clicked_at - v.submitted_at for v in visits]

    what_if = f", Gradio max_threads set to {args.gradio_max_threads} (what-if)" if args.gradio_max_threads else ""
    print(f"Load: {args.visitors} visitors at once through one app process ({machine()}{what_if})\n")
    rows = [
        ("runs that completed with a video", f"{len(alone)}/{len(single)}", f"{len(crowd)}/{len(loaded)}",
         "all", met(len(crowd) == len(loaded) == args.visitors)),
        ("runs that ended in an error", sum(bool(v.error) for v in single), len(errors), "0", met(not errors)),
        ("app overhead, median", seconds(baseline), seconds(statistics.median(crowd)), "–", "–"),
        ("app overhead, p95", high(alone), high(crowd),
         f"≤ 2 × single median ({limit:.3f} s, derived)", met(crowd_p95 <= limit)),
        ("where it goes: image upload to the app (gradio_client), p95", high(upload(single)),
         high(upload(loaded)), "–", "–"),
        ("where it goes: click → first status update, median", seconds(statistics.median(first(single))),
         seconds(statistics.median(first(loaded))), "–", "–"),
        ("where it goes: click → first status update, p95", high(first(single)),
         high(first(loaded)), "–", "–"),
        ("where it goes: click → task created on the server, p95", high(to_task(single)),
         high(to_task(loaded)), "–", "–"),
        ("where it goes: server completed → video at the visitor, median", seconds(statistics.median(video(single))),
         seconds(statistics.median(video(loaded))), "–", "–"),
        ("where it goes: server completed → video at the visitor, p95", high(video(single)),
         high(video(loaded)), "–", "–"),
        ("app CPU time per run (alone: includes idle ticks)", seconds(single_cpu_s),
         seconds(burst.app_cpu_s / len(loaded)), "–", "–"),
        ("app RSS, MB (idle after warm-up / peak under load)", f"{idle_mb:.0f}", f"{peak_mb:.0f}", "report", "–"),
    ]
    print(markdown_table(("figure", f"1 visitor ({len(single)} runs in turn)", f"{args.visitors} at once",
                          "target", "met?"), rows))
    print(
        f"\nNotes: tasks on the local backend: {timing.describe()}; every visitor uploads the same "
        f"photo-like 1280x720 JPEG, so the preview is rendered once and shared. Overhead = (downloaded "
        f"video − Generate call, upload included) − (task completed − task created, on the server). "
        f"Peak RSS sampled from /proc/<pid>/status every 0.1 s; the kernel's own high-water mark "
        f"(VmHWM) was {kernel_peak_mb:.0f} MB. While the crowd's runs were made ({burst.wall_s:.1f} s), "
        f"the app used {burst.app_cpu_s:.1f} CPU-s and this process (the visitors' gradio_client "
        f"sessions and the backend) {burst.visitors_cpu_s:.1f} CPU-s: {burst.busy:.0%} of the "
        f"machine's {os.cpu_count()} cores on average."
    )
    if errors:
        print("\nErrors:", *sorted(set(errors)), sep="\n- ")


PLACE = re.compile(r'data-queue-place="(\d+)" data-queue-estimate-s="(\d+)"')


def line_run(visitors: int, task_s: float) -> None:
    """`visitors` press Generate at once on an app with 3 slots: each one's first status, the
    places it was shown, its first estimate, and the wait it actually had."""
    from skyreels_demo.local_api import LocalBackend

    timing = SkyReelsTiming(queue_min_s=0.0, queue_max_s=0.1 * task_s, processing_s=task_s, spread=0.05, seed=5)
    with tempfile.TemporaryDirectory(prefix="bench-line-") as tmp_name:
        tmp = Path(tmp_name)
        image = photo_image(tmp / "photo.jpg")
        with LocalBackend(timing=timing, data_dir=tmp / "backend") as backend, AppProcess(
            tmp / "app",
            WAVESPEED_BASE_URL=backend.base_url,
            WAVESPEED_API_KEY="bench-key-anything",
            SKYREELS_MAX_CONCURRENT_TASKS="3",
            SKYREELS_QUEUE_SIZE=str(visitors + 10),
            SKYREELS_MAX_WAIT_MINUTES="600",
            SKYREELS_VISITOR_RUNS_PER_HOUR=str(10 * visitors),
            SKYREELS_APP_RUNS_PER_DAY=str(10 * visitors),
        ) as app:
            warm_up(app, image, tmp)  # the app learns these tasks' length, as it would a minute's
            crowd = [visitor(app.url, tmp / f"line-{i}") for i in range(visitors)]
            cpu_before, threads_before = app.cpu_s, _threads(app)
            visits = at_once(crowd, image, 5000)
            app_cpu = app.cpu_s - cpu_before
            peak_mb = app.peak_rss_mb
    rows, errors = [], []
    for number, v in enumerate(visits, start=1):
        shown = [(at, int(m[1]), int(m[2])) for at, out in v.updates for m in PLACE.finditer(str(out[0]))]
        if v.error or not v.video_at:
            errors.append(v.error or "no video")
        if not shown:
            rows.append((number, seconds(v.first_update_s), "–", "–", "–", "–"))
            continue
        first_at, _, estimate = shown[0]
        turn_at = next((at for at, out in v.updates if at > shown[-1][0] and not PLACE.search(str(out[0]))), None)
        actual = (turn_at - first_at) if turn_at else None
        places = " → ".join(str(p) for p in dict.fromkeys(place for _, place, _ in shown))
        error = f"{estimate - actual:+.0f} s" if actual is not None else "–"
        rows.append((number, seconds(v.first_update_s), places, f"{estimate} s",
                     f"{actual:.0f} s" if actual is not None else "–", error))
    errs = [abs(float(r[5].split()[0])) for r in rows if r[5] != "–"]
    actuals = [float(r[4].split()[0]) for r in rows if r[4] != "–"]
    print(f"Line: {visitors} visitors at once, 3 slots, tasks of ~{task_s:g} s ({machine()})\n")
    print(markdown_table(("visitor", "first status", "places shown", "first estimate", "actual wait",
                          "estimate − actual"), rows))
    if errs:
        rel = [e / a for e, a in zip(errs, actuals) if a > 0]
        print(f"\nEstimate's error: median {statistics.median(errs):.1f} s, "
              f"median relative {statistics.median(rel):.0%} of the actual wait, over {len(errs)} visitors who waited.")
    print(f"App: {app_cpu:.1f} CPU-s for {len(visits)} runs ({app_cpu / len(visits) * 1000:.0f} ms each), "
          f"peak RSS {peak_mb:.0f} MB, threads {threads_before} before the crowd.")
    if errors:
        print("\nErrors:", *sorted(set(errors)), sep="\n- ")


def waiting_run(visitors: int, repeats: int) -> None:
    """`visitors` wait in line behind one long task on one slot: the threads and resident memory
    they add to the app once every one of them has been shown a place, as shipped and, side by
    side, with the pool the server and Gradio share left at anyio's 40 (as before 8515c6e)."""
    from skyreels_demo.local_api import LocalBackend, TaskTiming

    setups = (("as shipped (shared pool: 2 x task cap + 4 = 6)", None), ("what-if: shared pool of 40", 40))
    figures: dict[str, list[tuple[int, float, float]]] = {name: [] for name, _ in setups}
    with tempfile.TemporaryDirectory(prefix="bench-waiting-") as tmp_name:
        tmp = Path(tmp_name)
        image = photo_image(tmp / "photo.jpg")
        for repeat in range(repeats):
            for name, pool in setups:
                with LocalBackend(timing=TaskTiming(queue_s=0.0, processing_s=3600.0)) as backend, AppProcess(
                    tmp / f"app-{repeat}-{pool}",
                    max_threads=pool,
                    WAVESPEED_BASE_URL=backend.base_url,
                    WAVESPEED_API_KEY="bench-key-anything",
                    SKYREELS_MAX_CONCURRENT_TASKS="1",
                    SKYREELS_VISITOR_RUNS_PER_HOUR=str(10 * visitors),
                    SKYREELS_MAX_WAIT_MINUTES="6000",
                ) as app:
                    busy = visitor(app.url, tmp / "busy")
                    jobs = [start_visit(busy, image, seed=1)[0]]
                    while backend.tasks_created < 1:
                        time.sleep(0.05)
                    time.sleep(2)
                    threads_before, rss_before = _threads(app), app.rss_mb
                    crowd = [visitor(app.url, tmp / f"waiting-{i}") for i in range(visitors)]
                    started = time.monotonic()
                    jobs += [start_visit(client, image, seed=10 + i)[0] for i, client in enumerate(crowd)]
                    while not all(any(PLACE.search(str(out[0])) for out in job.outputs()) for job in jobs[1:]):
                        if time.monotonic() - started > 300:
                            raise RuntimeError("not every visitor was shown a place within 300 s")
                        time.sleep(0.2)
                    placed_s = time.monotonic() - started
                    time.sleep(3)  # a few refreshes of every estimate
                    figures[name].append((_threads(app) - threads_before, app.rss_mb - rss_before, placed_s))
                    for job in jobs:
                        job.cancel()
    print(f"\n{visitors} visitors waiting in line on one busy slot ({machine()}), {repeats} runs of each, alternated\n")
    rows = []
    for name, _ in setups:
        runs = figures[name]
        rows.append([
            name,
            ", ".join(f"+{t}" for t, _, _ in runs) + f" (median +{statistics.median(t for t, _, _ in runs):.0f})",
            ", ".join(f"+{m:.0f}" for _, m, _ in runs) + f" (median +{statistics.median(m for _, m, _ in runs):.0f})",
            f"{statistics.median(s for _, _, s in runs):.1f} s",
        ])
    print(markdown_table(["setup", "threads added (target ≤ 10)", "RSS added, MB (target ≤ 100)",
                          "all placed, median"], rows))


def _threads(app) -> int:
    for line in Path(f"/proc/{app.process.pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    main()
