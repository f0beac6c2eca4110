"""Following tasks: this client's adaptive schedule against the official `wavespeed` SDK, same run.

    pip install wavespeed   # the official SDK, for this benchmark only
    python bench/bench_follow.py [--tasks 40] [--warm-up 40] [--stagger 1.5]

Two local WaveSpeed-compatible backends in this process, one per client, draw every task's
length from the same distribution (like the real model's: a queue wait of 0-20 s, then about
60 s of processing with a 5% spread). First the app's own `Studio` makes `--warm-up` runs on
ours, recording them in a run store as it does for a person, and learns its `Expectation`
from that store. Then `--tasks` tasks per client are followed at once in threads, started
`--stagger` seconds apart and interleaved: ours with `AdaptiveSchedule(learned)`, the SDK
with `wavespeed.Client(base_url=...).run(...)`, which polls every 1.0 s. Delay is time.time()
when the client hands back the completed task minus the server's `completed_at`.

Everything stays on loopback: the SDK only talks to the `base_url` it is given (its upload
PUT goes where the server says; it is not used here), and `loopback_only()` refuses any other
connection or name lookup from this process.
"""

from __future__ import annotations

import argparse
import collections
import logging
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_app import (  # noqa: E402
    SkyReelsTiming,
    loopback_only,
    machine,
    markdown_table,
    met,
    noisy_image,
    percentile,
    seconds,
)

TARGET_MEDIAN_S = 0.25
TARGET_P95_S = 0.5
TARGET_REQUEST_SHARE = 0.5
MODEL = "wavespeed-ai/SkyReels-V1"


@dataclass(frozen=True)
class Followed:
    """One task as one client saw it through."""

    client: str
    task_id: str
    returned_at: float  # time.time() when the client handed back the completed task
    polls: int  # result requests the client made for this task
    error: str | None = None


class _PollCounter:
    """Result requests per task id, whichever client makes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_task: collections.Counter[str] = collections.Counter()

    def count(self, task_id: str) -> None:
        with self._lock:
            self.by_task[task_id] += 1


class _PoolFull(logging.Handler):
    """Counts urllib3's 'connection pool is full' warnings: a sign the shared session is too small."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "pool is full" in record.getMessage():
            self.count += 1


def ours(base_url: str, schedule, counter: _PollCounter):
    """This project's client, one shared session as the app keeps for its owner's key."""
    from skyreels_demo.client import WaveSpeedClient
    from skyreels_demo.config import Settings

    class Counted(WaveSpeedClient):
        def result(self, task_id: str):
            counter.count(task_id)
            return super().result(task_id)

    return Counted(Settings(api_key="bench-key-anything", base_url=base_url), schedule=schedule)


def official_sdk(base_url: str, counter: _PollCounter):
    """The official SDK, pointed at the local backend by its `base_url` setting."""
    try:
        import wavespeed
    except ImportError:
        raise SystemExit("This benchmark compares against the official SDK: pip install wavespeed") from None

    class Counted(wavespeed.Client):
        def _get_result(self, request_id: str, timeout: float | None = None):
            counter.count(request_id)
            return super()._get_result(request_id, timeout=timeout)

    return Counted(api_key="bench-key-anything", base_url=base_url), wavespeed.__version__


def follow_with_ours(client, image_url: str, seed: int, counter: _PollCounter) -> Followed:
    task_id = ""
    try:
        task = client.submit("FPS-24, a woman turns to the camera", image_url, seed)
        task_id = task.id
        for update in client.follow(task.id, first=task, deadline_s=600):
            if update.is_final:
                return Followed("ours", task.id, time.time(), counter.by_task[task.id])
        error = "follow ended without a final task"
    except Exception as exc:  # the table counts failures; it does not stop the benchmark
        error = f"{type(exc).__name__}: {exc}"
    return Followed("ours", task_id, time.time(), counter.by_task[task_id], error)


def follow_with_sdk(client, image_url: str, seed: int, counter: _PollCounter) -> Followed:
    try:
        output = client.run(MODEL, {"prompt": "FPS-24, a woman turns to the camera", "image": image_url, "seed": seed})
        returned_at = time.time()
    except Exception as exc:  # the table counts failures; it does not stop the benchmark
        return Followed("sdk", "", time.time(), 0, f"{type(exc).__name__}: {exc}")
    # The SDK hands back only the outputs; the local backend names each output after its task.
    task_id = Path(output["outputs"][0]).stem
    return Followed("sdk", task_id, returned_at, counter.by_task[task_id])


def warm_up(backend, runs: int, data_dir: Path, image: Path):
    """The app's own first runs on this 'account': Studio records them; returns what it learned."""
    from skyreels_demo.config import Settings
    from skyreels_demo.studio import Downloading, Studio, Submitted

    settings = Settings(
        api_key="bench-key-anything", base_url=backend.base_url, data_dir=data_dir, max_concurrent_tasks=runs
    )
    studio = Studio(settings)
    seen: list[tuple[str, float]] = []
    lock = threading.Lock()

    def one(seed: int) -> None:
        task_id = ""
        for event in studio.generate("a woman turns to the camera", str(image), seed):
            if isinstance(event, Submitted):
                task_id = event.task_id
            elif isinstance(event, Downloading):
                with lock:
                    seen.append((task_id, time.time()))

    before = backend.counts["result"]
    threads = [threading.Thread(target=one, args=(seed,)) for seed in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    polls = backend.counts["result"] - before
    learned = studio.expectation("api")
    studio.close()
    delays = [at - backend.task(task_id).completed_at for task_id, at in seen]
    return learned, delays, polls / max(1, len(seen))


def run_at_once(jobs: list[tuple[float, Callable[[], Followed]]]) -> list[Followed]:
    """Start each job at its offset (seconds from now) in its own thread; return all results."""
    results: list[Followed] = []
    lock = threading.Lock()
    start = time.monotonic()

    def run(offset: float, job) -> None:
        time.sleep(max(0.0, start + offset - time.monotonic()))
        outcome = job()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=job, daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=40, help="tasks per client (default 40)")
    parser.add_argument("--warm-up", type=int, default=40, help="runs the app learns from first (default 40)")
    parser.add_argument("--stagger", type=float, default=1.5, help="seconds between task starts per client")
    args = parser.parse_args()
    loopback_only()
    logging.basicConfig(level=logging.ERROR)
    pool_full = _PoolFull()
    pools = logging.getLogger("urllib3.connectionpool")
    pools.addHandler(pool_full)
    pools.setLevel(logging.WARNING)
    pools.propagate = False  # counted and reported once in the notes, not printed each time

    from skyreels_demo.local_api import LocalBackend
    from skyreels_demo.schedule import AdaptiveSchedule

    def like_the_model(seed: int) -> SkyReelsTiming:
        return SkyReelsTiming(queue_min_s=0.0, queue_max_s=20.0, processing_s=60.0, spread=0.05, seed=seed)

    timing = like_the_model(0)
    counter = _PollCounter()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-follow-") as tmp_name:
        tmp = Path(tmp_name)
        with LocalBackend(timing=timing, render=False, data_dir=tmp / "ours") as mine, LocalBackend(
            timing=like_the_model(1), render=False, data_dir=tmp / "sdk"
        ) as theirs:
            image = noisy_image(tmp / "picture.png", 640, 360)
            learned, warm_delays, warm_polls = warm_up(mine, args.warm_up, tmp / "studio", image)

            client = ours(mine.base_url, AdaptiveSchedule(learned), counter)
            sdk, sdk_version = official_sdk(theirs.base_url, counter)
            # Any loopback URL will do: with rendering off the backend never fetches it.
            image_url = "http://127.0.0.1:9/picture.jpg"
            before_ours = mine.counts["result"]
            jobs = []
            for i in range(args.tasks):
                jobs.append((i * args.stagger, lambda i=i: follow_with_ours(client, image_url, i, counter)))
                jobs.append((i * args.stagger + args.stagger / 2, lambda i=i: follow_with_sdk(sdk, image_url, i, counter)))
            results = run_at_once(jobs)
            server_polls = {"ours": mine.counts["result"] - before_ours, "sdk": theirs.counts["result"]}
            backends = {"ours": mine, "sdk": theirs}
            delays: dict[str, list[float]] = {"ours": [], "sdk": []}
            polls: dict[str, list[int]] = {"ours": [], "sdk": []}
            errors = [r for r in results if r.error]
            for r in results:
                if not r.error:
                    delays[r.client].append(r.returned_at - backends[r.client].task(r.task_id).completed_at)
                    polls[r.client].append(r.polls)
            client.close()
    report(args, delays, polls, server_polls, errors, learned, warm_delays, warm_polls, timing, sdk_version,
           pool_full.count, time.monotonic() - started)


def report(args, delays, polls, server_polls, errors, learned, warm_delays, warm_polls, timing, sdk_version,
           pool_full: int, took_s: float) -> None:
    med = {k: statistics.median(v) for k, v in delays.items()}
    p95 = {k: percentile(v, 0.95) for k, v in delays.items()}
    per_task = {k: statistics.mean(v) for k, v in polls.items()}
    share = per_task["ours"] / per_task["sdk"]
    print(f"Following {args.tasks} + {args.tasks} tasks at once on the local backend ({machine()}, "
          f"{took_s / 60:.1f} min in all)\n")
    rows = [
        ("median delay, server completed → client returned", seconds(med["ours"]), seconds(med["sdk"]),
         f"≤ {TARGET_MEDIAN_S} s", met(med["ours"] <= TARGET_MEDIAN_S)),
        ("p95 delay", seconds(p95["ours"]), seconds(p95["sdk"]), f"≤ {TARGET_P95_S} s", met(p95["ours"] <= TARGET_P95_S)),
        ("max delay", seconds(max(delays["ours"])), seconds(max(delays["sdk"])), "–", "–"),
        ("result requests per task (mean)", f"{per_task['ours']:.1f}", f"{per_task['sdk']:.1f}",
         f"≤ {TARGET_REQUEST_SHARE:.0%} of the SDK's", met(share <= TARGET_REQUEST_SHARE) + f" ({share:.0%})"),
        ("result requests per task (p95)", percentile(polls["ours"], 0.95), percentile(polls["sdk"], 0.95), "–", "–"),
        ("tasks followed to completion", f"{len(delays['ours'])}/{args.tasks}", f"{len(delays['sdk'])}/{args.tasks}",
         "all", met(not errors and len(delays["ours"]) == len(delays["sdk"]) == args.tasks)),
    ]
    print(markdown_table(("figure", "this client (AdaptiveSchedule)", f"official SDK {sdk_version} (1.0 s)",
                          "target", "met?"), rows))
    print(
        f"\nNotes: each task's length is drawn on the server: {timing.describe()}; one backend per "
        f"client, same distribution. Tasks started {args.stagger:g} s apart per client, interleaved, "
        f"all followed at once in threads. This client's Expectation was learned the way the app "
        f"learns it: {args.warm_up} warm-up runs through Studio (prior-only schedule) recorded in a "
        f"RunStore, then `Studio.expectation()` → processing {learned.processing_s:.1f} s, spread "
        f"{learned.spread_s:.2f} s, queue {learned.queue_s:.1f} s from {learned.samples} runs. "
        f"Requests counted per task id on the client side; the servers counted "
        f"{server_polls['ours']} and {server_polls['sdk']} result requests in all "
        f"({server_polls['ours'] / args.tasks:.1f} and {server_polls['sdk'] / args.tasks:.1f} per task)."
    )
    print(
        f"Warm-up (prior only, {len(warm_delays)} runs through Studio): median delay "
        f"{seconds(statistics.median(warm_delays))}, p95 {seconds(percentile(warm_delays, 0.95))}, "
        f"{warm_polls:.1f} result requests per task."
    )
    if pool_full:
        print(f"urllib3 warned {pool_full} times that the shared connection pool was full.")
    if errors:
        print("\nErrors:", *[f"{e.client} {e.task_id}: {e.error}" for e in errors], sep="\n- ")


if __name__ == "__main__":
    main()
