"""When to check a task: WaveSpeed's rule held, checks placed where the end is likely, back-off on 429.

Most tests are pure: they ask a schedule for its next check in a given state, or drive the real
`Poller` (the decisions of one follow) on a fake clock over many simulated tasks, so they run in
milliseconds at the rule's real numbers (2 s after the submit, 5 s apart). Two tests follow
real tasks on the local backend over loopback, which notes the time of every check it hears:
one at the rule's real numbers (seconds), one with a test spec a tenth as long (0.2 s, 0.5 s),
the rule's ratios kept, through 429s and failures.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from dataclasses import replace

import pytest

from skyreels_demo.wavespeed.client import WaveSpeedClient
from skyreels_demo.config import Settings
from skyreels_demo.errors import Stopped
from skyreels_demo.local_api import LocalBackend, TaskTiming
from skyreels_demo.models import SKYREELS_V1, VISION_LLM, CheckRule
from skyreels_demo.wavespeed.schedule import (
    MAX_GAP_S,
    MIN_GAP_S,
    PUSH_SAFETY_GAP_S,
    AdaptiveSchedule,
    Ended,
    Expectation,
    FixedSchedule,
    Poller,
    PollSchedule,
    PollState,
    schedule_from_setting,
)
from skyreels_demo.status import TaskState

from .conftest import wait_for

QUEUED, RUNNING, COMPLETED = TaskState.QUEUED, TaskState.RUNNING, TaskState.COMPLETED

RULE = SKYREELS_V1.checks  # a video task's: first check 2 s after submit, then 5 s apart
PRIOR = Expectation.prior(SKYREELS_V1)  # SkyReels V1's guess: about a minute, give or take half
# What a few runs of 35 s tasks teach: an end known to within a second.
LEARNED = Expectation(queue_s=0.5, processing_s=35.0, spread_s=0.8, samples=6)


def test_a_video_tasks_rule_is_wavespeeds_and_an_image_models_is_two_seconds():
    assert (RULE.first_s, RULE.apart_s) == (2.0, 5.0)
    assert (VISION_LLM.checks.first_s, VISION_LLM.checks.apart_s) == (2.0, 2.0)
    assert RULE.scaled(0.1) == CheckRule(0.2, 0.5, 1.5)


# --- what the schedule learns --------------------------------------------------------------------


def test_with_no_recorded_runs_the_prior_is_used():
    assert Expectation.learn([], prior=PRIOR) == PRIOR
    assert Expectation.learn([0.0, -3.0, (5.0, -1.0)], prior=PRIOR) == PRIOR  # nonsense is ignored
    assert PRIOR.end_s == 70.0 and PRIOR.spread_s > 30  # a guess: the checks stay patient


def test_the_making_comes_from_wavespeeds_own_timing_and_the_rest_from_where_checks_saw_the_end():
    # Two runs: made in 34.8 s and 35.3 s by WaveSpeed's timings; the checks saw each end within
    # 5 s, which for the part that is not the making (queue, storing) means under a second.
    learned = Expectation.learn([Ended(31.0, 36.0, making_s=35.3), Ended(30.5, 35.5, making_s=34.8)], prior=PRIOR)
    assert learned.processing_s == pytest.approx(35.05, abs=0.01)
    assert 0.0 < learned.queue_s < 0.7
    assert learned.spread_s < 2.0 and learned.samples == 2


def test_without_wavespeeds_timing_intervals_that_overlap_pin_the_end_to_their_overlap():
    # A backend that says nothing of the making: each run's end is known to within 5 s only,
    # but the runs were checked at different moments, and they agree on 33-35 s.
    learned = Expectation.learn([(30.0, 35.0), (33.0, 38.0), (32.5, 37.5)], prior=PRIOR)
    assert 33.0 < learned.end_s < 35.0
    assert learned.spread_s < 2.0


def test_a_stuck_run_does_not_move_or_widen_the_usual():
    usual = [Ended(30.0 + i % 3, 35.0 + i % 3, making_s=33.0 + (i % 5) * 0.3) for i in range(10)]
    stuck = Ended(590.0, 600.0, making_s=598.0)
    plain, with_stuck = Expectation.learn(usual, prior=PRIOR), Expectation.learn([usual[0], stuck, *usual[1:]], prior=PRIOR)
    assert with_stuck.end_s == pytest.approx(plain.end_s, abs=0.3)
    assert with_stuck.spread_s == pytest.approx(plain.spread_s, rel=0.2)


def test_a_change_of_shape_is_learned_from_the_newest_runs_alone():
    minute = [Ended(58.0, 63.0, making_s=60.0 + (i % 5 - 2) * 0.5) for i in range(20)]
    settled = Expectation.learn(minute, prior=PRIOR)
    assert settled.processing_s == pytest.approx(60.0, abs=0.5) and settled.spread_s < 2.5
    # WaveSpeed gets twice as fast: the newest run (first) took 30 s.
    once = Expectation.learn([Ended(28.0, 33.0, making_s=30.0), *minute], prior=PRIOR)
    assert once.processing_s == pytest.approx(30.0, abs=0.5)


def test_the_studio_learns_from_finished_runs_of_its_model_and_host(tmp_path):
    from skyreels_demo.status import RunStatus
    from skyreels_demo.studio.studio import Studio

    settings = Settings(api_key="k", base_url="https://api.example", data_dir=tmp_path)
    studio = Studio(settings, SKYREELS_V1)
    for i in range(6):
        run = studio.store.create(model=SKYREELS_V1.name, prompt="p", seed=i, mode="api", api_host="api.example")
        studio.store.update(run.id, task_id=f"t{i}", status=RunStatus.DONE, submitted_at=100.0, processing_at=102.0,
                            ended_after=100.0 + 38.0, finished_at=100.0 + 41.0 + i * 0.2, inference_ms=40_000 + i * 100)
    learned = studio.expectation("api")
    assert 40.0 < learned.processing_s < 40.6 and learned.samples == 6
    assert 40.0 < learned.end_s < 41.5
    # Another host, or another model on the same host, starts again from the prior.
    elsewhere = Studio(settings.with_base_url("https://other.example"), SKYREELS_V1, store=studio.store)
    assert elsewhere.expectation("api") == PRIOR
    other = studio.store.create(prompt="p", seed=9, mode="api", api_host="api.example", model="other/model")
    studio.store.update(other.id, task_id="t9", status=RunStatus.DONE, submitted_at=100.0, finished_at=300.0)
    assert studio.expectation("api").samples == 6
    studio.close()


def test_the_rule_is_scaled_only_for_a_backend_on_this_machine(tmp_path):
    from skyreels_demo.studio.studio import Studio

    scaled = Settings(api_key="k", base_url="http://127.0.0.1:9", data_dir=tmp_path, check_scale=0.1)
    assert Studio(scaled, SKYREELS_V1).check_rule("api") == CheckRule(0.2, 0.5, 1.5)
    assert Studio(scaled.with_base_url("https://api.wavespeed.ai"), SKYREELS_V1).check_rule("api") == RULE
    assert Studio(scaled.with_base_url("https://api.wavespeed.ai"), SKYREELS_V1).check_rule("preview") == CheckRule(0.2, 0.5, 1.5)
    assert Studio(replace(scaled, check_scale=1.0), SKYREELS_V1).check_rule("api") == RULE


# --- the schedule's decisions ----------------------------------------------------------------------


def checks_of(schedule: PollSchedule, end_s: float, *, push: bool = False, latency_s: float = 0.02) -> list[float]:
    """When the real Poller checks a task that ends `end_s` after its submit (fake clock)."""
    clock = FakeClock()
    poller = Poller(schedule, clock=clock, push_expected=push)
    start, asked = clock.now, []
    while not asked or asked[-1] < end_s:
        clock.now += max(0.0, poller.due_in())
        poller.polling()
        asked.append(clock.now - start)
        clock.now += latency_s
        poller.saw(RUNNING if asked[-1] < end_s else COMPLETED)
    return asked


def test_with_nothing_learned_it_checks_at_2_s_then_every_5_s_growing_for_long_tasks():
    asked = checks_of(AdaptiveSchedule(PRIOR, RULE), 36.0)
    assert asked[0] == pytest.approx(2.0)
    assert [round(b - a, 1) for a, b in zip(asked, asked[1:])] == [5.0] * (len(asked) - 1)
    long = checks_of(AdaptiveSchedule(PRIOR, RULE), 400.0)
    gaps = [b - a for a, b in zip(long, long[1:])]
    assert gaps == sorted(gaps) and gaps[-1] == pytest.approx(MAX_GAP_S, abs=0.1)  # gradually longer
    assert long[-1] - 400.0 <= max(5.0, 0.1 * 400.0)  # never late by more than a gap or a tenth


def test_with_a_learned_end_it_checks_at_2_s_then_just_past_the_likely_end_and_a_gap_later():
    schedule = AdaptiveSchedule(LEARNED, RULE)
    asked = checks_of(schedule, 60.0)  # a task that overruns: every check it would make
    assert asked[0] == pytest.approx(2.0)  # a task refused at once is said at once
    before = [t for t in asked if t < LEARNED.end_s]
    aimed = asked[len(before)]
    # Between: never quiet longer than MAX_GAP_S, and the check that keeps it so stays a whole
    # gap clear of the one aimed at the end.
    assert all(b - a <= MAX_GAP_S + 0.05 for a, b in zip(asked, asked[1:]))
    assert len(before) == 3 and aimed - before[-1] == pytest.approx(RULE.apart_s, abs=0.05)
    assert LEARNED.end_s < aimed < LEARNED.end_s + 2 * LEARNED.spread_s  # just past the likely end
    assert asked[len(before) + 1] == pytest.approx(aimed + RULE.apart_s, abs=0.05)
    # A task ending where it usually does is seen with a handful of checks, under 2 s late.
    usual = checks_of(schedule, LEARNED.end_s)
    assert len(usual) <= 5 and usual[-1] - LEARNED.end_s < 2.0


def test_far_past_the_usual_end_the_checks_thin_out():
    asked = checks_of(AdaptiveSchedule(LEARNED, RULE), 600.0)
    late = [b - a for a, b in zip(asked, asked[1:]) if a > 60.0]
    assert late == sorted(late) and late[-1] == pytest.approx(MAX_GAP_S, abs=0.1)


@pytest.mark.parametrize("schedule", [AdaptiveSchedule(LEARNED, RULE), FixedSchedule(1.0)], ids=["adaptive", "fixed"])
def test_rate_limits_back_off_exponentially_and_honour_retry_after(schedule: PollSchedule):
    state = PollState(status=RUNNING, since_submit=36.0, polls=4)
    calm = schedule.next_gap(state)
    first, second, third = (schedule.next_gap(replace(state, rate_limited=n)) for n in (1, 2, 3))
    assert calm <= first < second <= third
    assert second == pytest.approx(2 * first) and third == pytest.approx(min(2 * second, 2 * MAX_GAP_S))
    assert schedule.next_gap(replace(state, rate_limited=1, retry_after=20.0)) >= 20.0
    assert schedule.next_gap(replace(state, rate_limited=50)) <= 2 * MAX_GAP_S  # never silent for long


def test_a_fixed_schedule_backs_off_from_the_rule_s_gap_as_the_adaptive_one_does():
    state = PollState(status=RUNNING, since_submit=36.0, polls=4, rate_limited=1)
    adaptive = AdaptiveSchedule(LEARNED, RULE).next_gap(state)
    assert FixedSchedule(0.1, RULE).next_gap(state) == 2 * RULE.apart_s <= adaptive
    assert FixedSchedule(0.1, RULE.scaled(0.1)).next_gap(state) == 2 * RULE.scaled(0.1).apart_s  # the tests' clock


def test_gaps_stay_within_bounds_whatever_the_state():
    rng = random.Random(7)
    expectations = [LEARNED, PRIOR, Expectation(queue_s=0.0, processing_s=0.0, spread_s=0.0), Expectation(processing_s=3600.0, spread_s=900.0)]
    for _ in range(1500):
        schedule = AdaptiveSchedule(rng.choice(expectations), RULE)
        state = PollState(status=rng.choice([QUEUED, RUNNING]), since_submit=rng.uniform(0, 4000), polls=rng.choice([0, 1, 5]))
        gap = schedule.next_gap(state)
        assert MIN_GAP_S <= gap <= MAX_GAP_S + RULE.apart_s, (schedule, state, gap)


def test_settings_choose_the_schedule_held_to_the_models_rule():
    assert schedule_from_setting("adaptive", rule=RULE) == AdaptiveSchedule(Expectation(), RULE)
    assert isinstance(schedule_from_setting(""), AdaptiveSchedule)
    assert schedule_from_setting("1.5", rule=RULE) == FixedSchedule(1.5, RULE)
    with pytest.raises(ValueError, match="SKYREELS_POLL"):
        schedule_from_setting("often")


# --- the rule, held by the Poller whatever a schedule asks ----------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_poller_never_checks_sooner_than_the_rule_whatever_happens():
    """Schedules that ask too often, 429s that ask for less than the rule, failures, webhooks
    arriving at any moment, follows resumed: no check 2 s from the submit or 5 s from the last."""
    rng = random.Random(11)
    schedules = [FixedSchedule(0.1, RULE), FixedSchedule(3.0, RULE), AdaptiveSchedule(LEARNED, RULE), AdaptiveSchedule(PRIOR, RULE)]
    for trial in range(300):
        clock = FakeClock()
        resumed = rng.random() < 0.3
        poller = Poller(rng.choice(schedules), clock=clock, age_s=rng.uniform(0, 60) if resumed else 0.0,
                        answer_in_hand=not resumed, push_expected=rng.random() < 0.3)
        submitted = clock.now - poller.now()
        started, asked, answered = clock.now, [], None
        for _ in range(12):
            wait = max(0.0, poller.due_in())
            if rng.random() < 0.2:  # a webhook arrives partway through the wait
                clock.now += rng.uniform(0, wait)
                poller.pushed()
                wait = max(0.0, poller.due_in())
            clock.now += wait
            poller.polling()
            asked.append(clock.now)
            assert clock.now - submitted >= RULE.first_s - 1e-9, trial
            if answered is not None:
                assert clock.now - answered >= RULE.apart_s - 1e-9, trial
            elif resumed:
                assert clock.now - started >= RULE.apart_s - 1e-9, trial  # another follow may just have asked
            clock.now += rng.uniform(0.005, 0.5)
            answered = clock.now
            outcome = rng.random()
            if outcome < 0.15:
                poller.rate_limited(rng.choice([None, 0.1, 1.0]))
            elif outcome < 0.25:
                if poller.failed():
                    break
            else:
                poller.saw(RUNNING)


def test_a_push_brings_the_confirming_check_forward_as_far_as_the_rule_allows():
    clock = FakeClock()
    pushed = Poller(AdaptiveSchedule(LEARNED, RULE), clock=clock, push_expected=True)
    assert pushed.due_in() >= PUSH_SAFETY_GAP_S  # a webhook will tell: checks are a sparse safety net
    clock.now += 0.5
    pushed.pushed()
    assert pushed.due_in() == pytest.approx(RULE.first_s - 0.5)  # not before 2 s from the submit
    clock.now += pushed.due_in()
    pushed.polling()
    clock.now += 0.1
    pushed.saw(RUNNING)  # not done after all: a later push waits out the gap
    pushed.pushed()
    assert pushed.due_in() == pytest.approx(RULE.apart_s)


def test_failed_polls_back_off_then_give_up_after_the_policys_count():
    clock = FakeClock()
    poller = Poller(FixedSchedule(0.5), clock=clock, max_failures=3)
    gaps = []
    for _ in range(2):
        assert poller.failed() is False
        gaps.append(poller.due_in())
    assert gaps[1] > gaps[0] >= 0.5
    assert poller.failed() is True


# --- whole follows on a virtual clock: what the rule leaves to win -------------------------------


def simulated_follow(schedule: PollSchedule, queue_s: float, processing_s: float, latency_s: float = 0.02) -> tuple[float, int, Ended]:
    """(how late the end is seen, checks made, what the run store would record)."""
    clock = FakeClock()
    poller = Poller(schedule, clock=clock)
    start, end, running_at = clock.now, queue_s + processing_s, 0.0
    while True:
        clock.now += max(0.0, poller.due_in())
        poller.polling()
        asked = clock.now - start
        status = QUEUED if asked < queue_s else RUNNING if asked < end else COMPLETED
        clock.now += latency_s
        poller.saw(status)
        if status is COMPLETED:
            return clock.now - start - end, poller.polls, Ended(running_at, asked, making_s=processing_s)
        running_at = asked


def steady_task(rng: random.Random, making_s: float = 35.0, share: float = 0.02) -> tuple[float, float]:
    """A steady shape: a queue of up to a second, a making that varies by `share` (1 sd)."""
    return rng.uniform(0.0, 1.0), rng.gauss(making_s, share * making_s)


def lateness(schedule: PollSchedule, tasks: int, seed: int) -> tuple[list[float], list[int]]:
    rng, late, checks = random.Random(seed), [], []
    for _ in range(tasks):
        seen, made, _ = simulated_follow(schedule, *steady_task(rng))
        late.append(seen)
        checks.append(made)
    return sorted(late), checks


def after_two_runs(seed: int) -> Expectation:
    """What the studio knows after two runs of the shape, followed from the prior as it would."""
    rng, ends = random.Random(seed), []
    for _ in range(2):
        *_, ended = simulated_follow(AdaptiveSchedule(Expectation.learn(ends, prior=PRIOR), RULE), *steady_task(rng))
        ends.insert(0, ended)
    return Expectation.learn(ends, prior=PRIOR)


def test_after_two_runs_of_a_shape_the_end_is_seen_within_about_1_5_s_and_a_gap_with_few_checks():
    """35 s tasks: median lateness about 1.5 s, almost all within one gap (5 s), about 4 checks;
    a fixed 5 s poll is as late at the median and makes twice the checks."""
    medians, within, checks = [], [], []
    for seed in range(4):
        late, made = lateness(AdaptiveSchedule(after_two_runs(seed), RULE), 150, seed + 100)
        medians.append(statistics.median(late))
        within.append(sum(t <= RULE.apart_s + 0.05 for t in late) / len(late))
        checks.append(statistics.mean(made))
    fixed_late, fixed_checks = lateness(FixedSchedule(5.0, RULE), 150, 100)
    assert statistics.median(medians) <= 1.6 and max(medians) <= 2.2, medians
    assert min(within) >= 0.97, within
    assert max(checks) <= 5.0, checks
    assert statistics.median(fixed_late) > 1.6 and statistics.mean(fixed_checks) >= 7


def test_with_nothing_learned_it_is_never_late_by_more_than_a_gap_or_a_tenth():
    prior = AdaptiveSchedule(PRIOR, RULE)
    rng = random.Random(3)
    for processing_s in (3.0, 10.0, 35.0, 60.0, 120.0, 300.0):
        for _ in range(20):
            queue_s, length = rng.uniform(0, 10), processing_s * rng.uniform(0.9, 1.1)
            late, _, _ = simulated_follow(prior, queue_s, length)
            assert late <= max(RULE.apart_s, 0.1 * (queue_s + length), RULE.first_s) + 0.05, (queue_s, length, late)


def test_a_shape_that_got_faster_is_still_seen_within_the_longest_quiet():
    # Learned at a minute; WaveSpeed now takes 30 s: the checks that keep it from going quiet see it.
    minute = Expectation(queue_s=0.5, processing_s=60.0, spread_s=1.0, samples=20)
    late, _, _ = simulated_follow(AdaptiveSchedule(minute, RULE), 0.5, 30.0)
    assert late <= MAX_GAP_S


def test_with_a_webhook_expected_nothing_is_checked_early_and_a_lost_one_is_caught_within_the_safety_gap():
    for length in (3.0, 60.0, 200.0):
        asked = checks_of(AdaptiveSchedule(PRIOR, RULE), length, push=True)
        assert asked[-1] - length <= PUSH_SAFETY_GAP_S + 0.1  # the webhook never came: seen all the same
        assert all(b - a >= RULE.apart_s for a, b in zip(asked, asked[1:]))
        if length <= 10:
            assert asked[0] >= length  # no check before a short task's end: the webhook tells


# --- over loopback: the checks the backend heard ------------------------------------------------


def follow_one(backend: LocalBackend, schedule: PollSchedule, tmp_path, key: str, results: dict) -> None:
    settings = Settings(api_key="test-key-not-secret", base_url=backend.base_url, data_dir=tmp_path / key)
    with WaveSpeedClient(settings) as client:
        inputs = {"prompt": "a woman smiles", "image": f"{backend.base_url}/files/uploads/none.jpg", "seed": 1}
        job = client.submit(SKYREELS_V1, inputs)
        for update in job.follow(schedule=schedule, deadline_s=60):
            if update.is_final:
                results[key] = (job.id, update)


def heard(backend: LocalBackend, task_id: str) -> tuple[float, list[float]]:
    """(seconds from the submit to the first check, seconds between checks), as the backend heard them."""
    created, times = backend.task(task_id).created_at, backend.checks[task_id]
    return times[0] - created, [b - a for a, b in zip(times, times[1:])]


def test_on_loopback_no_check_comes_sooner_than_the_rule_through_429s_and_failures(tmp_path):
    """A test spec a tenth as long as a video's (0.2 s, then 0.5 s apart): schedules that would ask
    sooner, 429s asking for less, 5xx answers; the backend hears every check within the rule."""
    rule = RULE.scaled(0.1)
    learned = Expectation(queue_s=0.1, processing_s=2.0, spread_s=0.1, samples=5)
    schedules = {
        "eager": FixedSchedule(0.05, rule),
        "learned": AdaptiveSchedule(learned, rule),
        "prior": AdaptiveSchedule(Expectation(queue_s=1.0, processing_s=6.0, spread_s=3.0), rule),
    }
    results: dict = {}
    with LocalBackend(timing=TaskTiming(queue_s=0.1, processing_s=2.0), render=False) as api:
        api.faults.rate_limit("result", times=2, retry_after=0.1)
        api.faults.server_errors("result", (500, 502))
        threads = {k: threading.Thread(target=follow_one, args=(api, s, tmp_path, k, results)) for k, s in schedules.items()}
        threads["eager"].start()
        wait_for(lambda: api.counts["result"] >= 4, timeout=30)  # the eager one meets every fault
        for key in ("learned", "prior"):
            threads[key].start()
        for thread in threads.values():
            thread.join(60)
        assert set(results) == set(schedules)
        seen = {key: heard(api, task_id) for key, (task_id, _) in results.items()}
        answers = {key: api.counts["result"] for key in results}
    for key, (first, gaps) in seen.items():
        assert first >= rule.first_s, (key, first)
        assert min(gaps, default=rule.apart_s) >= rule.apart_s, (key, gaps)
    assert answers and sum(len(g) + 1 for _, g in seen.values()) == api.counts["result"]
    # The learned schedule aims at the end: it checks at the rule's first moment, then once or twice near the end.
    assert len(seen["learned"][1]) + 1 <= 3


def test_on_loopback_at_the_real_numbers_the_first_check_waits_2_s_and_the_next_5_s(tmp_path):
    """The rule as WaveSpeed states it, in real seconds, on a task of 3 s: checked at 2 s (still
    running) and next at 7 s, done; the final task says when it was last seen running."""
    results: dict = {}
    with LocalBackend(timing=TaskTiming(queue_s=0.0, processing_s=3.0), render=False) as api:
        follow_one(api, AdaptiveSchedule(PRIOR, RULE), tmp_path, "real", results)
        task_id, final = results["real"]
        first, gaps = heard(api, task_id)
        created = api.task(task_id).created_at
    assert 2.0 <= first < 3.0 and len(gaps) == 1 and 5.0 <= gaps[0] < 6.0
    assert final.ended_after is not None and 2.0 <= final.ended_after - created < 3.0


def test_a_check_whose_kept_alive_connection_is_closed_under_it_is_asked_again_at_once(tmp_path):
    """Servers close idle connections after some seconds (uvicorn after 5 s), the very gap between
    a video task's checks: the check that meets the close never reached the server, and goes again
    at once on a new connection, rather than failing and waiting a whole gap more."""
    import json
    import socket

    answer = json.dumps({"code": 200, "message": "success", "data": {"id": "t1", "status": "processing"}}).encode()
    heard: list[str] = []

    def serve(listener: socket.socket) -> None:
        for connection_number in (1, 2):
            conn, _ = listener.accept()
            with conn:
                for request_number in (1, 2):
                    request = b""
                    while b"\r\n\r\n" not in request:
                        chunk = conn.recv(4096)
                        if not chunk:
                            return
                        request += chunk
                    heard.append(f"{connection_number}.{request_number}")
                    if connection_number == 1 and request_number == 2:
                        break  # closed under it: the second check on the kept-alive connection
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(answer)).encode() + b"\r\nConnection: keep-alive\r\n\r\n" + answer)
                    if connection_number == 2:
                        break

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        server = threading.Thread(target=serve, args=(listener,), daemon=True)
        server.start()
        settings = Settings(api_key="k", base_url=f"http://127.0.0.1:{listener.getsockname()[1]}", data_dir=tmp_path)
        with WaveSpeedClient(settings) as client:
            first = client.result("t1")
            started = time.monotonic()
            second = client.result("t1")
            took = time.monotonic() - started
        server.join(5)
    assert first.state is RUNNING and second.state is RUNNING
    assert heard == ["1.1", "1.2", "2.1"] and took < 1.0


# --- follow on top of the poller ------------------------------------------------------------------


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
