"""Checks per task and lateness within WaveSpeed's rule for checks, by task shape.

    python bench/bench_checks.py [--tasks 2000] [--before REV] [--loopback 6]

WaveSpeed asks for no check of a video task sooner than 2 s after its submit or 5 s after the
previous one. This drives the app's real `Poller` and schedules on a virtual clock over thousands
of simulated tasks (seconds, not hours), each client on the same drawn tasks:

- the learned schedule, after two runs of the shape and after ten (learned as the studio learns:
  from what the run store would have recorded of runs followed by the schedule itself; eight
  such histories, the tasks shared among them),
- a fixed 5 s poll (within the rule),
- the official SDK's fixed 1 s poll (`wavespeed` 2.x; against the rule: its first check comes at
  once and then every second),
- with `--before REV`: the learned schedule of that commit, run from its own tree (`git archive`)
  the same way, so the table shows before and after.

Lateness is the time from a task's end to the answer of the check that saw it; "rule kept" is
measured on every check made (the first one's time from the submit, the least gap between two).
`--loopback N` then follows N real tasks per client at once on the built-in backend over loopback
(real seconds, about a minute), the SDK being the real `wavespeed` package, and reports the
checks the backend heard. Everything stays on loopback (`loopback_only()`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# name: (queue wait up to, making mean, making spread as a share of it)
SHAPES = {
    "steady 35 s": (1.0, 35.0, 0.02),
    "35 s, making ±5%": (1.0, 35.0, 0.05),
    "minute, busy queue": (10.0, 60.0, 0.05),
}
RULE = (2.0, 5.0)  # first check after, then apart (a video task's)
HISTORIES = 8  # different pairs (and tens) of first runs a learned schedule is measured after
LATENCY_S = 0.02  # a check's answer on the way back


def draw(rng: random.Random, shape: str) -> tuple[float, float]:
    queue_max, making, share = SHAPES[shape]
    return rng.uniform(0.0, queue_max), max(0.5, rng.gauss(making, share * making))


# --- the schedule of the tree on sys.path, old API or new ---------------------------------------


class Tree:
    """The schedules of whichever skyreels_demo is imported: this commit's, or an older one's."""

    def __init__(self) -> None:
        from skyreels_demo.wavespeed import schedule
        from skyreels_demo.models import SKYREELS_V1

        self.schedule = schedule
        self.model = SKYREELS_V1
        self.ruled = hasattr(schedule, "Ended")  # this commit's: the rule, learning from intervals
        self.rule = SKYREELS_V1.checks if self.ruled else None

    def prior(self):
        return self.schedule.Expectation.prior(self.model)

    def learned(self, records: list) -> object:
        """The schedule after the runs in `records` (newest first), as the studio builds it."""
        s = self.schedule
        if self.ruled:
            return s.AdaptiveSchedule(s.Expectation.learn(records, prior=self.prior()), self.rule)
        processing = [r[1] for r in records if r[1] is not None]
        queue = [r[0] for r in records if r[0] is not None]
        return s.AdaptiveSchedule(s.Expectation.learn(processing, queue, prior=self.prior()))

    def fixed(self, interval: float, ruled: bool) -> object:
        if self.ruled:
            return self.schedule.FixedSchedule(interval, self.rule if ruled else None)
        return self.schedule.FixedSchedule(interval)

    def record(self, checks: list[tuple[float, str]], making: float):
        """What the run store keeps of a followed run, in this tree's terms."""
        done = checks[-1][0]
        if self.ruled:
            running = [t for t, seen in checks if seen != "completed"]
            return self.schedule.Ended(running[-1] if running else 0.0, done, making_s=making)
        started = next((t for t, seen in checks if seen != "created"), None)
        return (started, done - started if started is not None and started < done else None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def simulate(tree: Tree, schedule, queue_s: float, making_s: float, *, sdk: bool = False):
    """Follow one task with the real Poller on a virtual clock: (lateness, checks [(t, status)])."""
    from skyreels_demo.status import TaskState

    end = queue_s + making_s
    clock = Clock()
    poller = tree.schedule.Poller(schedule, clock=clock, answer_in_hand=not sdk)  # the SDK asks at once
    start, checks = clock.now, []
    while True:
        clock.now += max(0.0, poller.due_in())
        poller.polling()
        asked = clock.now - start
        seen = "created" if asked < queue_s else "processing" if asked < end else "completed"
        checks.append((asked, seen))
        clock.now += LATENCY_S
        poller.saw(TaskState.from_api(seen))
        if seen == "completed":
            return clock.now - start - end, checks


def learned_after(tree: Tree, shape: str, seed: int) -> dict:
    """The learned schedule after 2 and after 10 runs of the shape, each followed by the schedule
    learned from the runs before it (from the prior at first), as the app learns."""
    warm, records, learned = random.Random(seed), [], {}
    for runs in range(1, 11):
        queue_s, making_s = draw(warm, shape)
        _, checks = simulate(tree, tree.learned(records), queue_s, making_s)
        records.insert(0, tree.record(checks, making_s))
        if runs in (2, 10):
            learned[runs] = tree.learned(records)
    return learned


def measure(tree: Tree, shape: str, tasks: int, seed: int) -> dict:
    """Every client's figures for one shape, on the same drawn tasks. What two runs teach depends
    on which two they were: the learned rows take HISTORIES histories, tasks/HISTORIES each."""
    histories = [learned_after(tree, shape, seed * 100 + h) for h in range(HISTORIES)]
    clients = {f"learned, after {n} runs": [h[n] for h in histories] for n in (2, 10)}
    if tree.ruled:
        clients["fixed 5 s poll"] = [tree.fixed(5.0, ruled=True)]
        clients["official SDK, fixed 1 s"] = [tree.fixed(1.0, ruled=False)]
    out = {}
    for name, schedules in clients.items():
        rng = random.Random(seed + 1)
        late, made, first, gap = [], [], float("inf"), float("inf")
        for i in range(tasks):
            schedule = schedules[i % len(schedules)]
            seen, checks = simulate(tree, schedule, *draw(rng, shape), sdk=name.startswith("official"))
            times = [t for t, _ in checks]
            late.append(seen)
            made.append(len(times))
            first = min(first, times[0])
            gap = min([gap] + [b - a for a, b in zip(times, times[1:])])
        late.sort()
        out[name] = dict(
            checks=statistics.mean(made), median=statistics.median(late), p90=late[int(0.9 * len(late))],
            within_gap=sum(t <= RULE[1] + LATENCY_S for t in late) / len(late), first=first, gap=gap,
        )
    return out


def sim_all(tasks: int) -> dict:
    tree = Tree()
    return {shape: measure(tree, shape, tasks, seed=7 + i) for i, shape in enumerate(SHAPES)}


def commit_of(rev: str = "HEAD") -> str:
    described = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if rev == "HEAD":
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "skyreels_demo", "bench"],
                               cwd=ROOT, capture_output=True, text=True).stdout
        described += " (with uncommitted changes)" if dirty.strip() else ""
    return described


def sim_before(rev: str, tasks: int) -> dict:
    """The same simulation run by `rev`'s own tree, in a process of its own."""
    with tempfile.TemporaryDirectory(prefix="bench-checks-before-") as tmp:
        archive = subprocess.run(["git", "archive", rev, "skyreels_demo"], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        env = dict(os.environ, PYTHONPATH=tmp)
        done = subprocess.run([sys.executable, __file__, "--tasks", str(tasks), "--json"], env=env, cwd=tmp,
                              capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


# --- real follows over loopback ------------------------------------------------------------------


def loopback(n: int, shape: str = "steady 35 s") -> dict:
    """N tasks per client at once on the built-in backend; what the backend heard of each."""
    sys.path.insert(0, str(HERE))
    from bench_app import loopback_only

    loopback_only()
    import wavespeed

    from skyreels_demo.wavespeed.client import WaveSpeedClient
    from skyreels_demo.config import Settings
    from skyreels_demo.local_api import LocalBackend, TaskTiming

    tree = Tree()
    queue_max, making, share = SHAPES[shape]
    rng = random.Random(99)
    timings = [TaskTiming(*draw(rng, shape)) for _ in range(2 + n)]
    records: list = []
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-checks-") as tmp:

        def backend(name: str, timing_list) -> LocalBackend:
            queue = list(timing_list)
            return LocalBackend(timing=lambda: queue.pop(0), render=False, data_dir=Path(tmp) / name).start()

        url_for = lambda api: f"{api.base_url}/files/uploads/none.jpg"  # noqa: E731 (never fetched: no rendering)
        inputs = lambda api, i: {"prompt": "FPS-24, a woman turns", "image": url_for(api), "seed": i}  # noqa: E731

        # Two runs of the shape, followed as the app follows them, then what they teach.
        warm = backend("warm", timings[:2])
        client = WaveSpeedClient(Settings(api_key="bench-key", base_url=warm.base_url))
        for i in range(2):
            job = client.submit(tree.model, inputs(warm, i))
            *_, final = job.follow(schedule=tree.learned(records), deadline_s=300)
            start = warm.task(job.id).created_at
            seen_at = final.ended_after - start if final.ended_after else 0.0
            records.insert(0, tree.schedule.Ended(seen_at, warm.checks[job.id][-1] - start, final.inference_ms / 1000))
        client.close()
        warm.stop()
        learned = tree.learned(records)

        def ours(api, schedule, i, results):
            with WaveSpeedClient(Settings(api_key="bench-key", base_url=api.base_url)) as c:
                job = c.submit(tree.model, inputs(api, i))
                *_, final = job.follow(schedule=schedule, deadline_s=300)
                results.append((job.id, time.time()))

        def sdk(api, i, results):
            sdk_client = wavespeed.Client(api_key="bench-key", base_url=api.base_url)
            output = sdk_client.run(tree.model.name, inputs(api, i))
            results.append((Path(output["outputs"][0]).stem, time.time()))

        clients = {
            "learned, after 2 runs": lambda api, i, r: ours(api, learned, i, r),
            "fixed 5 s poll": lambda api, i, r: ours(api, tree.fixed(5.0, ruled=True), i, r),
            "official SDK, fixed 1 s": sdk,
        }
        apis = {name: backend(name.split()[0], timings[2:]) for name in clients}
        results: dict = {name: [] for name in clients}
        threads = [threading.Thread(target=clients[name], args=(apis[name], i, results[name]))
                   for i in range(n) for name in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for name, api in apis.items():
            late, made, first, gap = [], [], float("inf"), float("inf")
            for task_id, returned_at in results[name]:
                record, heard = api.task(task_id), api.checks[task_id]
                late.append(returned_at - record.completed_at)
                made.append(len(heard))
                first = min(first, heard[0] - record.created_at)
                gap = min([gap] + [b - a for a, b in zip(heard, heard[1:])])
            late.sort()
            out[name] = dict(checks=statistics.mean(made), median=statistics.median(late), p90=late[int(0.9 * len(late))],
                             within_gap=sum(t <= RULE[1] + 0.1 for t in late) / len(late), first=first, gap=gap, done=len(late))
            api.stop()
    return out


# --- the table ---------------------------------------------------------------------------------


def rows(results: dict, label: str) -> list[tuple]:
    table = []
    for shape, clients in results.items():
        for name, r in clients.items():
            kept = r["first"] >= RULE[0] - 1e-6 and r["gap"] >= RULE[1] - 1e-6
            rule = "yes" if kept else f"**no**: first at {r['first']:.2f} s, gaps from {r['gap']:.2f} s"
            table.append((shape, f"{name} ({label})", f"{r['checks']:.1f}", f"{r['median']:.2f} s", f"{r['p90']:.2f} s",
                          f"{r['within_gap']:.0%}", rule))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000, help="simulated tasks per client and shape (default 2000)")
    parser.add_argument("--before", metavar="REV", help="also measure the learned schedule of this commit")
    parser.add_argument("--loopback", type=int, default=0, metavar="N", help="then follow N real tasks per client over loopback")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # a --before run's own output
    args = parser.parse_args()
    if args.json:
        print(json.dumps(sim_all(args.tasks)))
        return
    sys.path.insert(0, str(ROOT))
    started = time.monotonic()
    table = rows(sim_all(args.tasks), commit_of())
    if args.before:
        table = _merge(rows(sim_before(args.before, args.tasks), commit_of(args.before)), table)
    print(f"Checks of a video task within WaveSpeed's rule (first after {RULE[0]:g} s, then {RULE[1]:g} s apart): "
          f"{args.tasks} simulated tasks per client and shape on a virtual clock, the real Poller and schedules; "
          f"answers {LATENCY_S * 1000:.0f} ms away. Commit {commit_of()}, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"{time.monotonic() - started:.0f} s.\n")
    for shape, (queue_max, making, share) in SHAPES.items():
        print(f"- {shape}: queue wait uniform 0–{queue_max:g} s, making normal, mean {making:g} s, sd {share:.0%}")
    print()
    headers = ("shape", "client (commit)", "checks per task", "late, median", "late, p90", "within one gap (5 s)", "rule kept?")
    print(_markdown(headers, table))
    if args.loopback:
        real = loopback(args.loopback)
        print(f"\nOver loopback, {args.loopback} real tasks per client at once (steady 35 s shape), the checks the "
              "built-in backend heard; lateness from the backend's end to the client holding the result:\n")
        print(_markdown(headers, rows({"steady 35 s": real}, commit_of())))


def _merge(before: list[tuple], after: list[tuple]) -> list[tuple]:
    """Each shape's rows: before's, then after's."""
    merged = []
    for shape in SHAPES:
        merged += [row for row in before if row[0] == shape] + [row for row in after if row[0] == shape]
    return merged


def _markdown(headers, table) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in table]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
