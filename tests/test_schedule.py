"""The poll schedule's decisions: sparse early, dense near the expected end, back-off on 429.

Most tests are pure: they ask a schedule for its next gap in a given state, or drive the real
`Poller` (the decisions of one follow) on a fake clock over many simulated tasks, so they run in
milliseconds. One test follows
real tasks on the local backend over loopback and checks the promise end to end, with bounds
generous enough for a busy shared machine.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from dataclasses import replace

import pytest

from skyreels_demo.client import WaveSpeedClient
from skyreels_demo.config import Settings
from skyreels_demo.errors import Stopped
from skyreels_demo.local_api import LocalBackend, TaskTiming
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.schedule import (
    MAX_GAP_S,
    MIN_GAP_S,
    AdaptiveSchedule,
    Expectation,
    FixedSchedule,
    Poller,
    PollSchedule,
    PollState,
    schedule_from_setting,
)
from skyreels_demo.tasks import TaskState

QUEUED, RUNNING, COMPLETED = TaskState.QUEUED, TaskState.RUNNING, TaskState.COMPLETED

PRIOR = Expectation.prior(SKYREELS_V1)  # SkyReels V1's: about a minute
MINUTE_TASKS = Expectation(queue_s=10.0, processing_s=60.0, spread_s=3.0, samples=20)


def processing_since(began: float, now: float, *, seen_after: float = 0.5) -> PollState:
    """A task seen queued at `began - seen_after` and processing at `began`, asked about at `now`."""
    return PollState(
        status=RUNNING,
        since_submit=now,
        processing_began_after=began - seen_after,
        processing_began_by=began,
        polls=3,
    )


def rate_limited(times: int, retry_after: float | None = None) -> PollState:
    state = processing_since(5.0, 65.0)  # near the expected end, where polls are densest
    return replace(state, rate_limited=times, retry_after=retry_after)


# --- what the schedule learns --------------------------------------------------------------------


def test_with_no_recorded_runs_the_prior_is_used():
    assert Expectation.learn([], prior=PRIOR) == Expectation.prior(SKYREELS_V1)
    assert Expectation.learn([0.0, -3.0], prior=PRIOR) == Expectation.prior(SKYREELS_V1)  # nonsense durations are ignored


def test_a_few_runs_teach_the_usual_processing_time():
    learned = Expectation.learn([31.0, 29.5, 30.2, 30.8, 29.9], prior=PRIOR)
    # The prior says a minute; five runs of about 30 s move the centre almost all the way.
    assert 29.5 < learned.processing_s < 31.0
    assert learned.samples == 5


def test_the_spread_is_trusted_only_as_runs_accumulate():
    prior = Expectation.prior(SKYREELS_V1)
    steady = [60.0 + 0.1 * (i % 3) for i in range(40)]
    few, many = Expectation.learn(steady[:2], prior=PRIOR), Expectation.learn(steady, prior=PRIOR)
    # Two near-identical runs do not yet make a narrow window; forty do, down to the floor.
    assert few.spread_s > 0.5 * prior.spread_s
    assert many.spread_s < 2.0
    assert many.spread_s >= 0.02 * 60 * 40 / 43  # floored: a lucky streak cannot make it vanish


def test_a_stuck_run_does_not_widen_the_window():
    usual = [60.0 + (i % 5 - 2) * 1.5 for i in range(20)]
    assert Expectation.learn(usual + [600.0], prior=PRIOR).spread_s == pytest.approx(Expectation.learn(usual, prior=PRIOR).spread_s, rel=0.1)


def test_one_slow_run_does_not_move_the_centre():
    durations = [60.0, 61.0, 59.5, 60.5, 180.0]
    assert Expectation.learn(durations, prior=PRIOR).processing_s == pytest.approx(60.5, abs=0.5)


def test_queue_time_is_the_median_of_recorded_waits():
    learned = Expectation.learn([60.0, 61.0], queue_s=[1.0, 5.0, 30.0], prior=PRIOR)
    assert learned.queue_s == 5.0
    assert Expectation.learn([60.0], prior=PRIOR).queue_s == Expectation.prior(SKYREELS_V1).queue_s


def test_the_studio_learns_from_finished_runs_of_its_model_and_host(tmp_path):
    from skyreels_demo.runs import RunStatus
    DONE = RunStatus.DONE
    from skyreels_demo.studio import Studio

    settings = Settings(api_key="k", base_url="https://api.example", data_dir=tmp_path)
    studio = Studio(settings, SKYREELS_V1)
    for i in range(6):
        run = studio.store.create(model=SKYREELS_V1.name, prompt="p", seed=i, mode="api", api_host="api.example")
        studio.store.update(run.id, task_id=f"t{i}", status=DONE, submitted_at=100.0, processing_at=104.0,
                            finished_at=104.0 + 40.0 + i * 0.2)
    learned = studio.expectation("api")
    assert 40.0 < learned.processing_s < 41.2
    assert learned.queue_s == 4.0 and learned.samples == 6
    # Another host, or another model on the same host, starts again from the prior.
    elsewhere = Studio(settings.with_base_url("https://other.example"), SKYREELS_V1, store=studio.store)
    assert elsewhere.expectation("api") == Expectation.prior(SKYREELS_V1)
    other = studio.store.create(prompt="p", seed=9, mode="api", api_host="api.example", model="other/model")
    studio.store.update(other.id, task_id="t9", status=DONE, submitted_at=100.0, processing_at=101.0, finished_at=300.0)
    assert studio.expectation("api").samples == 6
    studio.close()


# --- the adaptive schedule's decisions -----------------------------------------------------------


def test_while_queued_it_polls_moderately_to_catch_the_start():
    schedule = AdaptiveSchedule(MINUTE_TASKS)
    gap = schedule.next_gap(PollState(status=QUEUED, since_submit=4.0, polls=2))
    assert 1.0 <= gap <= 3.0


def test_a_narrow_expectation_watches_the_queue_more_closely():
    # When tasks are short and regular, a coarse start would blur the whole window.
    quick = AdaptiveSchedule(Expectation(queue_s=1.0, processing_s=3.0, spread_s=0.5, samples=20))
    usual = AdaptiveSchedule(MINUTE_TASKS).next_gap(PollState(status=QUEUED, since_submit=0.5))
    # No sparser than twice the spread, so the start is known to well within the window.
    assert quick.next_gap(PollState(status=QUEUED, since_submit=0.5)) <= 1.0 < usual


def test_far_from_the_expected_end_it_polls_sparsely():
    schedule = AdaptiveSchedule(MINUTE_TASKS)
    gap = schedule.next_gap(processing_since(began=8.0, now=8.0))
    assert gap >= 10.0  # about a minute to go: no point asking every second
    assert gap <= MAX_GAP_S


def test_gaps_shrink_as_the_expected_end_nears():
    schedule = AdaptiveSchedule(MINUTE_TASKS)
    gaps = [schedule.next_gap(processing_since(began=8.0, now=8.0 + t)) for t in range(0, 56, 4)]
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[0] > 5 * gaps[-1]


def test_near_the_expected_end_it_polls_densely():
    schedule = AdaptiveSchedule(MINUTE_TASKS)
    centre, spread = schedule.likely_end(processing_since(began=8.0, now=60.0))
    # The middle of when it began, plus the half queue gap (1.5 s) the run store's times miss.
    assert centre == pytest.approx(7.75 + 1.5 + 60.0)
    around = [schedule.next_gap(processing_since(began=8.0, now=centre + z * spread)) for z in (-1.9, -1, 0, 1, 2.4)]
    assert max(around) <= 0.4  # a task completing anywhere here is seen under half a second late
    assert around[2] <= 0.35  # at the likeliest moment, about 0.17 s late on average
    # Ever denser: a task still running late in the window is ever more likely to finish next.
    assert around == sorted(around, reverse=True) and around[-1] <= 0.25


def test_a_resumed_task_is_expected_from_the_middle_of_what_is_known():
    # Resumed 30 s after submit and already processing: it began any time in those 30 s.
    schedule = AdaptiveSchedule(MINUTE_TASKS)
    resumed = PollState(status=RUNNING, since_submit=30.0, processing_began_after=0.0, processing_began_by=30.0)
    centre, spread = schedule.likely_end(resumed)
    assert centre == pytest.approx(15.0 + 1.5 + 60.0)  # the middle, plus the half queue gap stores miss
    opens, closes = schedule.window(resumed)
    assert opens <= 60.0 <= 90.0 <= closes  # a start at either end of the 30 s is covered


def test_a_start_known_only_roughly_widens_the_window():
    schedule = AdaptiveSchedule(MINUTE_TASKS)
    sharp = schedule.likely_end(processing_since(began=8.0, now=20.0, seen_after=0.2))
    blurred = schedule.likely_end(processing_since(began=8.0, now=20.0, seen_after=6.0))
    assert blurred[1] > sharp[1] >= MINUTE_TASKS.spread_s


def test_a_task_running_long_is_polled_less_and_less():
    schedule = AdaptiveSchedule(MINUTE_TASKS)
    late = [schedule.next_gap(processing_since(began=8.0, now=8.0 + 60.0 + t)) for t in (10, 30, 120, 600)]
    assert late == sorted(late)
    assert late[0] >= 0.5 and late[-1] <= MAX_GAP_S


@pytest.mark.parametrize("schedule", [AdaptiveSchedule(MINUTE_TASKS), FixedSchedule(1.0)], ids=["adaptive", "fixed"])
def test_rate_limits_back_off_exponentially_and_honour_retry_after(schedule: PollSchedule):
    calm = schedule.next_gap(processing_since(began=5.0, now=65.0))
    first, second, third = (schedule.next_gap(rate_limited(n)) for n in (1, 2, 3))
    assert 2 * calm <= first < second < third
    assert third == pytest.approx(2 * second)
    assert schedule.next_gap(rate_limited(1, retry_after=20.0)) >= 20.0
    assert schedule.next_gap(rate_limited(50)) <= 2 * MAX_GAP_S  # never silent for long


def test_a_rate_limit_never_brings_the_next_poll_sooner():
    schedule = AdaptiveSchedule(MINUTE_TASKS)
    far = processing_since(began=5.0, now=6.0)
    assert schedule.next_gap(replace(far, rate_limited=1)) >= schedule.next_gap(far)


def test_gaps_stay_within_bounds_whatever_the_state():
    rng = random.Random(7)
    expectations = [
        MINUTE_TASKS,
        Expectation.prior(SKYREELS_V1),
        Expectation(queue_s=0.0, processing_s=0.0, spread_s=0.0),
        Expectation(processing_s=3600.0, spread_s=900.0),
    ]
    for _ in range(5000):
        schedule = AdaptiveSchedule(rng.choice(expectations))
        began_by = rng.choice([None, rng.uniform(0, 300)])
        after = None if began_by is None else rng.choice([None, began_by - rng.uniform(-5, 30)])
        state = PollState(
            status=RUNNING if began_by is not None else QUEUED,
            since_submit=rng.uniform(0, 4000),
            processing_began_after=after,
            processing_began_by=began_by,
        )
        gap = schedule.next_gap(state)
        assert MIN_GAP_S <= gap <= MAX_GAP_S, (schedule, state, gap)


def test_settings_choose_the_schedule():
    assert isinstance(schedule_from_setting("adaptive"), AdaptiveSchedule)
    assert isinstance(schedule_from_setting(""), AdaptiveSchedule)
    assert schedule_from_setting("1.5") == FixedSchedule(1.5)
    with pytest.raises(ValueError, match="SKYREELS_POLL"):
        schedule_from_setting("often")


# --- whole follows on a virtual clock ------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def simulated_follow(schedule: PollSchedule, queue_s: float, processing_s: float, latency_s: float) -> tuple[float, int]:
    """(how late completion is seen, polls made): the real Poller on a fake clock."""
    clock = FakeClock()
    poller = Poller(schedule, clock=clock)  # follow starts with the submit answer in hand
    submitted = clock.now
    completed_at = queue_s + processing_s
    while True:
        clock.now += max(0.0, poller.due_in())
        poller.polling()
        asked = clock.now - submitted
        status = QUEUED if asked < queue_s else RUNNING if asked < completed_at else COMPLETED
        clock.now += latency_s
        poller.saw(status)
        if status is COMPLETED:
            return clock.now - submitted - completed_at, poller.polls


def simulate_many(
    schedule: PollSchedule, tasks: int = 1500, processing_s: float = 60.0
) -> tuple[float, float, float]:
    """Median and p95 lateness, and mean polls, over SkyReels-like tasks (5% spread)."""
    rng = random.Random(2024)
    late, polls = [], []
    for _ in range(tasks):
        length = rng.gauss(processing_s, 0.05 * processing_s)
        seen, asked = simulated_follow(schedule, rng.uniform(0, 20), length, latency_s=0.02)
        late.append(seen)
        polls.append(asked)
    late.sort()
    return statistics.median(late), late[int(0.95 * len(late))], statistics.mean(polls)


def test_adaptive_sees_completion_sooner_with_half_the_polls_of_a_fixed_second():
    learned = Expectation.learn([random.Random(i).gauss(60.0, 3.0) for i in range(30)], prior=PRIOR)
    median, p95, polls = simulate_many(AdaptiveSchedule(learned))
    sdk_median, sdk_p95, sdk_polls = simulate_many(FixedSchedule(1.0))
    assert sdk_median > 0.4 and sdk_polls > 60  # the baseline is what the SDK does
    assert median <= 0.25 and p95 <= 0.5
    assert polls <= 0.5 * sdk_polls


@pytest.mark.parametrize("processing_s", [3.0, 10.0, 30.0, 60.0, 120.0, 300.0])
def test_on_a_fresh_store_it_is_never_late_by_much_and_never_asks_more_than_a_fixed_second(processing_s):
    # Only the prior (a one-minute guess): tasks of any length from seconds to minutes.
    prior = AdaptiveSchedule(Expectation.prior(SKYREELS_V1))
    rng = random.Random(int(processing_s))
    for _ in range(60):
        queue_s = rng.uniform(0, 20)
        length = processing_s * rng.uniform(0.9, 1.1)
        late, polls = simulated_follow(prior, queue_s, length, latency_s=0.02)
        _, fixed_polls = simulated_follow(FixedSchedule(1.0), queue_s, length, latency_s=0.02)
        elapsed = queue_s + length
        assert late <= max(0.1 * elapsed, 1.5) + 0.05, (queue_s, length, late)
        assert polls <= fixed_polls, (queue_s, length, polls, fixed_polls)


@pytest.mark.parametrize("processing_s", [20.0, 60.0, 120.0])
def test_after_a_few_runs_of_a_shape_it_is_prompt_with_half_the_polls(processing_s):
    rng = random.Random(7)
    learned = Expectation.learn([rng.gauss(processing_s, 0.05 * processing_s) for _ in range(10)], prior=PRIOR)
    assert learned.trusted
    median, p95, polls = simulate_many(AdaptiveSchedule(learned), tasks=600, processing_s=processing_s)
    _, _, sdk_polls = simulate_many(FixedSchedule(1.0), tasks=600, processing_s=processing_s)
    assert median <= 0.25 and p95 <= 0.5, (median, p95)
    assert polls <= 0.5 * sdk_polls, (polls, sdk_polls)


def test_a_change_of_shape_is_noticed_and_the_window_widens_until_it_settles_again():
    minute = [60.0 + (i % 5 - 2) * 1.0 for i in range(20)]
    settled = Expectation.learn(minute, prior=PRIOR)
    assert settled.trusted and settled.processing_s == pytest.approx(60.0, abs=1)
    # WaveSpeed gets twice as fast: the newest runs (first) take 30 s.
    once = Expectation.learn([30.0] + minute, prior=PRIOR)
    assert not once.trusted and once.processing_s < 40
    # Never late by much while it is unsure, though the old window still sits at a minute.
    late, _ = simulated_follow(AdaptiveSchedule(once), 5.0, 30.0, latency_s=0.02)
    assert late <= 3.5 + 0.05
    thrice = Expectation.learn([30.5, 29.5, 30.0] + minute, prior=PRIOR)
    assert thrice.trusted and thrice.processing_s == pytest.approx(30.0, abs=1)
    # One stuck run among many steady ones unsettles only until the next steady run.
    assert Expectation.learn([61.0, 600.0] + minute, prior=PRIOR).trusted


def test_with_a_webhook_expected_nothing_is_polled_early_and_a_lost_one_is_caught_within_half_a_minute():
    for length in (3.0, 60.0, 200.0):
        clock = FakeClock()
        poller = Poller(AdaptiveSchedule(Expectation.prior(SKYREELS_V1)), clock=clock, push_expected=True)
        asked: list[float] = []
        start = clock.now
        while not asked or asked[-1] < length:
            clock.now += max(0.0, poller.due_in())
            poller.polling()
            asked.append(clock.now - start)
            poller.saw(RUNNING if asked[-1] < length else COMPLETED)
        assert asked[-1] - length <= 30.0  # the webhook never came: still seen, later but surely
        if length <= 10:
            assert asked[0] >= length  # no request before a short task's end: the webhook tells
# --- over loopback -------------------------------------------------------------------------------


def follow_one(backend: LocalBackend, schedule: PollSchedule, results: dict, key: str, tmp_path) -> None:
    settings = Settings(api_key="test-key-not-secret", base_url=backend.base_url, data_dir=tmp_path / key)
    with WaveSpeedClient(settings) as client:
        inputs = {"prompt": "a woman smiles", "image": f"{backend.base_url}/files/uploads/none.jpg", "seed": 1}
        job = client.submit(SKYREELS_V1, inputs)
        for update in job.follow(schedule=schedule, deadline_s=60):
            if update.is_final:
                results[key] = (time.time(), job.id)


def test_following_on_loopback_sees_completion_promptly_with_fewer_requests(tmp_path):
    # Long enough for the gaps to open up (on a 10 s task a fixed second is already sparse).
    timing = TaskTiming(queue_s=0.5, processing_s=20.0)
    # What the app would have learned from earlier runs of the same length.
    expected = Expectation(queue_s=0.5, processing_s=20.0, spread_s=0.5, samples=20)
    results: dict[str, tuple[float, str]] = {}
    with LocalBackend(timing=timing, render=False) as adaptive_api, LocalBackend(timing=timing, render=False) as fixed_api:
        threads = [
            threading.Thread(target=follow_one, args=(adaptive_api, AdaptiveSchedule(expected), results, "adaptive", tmp_path)),
            threading.Thread(target=follow_one, args=(fixed_api, FixedSchedule(1.0), results, "fixed", tmp_path)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert set(results) == {"adaptive", "fixed"}
        seen_at, task_id = results["adaptive"]
        late = seen_at - adaptive_api.task(task_id).completed_at
        adaptive_polls, fixed_polls = adaptive_api.counts["result"], fixed_api.counts["result"]
    assert -0.05 <= late <= 1.0  # ~0.13 s typically; generous for a busy machine
    assert fixed_polls >= 18
    assert adaptive_polls <= 0.7 * fixed_polls


# --- the poller's bookkeeping, and follow on top of it ---------------------------------------


def test_the_poller_pins_the_start_to_the_first_poll_that_saw_it_running():
    clock = FakeClock()
    poller = Poller(FixedSchedule(1.0), clock=clock)
    for seen in (QUEUED, QUEUED, RUNNING, RUNNING):
        clock.now += poller.due_in()
        poller.polling()
        clock.now += 0.05  # the answer takes a moment; the sighting belongs to the ask
        poller.saw(seen)
    # Asked at 1.0 and 2.05 (queued), then at 3.1 (running): each gap counts from an answer.
    assert poller.state.processing_began_after == pytest.approx(2.05)
    assert poller.state.processing_began_by == pytest.approx(3.1)
    assert poller.polls == 4


def test_a_resumed_follow_polls_at_once_and_a_push_brings_the_next_poll_forward():
    clock = FakeClock()
    resumed = Poller(AdaptiveSchedule(MINUTE_TASKS), clock=clock, age_s=30.0, answer_in_hand=False)
    assert resumed.due_in() <= 0 and resumed.now() == pytest.approx(30.0)
    pushed = Poller(AdaptiveSchedule(MINUTE_TASKS), clock=clock, push_expected=True)
    assert pushed.due_in() >= 10.0  # a webhook will tell: polls are a sparse safety net
    pushed.pushed()
    assert pushed.due_in() <= 0


def test_failed_polls_back_off_then_give_up_after_the_policy_s_count():
    clock = FakeClock()
    poller = Poller(FixedSchedule(0.5), clock=clock, max_failures=3)
    gaps = []
    for _ in range(2):
        assert poller.failed() is False
        gaps.append(poller.due_in())
    assert gaps[1] > gaps[0] >= 0.5
    assert poller.failed() is True


def test_a_rate_limited_poll_backs_off_while_follow_keeps_ticking_and_hears_stop(tmp_path):
    # The server asks for 2 s between polls; urllib3 used to wait that out inside result() (three
    # times over), with no tick to the UI and no way to stop. Now the schedule owns the wait.
    with LocalBackend(timing=TaskTiming(queue_s=0.1, processing_s=30.0), render=False) as api:
        settings = Settings(api_key="k", base_url=api.base_url, data_dir=tmp_path)
        with WaveSpeedClient(settings) as client:
            inputs = {"prompt": "a man waves", "image": f"{api.base_url}/files/uploads/none.jpg", "seed": 1}
            task = client.submit(SKYREELS_V1, inputs).task
            api.faults.rate_limit("result", times=3, retry_after=2.0)
            stop = threading.Event()
            ticks, started = [], time.monotonic()
            with pytest.raises(Stopped):
                for update in client.follow(task.id, schedule=FixedSchedule(0.2), stop=stop):
                    ticks.append(time.monotonic() - started)
                    if ticks[-1] > 2.5:
                        stop.set()
            stopped_after = time.monotonic() - started
        polls = api.counts["result"]
    assert len(ticks) >= 3  # a tick about every second while backing off
    assert stopped_after < 4.0  # Stop was heard at once, not after 6 s of hidden retries
    assert polls <= 3  # one poll per 2 s back-off: the 429s reached the schedule
