"""The line for the owner's key (line.py): places and estimates, fairness, pacing, 429s waited out,
refusals of a line too long, and what a crowd of waiting visitors costs the app process."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from gradio_client import Client, handle_file

from skyreels_demo.errors import Stopped
from skyreels_demo.studio.events import Done, InLine, SlowedDown, about
from skyreels_demo.studio.line import OWNER, Line, LineRefused
from skyreels_demo.local_api import Limits, LocalBackend, TaskTiming
from skyreels_demo.models import BRONZE, SKYREELS_V1
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.status import RunStatus
from skyreels_demo.web.status_board import StatusBoard
from skyreels_demo.studio.studio import Studio
from skyreels_demo.studio.variations import stream_variations

from .conftest import ASTRONAUT, FAST, ROOT, LaunchedApp, browser_page, fill_in, open_store, settings_for, wait_for, write_storyboard

PROMPT = "A woman in a red coat turns to the camera and smiles as snow falls around her."
PLACE = re.compile(r'data-queue-place="(\d+)"')


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def places_of(outputs) -> list[int]:
    """Every data-queue-place a visitor's status showed, in order."""
    return [int(m) for out in outputs for m in PLACE.findall(str(out[0] if isinstance(out, (list, tuple)) else out))]


# -- the line on its own --------------------------------------------------------------------


def test_places_and_estimates_come_from_task_time_and_slots():
    clock = FakeClock()
    line = Line(slots=2, submits_per_minute=0, size=100, max_wait_s=3600, clock=clock)
    tickets = [line.join(OWNER, task_s=60) for _ in range(5)]
    for ticket in tickets[:2]:
        next(line.wait(ticket, None, lambda: 0.0), None)  # takes a free slot at once
    clock.now += 20  # the two running runs are a third of the way through
    waiting = [line.place(t) for t in tickets[2:]]
    assert [p.ahead for p in waiting] == [0, 1, 2]
    # Slots free at +40 s; the next two take them, the fifth waits for the first of those.
    assert [round(p.estimate_s) for p in waiting] == [40, 40, 100]
    assert waiting[2].message == "2 ahead of you · about 2 min"
    assert waiting[0].message == "You are next · about 40 s"


def test_on_bronze_the_estimates_and_the_refusal_follow_its_pace_of_two_a_minute():
    """Two slots and one submit every 30 s: quick tasks wait for the pace, not for a slot."""
    clock = FakeClock()
    line = Line(slots=BRONZE.tasks_at_once, submits_per_minute=BRONZE.submits_per_minute, size=100, max_wait_s=30 * 60, clock=clock)
    tickets = [line.join(OWNER, task_s=20) for _ in range(4)]
    assert [round(line.place(t).estimate_s) for t in tickets] == [0, 30, 60, 90]
    # Sixty runs ahead are half an hour of submits: the one after them would wait longer.
    for _ in range(57):
        line.join(OWNER, task_s=20)
    with pytest.raises(LineRefused, match="The line is about 30 minutes long"):
        line.join(OWNER, task_s=20)


def test_leaving_the_line_moves_everyone_behind_up():
    line = Line(slots=1, submits_per_minute=0, size=100, max_wait_s=3600)
    first, second, third = (line.join(OWNER, task_s=30) for _ in range(3))
    next(line.wait(first, None, lambda: 0.0), None)
    assert line.place(third).ahead == 1
    line.leave(second)  # Stop, or a closed tab
    assert line.place(third).ahead == 0


def test_a_submitted_tasks_place_is_held_until_it_ends_watched_or_not():
    """A visitor who closes their tab leaves a task running on the account: its slot stays taken
    until the task ends (the studio says so), or at the latest until the store says it has."""
    running = {"r1"}
    line = Line(slots=1, submits_per_minute=0, size=100, max_wait_s=3600, in_flight=lambda run_id: run_id in running)
    first, second = line.join(OWNER, 30), line.join(OWNER, 30)
    next(line.wait(first, None, lambda: 0.0), None)
    line.hold(first, "r1")
    line.leave(first)  # the tab closed right after the submit
    assert line.running() == 1
    assert next(line.wait(second, None, lambda: 0.0)).ahead == 0  # still waiting for the slot
    line.task_ended("r1")
    assert next(line.wait(second, None, lambda: 0.0), "took it") == "took it"
    # An end nobody announced: the store's word lets the slot go all the same.
    third = line.join(OWNER, 30)
    line.hold(second, "r2")
    running.add("r2")
    line.leave(second)
    assert next(line.wait(third, None, lambda: 0.0)).ahead == 0
    running.discard("r2")
    assert next(line.wait(third, None, lambda: 0.0), "took it") == "took it"


def test_a_run_that_ends_while_watched_leaves_its_slot_as_before():
    line = Line(slots=1, submits_per_minute=0, size=100, max_wait_s=3600, in_flight=lambda run_id: False)
    first = line.join(OWNER, 30)
    next(line.wait(first, None, lambda: 0.0), None)
    line.hold(first, "done-run")
    line.leave(first)
    assert line.running() == 0


def test_stop_ends_the_wait_before_anything_is_sent():
    line = Line(slots=1, submits_per_minute=0, size=100, max_wait_s=3600)
    running, waiting = line.join(OWNER, 30), line.join(OWNER, 30)
    next(line.wait(running, None, lambda: 0.0), None)
    stop = threading.Event()
    places = line.wait(waiting, stop, lambda: 0.0)
    assert next(places).ahead == 0
    stop.set()
    with pytest.raises(Stopped, match="nothing was paid"):
        next(places)


def test_a_line_longer_than_the_longest_wait_is_refused_with_a_sentence():
    line = Line(slots=1, submits_per_minute=0, size=100, max_wait_s=30 * 60, clock=FakeClock())
    for _ in range(3):  # runs of 15 minutes: the third waits 30, a fourth would wait 45
        line.join(OWNER, task_s=15 * 60)
    with pytest.raises(LineRefused) as refused:
        line.join(OWNER, task_s=15 * 60)
    assert str(refused.value) == (
        "The line is about 45 minutes long right now: paste your own WaveSpeed key to skip it, "
        "or come back later."
    )


def test_a_full_line_is_refused_with_a_sentence():
    line = Line(slots=1, submits_per_minute=0, size=3, max_wait_s=3600)
    for _ in range(3):
        line.join(OWNER, task_s=1)
    with pytest.raises(LineRefused, match="The line is full right now"):
        line.join(OWNER, task_s=1)


def test_waits_read_at_a_glance():
    assert [about(s) for s in (3, 22, 54, 61, 170, 1800)] == ["5 s", "20 s", "55 s", "1 min", "3 min", "30 min"]


def test_the_status_board_shows_the_place_for_scripts_and_people():
    board = StatusBoard()
    board.apply(InLine(1.0, ahead=2, estimate_s=180, line_version=3))
    html = board.render()
    assert 'data-queue-place="2"' in html and "2 ahead of you · about 3 min" in html
    board.apply(SlowedDown(2.0, 20))
    assert "data-queue-place" not in board.render()
    assert "WaveSpeed asked us to slow down: 20 s" in board.render()


# -- the studio's runs in line ---------------------------------------------------------------


def test_one_visitors_variations_do_not_jump_a_visitor_who_came_first(tmp_path, photo_path):
    """First come, first served across entry points: variations queue behind earlier runs."""
    # The first task runs 2 s: long enough for the others to take their places behind it.
    with LocalBackend(timing=TaskTiming(queue_s=0.2, processing_s=2.0), render=False) as slow:
        studio = Studio(settings_for(slow, tmp_path / "data", max_concurrent_tasks=1), SKYREELS_V1)
        first_place: dict[int, int] = {}

        def note(seed: int, event) -> None:
            if isinstance(event, InLine) and seed not in first_place:
                first_place[seed] = event.ahead

        def one(seed: int) -> None:
            for event in studio.generate(RunRequest(PROMPT, str(photo_path), seed)):
                note(seed, event)

        def variations() -> None:
            async def read() -> None:
                async for update in stream_variations(studio, RunRequest(PROMPT, str(photo_path), 100), 3):
                    note(update.seed, update.event)

            asyncio.run(read())

        try:
            threads = [threading.Thread(target=one, args=(0,))]
            threads[-1].start()
            wait_for(lambda: studio.line.running() == 1, timeout=10)
            threads.append(threading.Thread(target=one, args=(1,)))
            threads[-1].start()
            wait_for(lambda: studio.line.waiting() == 1, timeout=10)
            threads.append(threading.Thread(target=variations))
            threads[-1].start()
            wait_for(lambda: studio.line.waiting() == 4, timeout=10)
            for thread in threads:
                thread.join(90)
        finally:
            studio.close()
        submitted = [slow.task(t).seed for t in slow.created_task_ids]
    assert first_place[1] == 0
    assert sorted(first_place[s] for s in (100, 101, 102)) == [1, 2, 3]
    assert submitted[:2] == [0, 1] and sorted(submitted[2:]) == [100, 101, 102]


def test_submits_are_paced_evenly_to_the_accounts_rate(backend, tmp_path, photo_path):
    # 120 a minute: one every 0.5 s, never a burst, even with four slots free at once.
    settings = settings_for(backend, tmp_path / "data", max_concurrent_tasks=4, submits_per_minute=120)
    studio = Studio(settings, SKYREELS_V1)
    try:
        ends: list[Done] = []

        def one(seed: int) -> None:
            ends.extend(e for e in studio.generate(RunRequest(PROMPT, str(photo_path), seed)) if isinstance(e, Done))

        threads = [threading.Thread(target=one, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        studio.close()
    assert len(ends) == 4
    created = sorted(backend.task(t).created_at for t in backend.created_task_ids)
    gaps = [b - a for a, b in zip(created, created[1:])]
    assert min(gaps) >= 0.45, gaps
    assert max(gaps) < 1.5, gaps  # evenly, not a burst then a long wait


def test_a_429_on_submit_is_waited_out_in_view_not_spent_as_a_failed_run(backend, tmp_path, photo_path):
    studio = Studio(settings_for(backend, tmp_path / "data"), SKYREELS_V1)
    backend.faults.rate_limit("submit", times=1, retry_after=2.0)
    try:
        events = list(studio.generate(RunRequest(PROMPT, str(photo_path), 7)))
    finally:
        studio.close()
    slowed = [e for e in events if isinstance(e, SlowedDown)]
    assert [e.message for e in slowed] == ["WaveSpeed asked us to slow down: 2 s"]
    done = events[-1]
    assert isinstance(done, Done) and done.run.status == RunStatus.DONE
    assert backend.counts["submit"] == 2 and backend.tasks_created == 1
    # The wait was spent where the person could see it: the submit came about 2 s later.
    assert done.timings["submit_s"] >= 1.9


def test_a_visitors_own_key_waits_in_no_line(backend, tmp_path, photo_path):
    studio = Studio(settings_for(backend, tmp_path / "data", max_concurrent_tasks=1), SKYREELS_V1)
    try:
        blocker = studio.line.join(OWNER, task_s=600)
        next(studio.line.wait(blocker, None, lambda: 0.0), None)  # the owner's only slot is taken
        events = list(studio.generate(RunRequest(PROMPT, str(photo_path), 3, api_key="visitor-key-0123456789abcdef")))
    finally:
        studio.close()
    assert not any(isinstance(e, InLine) for e in events)
    assert isinstance(events[-1], Done)


# -- the app, as visitors see it --------------------------------------------------------------


def app_env(backend: LocalBackend, **extra: str) -> dict[str, str]:
    return dict(
        WAVESPEED_BASE_URL=backend.base_url,
        WAVESPEED_API_KEY="test-key-not-secret",
        SKYREELS_POLL="0.1",
        SKYREELS_MAX_CONCURRENT_TASKS="1",
        **extra,
    )


class SwitchedTiming:
    """The shared backend's task timing, set by each test; a task keeps the timing it was made with."""

    def __init__(self) -> None:
        self.timing = FAST

    def __call__(self) -> TaskTiming:
        return self.timing


@dataclass
class OneSlot:
    """One backend and one `python app.py` on a task cap of 1, shared by the tests whose runs all
    end (a run left in flight would hold the slot): each sets the task timing it needs and
    counts only the tasks made since it began (`first`)."""

    api: LocalBackend
    app: LaunchedApp
    switch: SwitchedTiming
    first: int = 0

    def mine(self) -> list[str]:
        return self.api.created_task_ids[self.first:]

    def made(self) -> int:
        return len(self.mine())

    @contextlib.contextmanager
    def held(self, start_first: Callable[[], object], then: TaskTiming = FAST):
        """The first task `start_first` makes holds the slot until the block ends, however slowly
        a loaded machine lets the others in (a task of a fixed few seconds once ended before the
        next visitor had a place); the tasks after it take `then`. Ended on leaving, failed or not,
        so the shared slot is free for the next test (a record's timing is read at each check)."""
        self.switch.timing = TaskTiming(queue_s=0.2, processing_s=600.0)
        try:
            start_first()
            wait_for(lambda: self.made() >= 1, timeout=60)
            self.switch.timing = then
            yield
        finally:
            if self.made():
                first = self.api.task(self.mine()[0])
                first.timing = TaskTiming(queue_s=first.timing.queue_s, processing_s=0.0)


@pytest.fixture(scope="module")
def shared_slot(tmp_path_factory):
    switch = SwitchedTiming()
    data = tmp_path_factory.mktemp("one-slot")
    # Visitors' runs an hour well past what these tests make together (they all come from here).
    # No test here looks inside a video: each task gets the stock clip (a film's next shot still
    # starts from its last frame).
    with LocalBackend(timing=switch, render=False) as api, LaunchedApp(
        data, **app_env(api, SKYREELS_VISITOR_RUNS_PER_HOUR="1000")
    ) as app:
        yield OneSlot(api, app, switch)


@pytest.fixture
def one_slot(shared_slot):
    """The shared app once the last test's runs have all ended, its tasks quick unless set."""
    store = open_store(shared_slot.app.data_dir)
    wait_for(lambda: not store.unfinished(), timeout=60)
    shared_slot.switch.timing = FAST
    shared_slot.first = shared_slot.api.tasks_created
    return shared_slot


def test_four_visitors_on_one_slot_see_their_places_fall_to_zero_then_their_videos(one_slot, tmp_path, photo_path):
    app = one_slot.app
    clients = [Client(app.url, verbose=False, download_files=str(tmp_path / f"v{i}")) for i in range(4)]
    jobs = []

    def submit(i: int) -> None:
        jobs.append(clients[i].submit(PROMPT, handle_file(str(photo_path)), i, True, "crop", "", api_name="/generate"))

    # They arrive one after another: the first has the slot, each later one its place.
    with one_slot.held(lambda: submit(0)):
        for i in range(1, len(clients)):
            submit(i)
            wait_for(lambda: places_of(jobs[-1].outputs()), timeout=60)
    results = [job.result(timeout=120) for job in jobs]
    seen = [places_of(job.outputs()) for job in jobs]
    assert all(result[1] for result in results), "every visitor gets a video"
    for later in seen[1:]:
        assert later, "a waiting visitor is shown a place"
        assert later == sorted(later, reverse=True) and later[-1] == 0, later
    assert max(seen[3]) >= 1, "the last visitor saw runs ahead of them"
    # One slot: the backend never had two tasks in flight at once.
    spans = sorted((one_slot.api.task(t).created_at, one_slot.api.task(t).completed_at) for t in one_slot.mine())
    assert len(spans) == 4
    assert all(done <= next_created for (_, done), (next_created, _) in zip(spans, spans[1:])), spans


def test_four_visitors_on_bronze_two_closing_their_tabs_after_submit_meet_no_429_and_two_tasks_at_most(tmp_path, photo_path):
    """Bronze's limits on the backend (2 at once, 2 a minute; the minute shortened to 2 s, the
    app's pace with it), the app on its defaults: four visitors at once, the first two to be
    submitted closing their tab right then. Their tasks keep their slots until they end, so no
    submit meets a 429 and never more than two tasks run; every video is saved."""
    minute_s = 2.0
    limits = Limits.of(BRONZE, minute_s=minute_s)
    # Tasks longer than two submits apart: without held places, a 3rd would go while both run.
    with LocalBackend(timing=TaskTiming(queue_s=0.2, processing_s=3.0), render=False, limits=limits) as api, LaunchedApp(
        tmp_path / "app",
        WAVESPEED_BASE_URL=api.base_url,
        WAVESPEED_API_KEY="test-key-not-secret",
        SKYREELS_SUBMITS_PER_MINUTE=f"{BRONZE.submits_per_minute * 60 / minute_s:g}",
    ) as app:
        clients = [Client(app.url, verbose=False, download_files=str(tmp_path / f"v{i}")) for i in range(4)]
        jobs = [c.submit(PROMPT, handle_file(str(photo_path)), i, True, "crop", "", api_name="/generate")
                for i, c in enumerate(clients)]
        closed = []
        for count in (1, 2):
            wait_for(lambda: api.tasks_created >= count, timeout=60)
            seed = api.task(api.created_task_ids[count - 1]).seed
            jobs[seed].cancel()  # the tab closes as soon as the task is sent
            closed.append(seed)
        stayed = [job for seed, job in enumerate(jobs) if seed not in closed]
        results = [job.result(timeout=120) for job in stayed]
        store = open_store(tmp_path / "app")
        wait_for(lambda: len(store.recent(limit=10)) == 4 and all(r.status == RunStatus.DONE for r in store.recent(limit=10)), timeout=60)
        runs = store.recent(limit=10)
        refused, submits = api.refused, api.counts["submit"]
        spans = [(api.task(t).created_at, api.task(t).completed_at) for t in api.created_task_ids]
    assert refused == [] and submits == 4, refused  # not one 429: each submit sent once
    assert all(result[1] for result in results), "the visitors who stayed see their videos"
    assert all(run.video_path and Path(run.video_path).exists() for run in runs), "every video is saved"
    at_once = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
    assert len(spans) == 4 and at_once <= 2, spans


# More visitors than the threads that could hold them (the server's shared pool, 6 at a task cap
# of 1, and the line's 4 for arriving runs): were a waiting run to hold a thread, the last ones
# would never be told a place. Sixty at once is bench/bench_line_crowd.py's load; here their
# uploads alone time out on a loaded 2-core machine.
CROWD = 20


def test_a_crowd_waiting_in_line_each_see_their_place_holding_no_thread(tmp_path, photo_path):
    """A crowd behind one run on one slot is each told their place, the last the deepest. What
    they cost the app (threads, memory) is bench/bench_line_crowd.py's table: a figure a loaded
    machine moves belongs there, not in a test that must pass every time."""
    with LocalBackend(timing=TaskTiming(queue_s=0.0, processing_s=600.0), render=False) as slow, LaunchedApp(
        tmp_path / "app", **app_env(slow, SKYREELS_VISITOR_RUNS_PER_HOUR="100", SKYREELS_MAX_WAIT_MINUTES="600")
    ) as app:
        busy, jobs = crowd_in_line(app, slow, photo_path, CROWD)
        deepest = max(places_of(job.outputs())[-1] for job in jobs)
        for job in [busy, *jobs]:
            job.cancel()
    assert deepest == CROWD - 1


def crowd_in_line(app: LaunchedApp, api: LocalBackend, photo_path: Path, size: int, held=lambda: None) -> tuple:
    """One run holding the only slot (then `held()`: bench_line_crowd.py measures there), then
    `size` visitors arriving at once: (the holding run's job, the crowd's jobs), once every one
    of the crowd has been shown a place."""
    first = Client(app.url, verbose=False)
    busy = first.submit(PROMPT, handle_file(str(photo_path)), 1, True, "crop", "", api_name="/generate")
    wait_for(lambda: api.tasks_created == 1, timeout=60)
    held()
    crowd = [Client(app.url, verbose=False) for _ in range(size)]
    jobs = [c.submit(PROMPT, handle_file(str(photo_path)), 10 + i, True, "crop", "", api_name="/generate")
            for i, c in enumerate(crowd)]
    try:
        wait_for(lambda: all(places_of(job.outputs()) for job in jobs), timeout=180, every=0.5)
    except AssertionError:
        unplaced = [(i, job.status().code, str(job.outputs()[-1:])[:300], job.done() and str(job.exception())[:300])
                    for i, job in enumerate(jobs) if not places_of(job.outputs())]
        raise AssertionError(f"{len(unplaced)} of {size} never saw a place: {unplaced[:5]}; "
                             f"the app's log ends: {app.log_path.read_text(errors='replace')[-2000:]}") from None
    return busy, jobs


def test_a_run_past_a_full_line_is_told_at_once_not_held_out_of_sight(tmp_path, photo_path):
    """A line of 2 on one slot, full: the next visitor hears so from the line in seconds, rather
    than waiting unseen in Gradio's queue behind it."""
    with LocalBackend(timing=TaskTiming(queue_s=0.0, processing_s=600.0), render=False) as slow, LaunchedApp(
        tmp_path / "app", **app_env(slow, SKYREELS_QUEUE_SIZE="2", SKYREELS_MAX_WAIT_MINUTES="600")
    ) as app:
        clients = [Client(app.url, verbose=False) for _ in range(4)]
        jobs = [clients[0].submit(PROMPT, handle_file(str(photo_path)), 1, True, "crop", "", api_name="/generate")]
        wait_for(lambda: slow.tasks_created == 1, timeout=60)
        for i, client in enumerate(clients[1:3], start=2):
            jobs.append(client.submit(PROMPT, handle_file(str(photo_path)), i, True, "crop", "", api_name="/generate"))
        wait_for(lambda: all(places_of(job.outputs()) for job in jobs[1:]), timeout=60, every=0.2)
        started = time.monotonic()
        late = clients[3].submit(PROMPT, handle_file(str(photo_path)), 4, True, "crop", "", api_name="/generate")
        wait_for(late.done, timeout=30, every=0.2)
        told_s, made = time.monotonic() - started, slow.tasks_created
        for job in jobs:
            job.cancel()
    assert "The line is full right now (2 runs waiting)" in str(late.exception())
    assert told_s < 15
    assert made == 1


def test_variations_waiting_in_line_show_their_places_then_their_videos(one_slot, tmp_path, photo_path):
    """Two variations behind one run on one slot: their status lines carry their places (the
    second behind the first, not beside it), which fall as the line moves, then both are made."""
    app = one_slot.app
    first = Client(app.url, verbose=False)
    varied = Client(app.url, verbose=False, download_files=str(tmp_path / "v"))
    busy = []
    # The first run holds the slot until both variations have their places (a run of a fixed
    # 1.5 s, then 5 s, once ended before a slow join, which then saw one place only).
    with one_slot.held(lambda: busy.append(first.submit(PROMPT, handle_file(str(photo_path)), 1, True, "crop", "",
                                                        api_name="/generate"))):
        job = varied.submit(PROMPT, handle_file(str(photo_path)), 2, 20, True, "crop", "", api_name="/generate_variations")
        wait_for(lambda: any(len(PLACE.findall(str(out[1]))) == 2 for out in job.outputs()), timeout=60)
    grid, _lines = job.result(timeout=120)
    busy[0].result(timeout=60)
    seen = [[int(m) for m in PLACE.findall(str(out[1]))] for out in job.outputs()]
    places = sorted({tuple(p) for p in seen if p})
    assert any(len(p) == 2 and p[0] != p[1] for p in places), places  # two places, one behind the other
    assert any(0 in p for p in places)
    assert len(grid) == 2


def test_runs_following_their_tasks_leave_the_servers_threads_to_everyone_else(tmp_path, photo_path):
    """Twelve visitors on their own keys, each following a long task, are more than the server's
    shared threads (6 at a task cap of 1): a newcomer's upload and run still get through."""
    with LocalBackend(timing=TaskTiming(queue_s=0.0, processing_s=600.0), render=False) as slow, LaunchedApp(
        tmp_path / "app", **app_env(slow, SKYREELS_VISITOR_RUNS_PER_HOUR="100")
    ) as app:
        keyed = [Client(app.url, verbose=False) for _ in range(12)]
        following = [
            c.submit(PROMPT, handle_file(str(photo_path)), i, True, "crop", f"visitor-key-{i:02d}-0123456789abcdef",
                     api_name="/generate")
            for i, c in enumerate(keyed)
        ]
        wait_for(lambda: slow.tasks_created == 12, timeout=120, every=0.2)
        # Every one of them past its submit (its task id in the store), following its task.
        store = open_store(tmp_path / "app")
        wait_for(lambda: len([r for r in store.recent(limit=20) if r.task_id]) == 12, timeout=60, every=0.2)
        started = time.monotonic()
        newcomer = Client(app.url, verbose=False).submit(
            PROMPT, handle_file(str(photo_path)), 99, True, "crop", "", api_name="/generate"
        )
        wait_for(lambda: slow.tasks_created == 13, timeout=60, every=0.2)
        through_s = time.monotonic() - started
        print(f"\nwith 12 runs following their tasks, a newcomer's run was submitted in {through_s:.1f} s")
        for job in [*following, newcomer]:
            job.cancel()
    assert through_s < 5  # 8 s when those runs took their ticks from the shared threads


@pytest.mark.browser
def test_second_visitor_sees_place_and_estimate_in_view_then_the_video(browser, one_slot):
    from playwright.sync_api import expect

    with browser_page(browser, one_slot.app.url) as first, browser_page(browser, one_slot.app.url) as second:
        fill_in(first, PROMPT)
        fill_in(second, PROMPT, ASTRONAUT)
        # The first visitor holds the only slot while the second waits.
        with one_slot.held(lambda: first.get_by_role("button", name="Generate", exact=True).click()):
            second.get_by_role("button", name="Generate", exact=True).click()
            place = second.locator("#status [data-queue-place]")
            expect(place).to_be_visible(timeout=30_000)
            expect(place).to_be_in_viewport()
            assert re.fullmatch(r"(You are next|\d+ ahead of you) · about \d+ (s|min)", place.inner_text())
        first.locator("#result-video video").wait_for(timeout=60_000)
        second.locator("#result-video video").wait_for(timeout=60_000)
        expect(second.locator("#status [data-queue-place]")).to_have_count(0)


@pytest.mark.browser
def test_a_film_held_in_gradios_queue_shows_its_place_in_the_lines_words(browser, one_slot):
    """A second film waits in Gradio's own queue (films are made one at a time on a task cap of
    1) before its handler runs: its status says its place all the same, then the film is made."""
    from playwright.sync_api import expect

    shots = ROOT / "tests" / "screenshots"  # git-ignored: for a person to look at
    shots.mkdir(exist_ok=True)
    app = one_slot.app
    pages = []
    for viewport in ({"width": 1366, "height": 768}, {"width": 390, "height": 844}):
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(60_000)
        page = context.new_page()
        page.goto(app.url)
        write_storyboard(page)
        pages.append((context, page))
    (_, first), (_, second) = pages
    # The first film's first shot holds the slot while the second film waits.
    with one_slot.held(lambda: first.get_by_role("button", name="Make the film").click()):
        expect(first.locator("#film-status")).to_contain_text("Shot 1", timeout=30_000)
        second.get_by_role("button", name="Make the film").click()
        place = second.locator("#film-status [data-queue-place]")
        expect(place).to_be_visible(timeout=30_000)
        assert place.get_attribute("data-queue-place") == "0"
        assert re.fullmatch(r"You are next · about \d+ (s|min)", place.inner_text())
        place.scroll_into_view_if_needed()
        second.screenshot(path=str(shots / "film-held-phone.png"))
    expect(first.locator("#film-video video")).to_be_visible(timeout=90_000)
    # Its turn: the place gives way to the film's own timeline, and then its film.
    expect(second.locator("#film-status [data-queue-place]")).to_have_count(0, timeout=30_000)
    expect(second.locator("#film-video video")).to_be_visible(timeout=90_000)
    for context, _ in pages:
        context.close()


@pytest.mark.browser
def test_a_films_shot_waiting_for_the_slot_shows_its_place_in_the_timeline(browser, one_slot):
    from playwright.sync_api import expect

    app = one_slot.app
    with browser_page(browser, app.url) as runner, browser_page(browser, app.url) as director:
        fill_in(runner, PROMPT)
        # The runner's task holds the slot while the director writes the storyboard and waits.
        with one_slot.held(lambda: runner.get_by_role("button", name="Generate", exact=True).click()):
            write_storyboard(director)
            director.get_by_role("button", name="Make the film").click()
            place = director.locator("#film-status [data-queue-place]")
            expect(place).to_be_visible(timeout=30_000)
            assert place.get_attribute("data-queue-place") == "0"
            assert re.fullmatch(r"You are next · about \d+ (s|min)", place.inner_text())
            expect(director.locator("#film-status")).to_contain_text("Shot 1")
        expect(director.locator("#film-video video")).to_be_visible(timeout=90_000)
