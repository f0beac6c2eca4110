"""When to ask the API about a task next: the poll schedule, as one small replaceable object.

A `Poller` holds the decisions of one follow on an injectable clock: it hears what each poll saw
(a status, a 429, a failure, news pushed by a webhook) and answers when to ask next; `follow`
only does the HTTP and the waiting. The gaps themselves come from one of two schedules:

- `FixedSchedule`: a constant gap (the official SDK polls every 1.0 s).
- `AdaptiveSchedule`: knows how long this model's tasks usually take (`Expectation`, learned from
  the run store or a prior), anchors on the moment a task turns from `created` to `processing`,
  polls sparsely while the end is far off and densely across the window where it is likely, and
  backs off on 429. A SkyReels task spends about a minute processing, so this sees the result
  sooner than a fixed 1 s poll with under half the requests (bench/bench_follow.py measures it).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Protocol

from .models import DurationPrior, ModelSpec
from .retries import DEFAULT_POLICY, RetryPolicy
from .tasks import TaskState

# Bounds that hold whatever a schedule decides: never hammer, never go quiet for long.
MIN_GAP_S = 0.1
MAX_GAP_S = 15.0
# How far off a prior's typical processing time may be, as a share of it.
PRIOR_CENTRE_DOUBT = 0.5
# Runs of one shape before its window is trusted to poll densely and sparsely around it.
SETTLED_AFTER = 3
# Until then the schedule is never late by more than this share of the time since submit, or
# NEVER_LATE_FLOOR_S, whichever is more; and never asks more often than a fixed 1 s poll.
NEVER_LATE_SHARE = 0.1
NEVER_LATE_FLOOR_S = 1.5
UNSETTLED_MIN_GAP_S = 1.0
# A run this far from the usual (in spreads, and as a share of the usual time) says the shape
# may have changed: WaveSpeed got faster or slower.
CHANGE_SPREADS = 4.0
CHANGE_SHARE = 0.15


@dataclass(frozen=True)
class Expectation:
    """How long tasks usually take, in seconds: median time queued and processing, and spread.

    Processing counts from the first poll that saw `processing` to the one that saw the end, as
    the run store records a run, so it includes the small lags of following it.
    """

    queue_s: float = DurationPrior.queue_s
    processing_s: float = DurationPrior.processing_s
    # Spread of processing time around its median (a standard deviation, stuck runs set aside).
    spread_s: float = DurationPrior.spread_s
    samples: int = 0
    # Whether the window can be trusted; None: once SETTLED_AFTER runs of this shape are seen.
    settled: bool | None = None

    @property
    def trusted(self) -> bool:
        return self.settled if self.settled is not None else self.samples >= SETTLED_AFTER

    @classmethod
    def prior(cls, model: ModelSpec) -> "Expectation":
        """What the model's spec says before any run has been seen."""
        return cls.from_prior(model.prior)

    @classmethod
    def from_prior(cls, prior: DurationPrior) -> "Expectation":
        return cls(queue_s=prior.queue_s, processing_s=prior.processing_s, spread_s=prior.spread_s)

    @classmethod
    def learn(
        cls,
        processing_s: Iterable[float],
        queue_s: Iterable[float] = (),
        prior: "Expectation | None" = None,
    ) -> "Expectation":
        """Blend recorded durations (newest first) with the prior; a handful of runs is enough
        to trust. When the newest runs have all left the usual shape, only they are learned
        from, and the window is not trusted again until there are SETTLED_AFTER of them."""
        prior = prior or cls()
        newest_first = [d for d in processing_s if d > 0]
        done = sorted(newest_first)
        queued = sorted(q for q in queue_s if q >= 0)
        if not done:
            return prior
        median = statistics.median(done)
        # Floored so a lucky streak of identical runs cannot make the window vanishingly narrow.
        floor = max(0.02 * median, 0.5)
        # A run far outside the usual (a task stuck for minutes) says nothing about the usual
        # spread: set such runs aside by the median absolute deviation, which they cannot sway,
        # then measure the rest by their standard deviation, which needs half the runs to settle.
        mad = statistics.median(abs(d - median) for d in done) * 1.4826
        usual = [d for d in done if abs(d - median) <= 4 * max(mad, floor)]
        seen = statistics.stdev(usual) if len(usual) > 2 else mad
        # A spread needs several runs to trust: the prior counts as three of them, at its share
        # of the time (tasks twice as long spread about twice as wide).
        weight = len(done) / (len(done) + 3)
        prior_spread = prior.spread_s * median / prior.processing_s if prior.processing_s > 0 else prior.spread_s
        spread = weight * max(seen, floor) + (1 - weight) * prior_spread
        # The prior's centre is a guess good to about half its size, while even one run tells
        # this account's typical time to within the spread: weigh each by how sure it is, so
        # tasks much faster or slower than the prior are centred after a run or two, not twenty.
        guess = (PRIOR_CENTRE_DOUBT * prior.processing_s) ** 2
        certainty = len(done) / (len(done) + spread**2 / guess)
        changed = _departed(newest_first, median, spread)
        if changed and len(changed) < len(newest_first):
            relearned = cls.learn(changed, queue_s, prior)
            return replace(relearned, settled=len(changed) >= SETTLED_AFTER)
        return cls(
            queue_s=statistics.median(queued) if queued else prior.queue_s,
            processing_s=certainty * median + (1 - certainty) * prior.processing_s,
            spread_s=spread,
            samples=len(done),
        )


def _departed(newest_first: list[float], median: float, spread: float) -> list[float]:
    """The newest runs that all lie far from the usual, on the same side; [] if none do."""
    far = max(CHANGE_SPREADS * spread, CHANGE_SHARE * median)
    streak: list[float] = []
    for duration in newest_first:
        if abs(duration - median) <= far:
            break
        if streak and (duration > median) != (streak[0] > median):
            break
        streak.append(duration)
    return streak


def never_late_gap(since_submit: float) -> float:
    """The longest gap that still sees an end at most 10% of the elapsed time (or 1.5 s) late."""
    return max(NEVER_LATE_FLOOR_S, NEVER_LATE_SHARE * since_submit)


@dataclass(frozen=True)
class PollState:
    """What `follow` knows when it asks for the next gap (seconds on its own clock)."""

    status: TaskState
    since_submit: float
    # Bounds on when processing began, from the last poll that saw `created` and the first that
    # saw `processing`; None until processing has been seen.
    processing_began_after: float | None = None
    processing_began_by: float | None = None
    polls: int = 0
    rate_limited: int = 0  # consecutive 429s in a row
    retry_after: float | None = None
    push_expected: bool = False  # a webhook will say when the task ends


class PollSchedule(Protocol):
    def next_gap(self, state: PollState) -> float:
        """Seconds to wait before the next poll."""


def _bounded(gap: float) -> float:
    return min(MAX_GAP_S, max(MIN_GAP_S, gap))


def _backoff(state: PollState, base: float) -> float:
    # Exponential back-off on repeated 429s, never sooner than the server asked.
    gap = base * (2 ** min(state.rate_limited, 5))
    if state.retry_after is not None:
        gap = max(gap, state.retry_after)
    return min(MAX_GAP_S * 2, gap)


@dataclass(frozen=True)
class FixedSchedule:
    """A constant gap between polls."""

    interval_s: float = 1.0

    def next_gap(self, state: PollState) -> float:
        if state.rate_limited:
            return _backoff(state, max(self.interval_s, 1.0))
        return _bounded(self.interval_s)


@dataclass(frozen=True)
class AdaptiveSchedule:
    """Sparse far from the likely end, dense across it, backing off on 429.

    The likely end is a bell around (when processing began + the usual processing time); its
    width is the usual spread plus how sharply the start is known. Before its window each poll
    skips `approach` of the way there; across the window the gap narrows from the first to the
    second of `window_gaps_s`, because polls late in the window are made only for tasks still
    running, each of which is ever more likely to finish next; after it, gaps widen slowly.
    """

    expected: Expectation = Expectation()
    queue_gap_s: float = 3.0  # while queued, at most: how sharply the processing anchor is known
    # Gaps at the window's opening and at its close: a task completing there is seen on average
    # half a gap late, and 0.4 s leaves room for the request itself under half a second.
    window_gaps_s: tuple[float, float] = (0.4, 0.2)
    # Spreads before and after the likely end that the window spans (97.7% and 99.4%): early
    # ends cost every task polls, late ends only the tasks still running.
    window_sigmas: tuple[float, float] = (2.0, 2.5)
    approach: float = 0.9  # share of the way to the window that one poll may skip

    def likely_end(self, state: PollState) -> tuple[float, float] | None:
        """(when the task most likely completes, its spread), on follow's clock; None while queued."""
        if state.processing_began_by is None:
            return None
        began_after = min(state.processing_began_after or 0.0, state.processing_began_by)
        # Processing began somewhere between the last poll that saw `created` and the first that
        # saw `processing`: the middle, give or take that interval's spread. The run store counts
        # processing from the first `processing` poll, about half a queue gap after the real
        # start, so a learned time is that much short: add it back. (Following from submit, this
        # is the first `processing` poll itself; resuming, the interval can be minutes wide.)
        unknown = state.processing_began_by - began_after
        centre = began_after + unknown / 2 + self._queue_gap() / 2 + self.expected.processing_s
        spread = math.sqrt(self.expected.spread_s**2 + unknown**2 / 12)
        return centre, spread

    def window(self, state: PollState) -> tuple[float, float] | None:
        """When dense polling starts and stops, on follow's clock; None while queued."""
        end = self.likely_end(state)
        if end is None:
            return None
        centre, spread = end
        return centre - self.window_sigmas[0] * spread, centre + self.window_sigmas[1] * spread

    def next_gap(self, state: PollState) -> float:
        calm = self._calm_gap(state)
        if not self.expected.trusted:
            # A guess (no runs of this shape yet): its window may be anywhere, so never be
            # late by much wherever the end comes, and never ask more often than once a second.
            calm = _bounded(max(UNSETTLED_MIN_GAP_S, min(calm, never_late_gap(state.since_submit))))
        if state.rate_limited:
            # Never sooner than the calm schedule would ask, and longer with each 429 in a row.
            return max(calm, _backoff(state, self.queue_gap_s))
        return calm

    def _queue_gap(self) -> float:
        # No sparser than twice the spread: the start is then known to within about 0.6 of a
        # spread (a uniform blur of 2σ/√12), which widens the window by a sixth, while short
        # tasks' queues are asked about half as often as at one spread.
        return _bounded(min(self.queue_gap_s, max(self.window_gaps_s[1], 2 * self.expected.spread_s)))

    def _calm_gap(self, state: PollState) -> float:
        first_gap, last_gap = self.window_gaps_s
        window = self.window(state)
        if window is None:
            return self._queue_gap()
        opens, closes = window
        now = state.since_submit
        if now < opens:
            return _bounded(max(last_gap, (opens - now) * self.approach))
        if now <= closes:
            through = (now - opens) / max(closes - opens, 1e-9)  # 0 at the opening, 1 at the close
            return _bounded(first_gap + (last_gap - first_gap) * through)
        # Longer than usual: widen slowly with the overrun, so a stuck task costs little.
        return _bounded(first_gap + math.sqrt(now - closes) * 0.5)


def schedule_from_setting(value: str, expected: Expectation | None = None) -> PollSchedule:
    """`adaptive` (the default) or a fixed interval in seconds, as SKYREELS_POLL gives it.

    The one place where that choice is made.
    """
    value = (value or "adaptive").strip().lower()
    if value == "adaptive":
        return AdaptiveSchedule(expected or Expectation())
    try:
        return FixedSchedule(float(value))
    except ValueError:
        raise ValueError(f"SKYREELS_POLL must be 'adaptive' or seconds, not {value!r}.") from None


# While a webhook is expected, polls are only a safety net for one that never comes: sparse,
# yet never so sparse that a lost webhook leaves the video waiting more than this.
PUSH_SAFETY_GAP_S = 15.0


class Poller:
    """The decisions of one follow: when to poll next, given what the polls so far have seen.

    Pure bookkeeping on an injectable clock (seconds, monotonic), so tests drive it with a fake
    one. `follow` calls `polling()` just before it sends a poll and then exactly one of `saw`,
    `rate_limited` or `failed` with the outcome, and waits `due_in()` seconds in between.
    """

    def __init__(
        self,
        schedule: PollSchedule,
        *,
        clock: Callable[[], float] = time.monotonic,
        age_s: float = 0.0,
        answer_in_hand: bool = True,
        max_failures: int = 5,
        push_expected: bool = False,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.schedule = schedule
        # Failed polls (no answer, a 5xx) back off as every other request does: the retry
        # policy's delays, not the schedule's rate-limit doubling.
        self.policy = policy
        self._clock = clock
        # One clock for everything: seconds since the task was submitted.
        self._submitted = clock() - max(0.0, age_s)
        self.max_failures = max_failures
        self.failures = 0
        self.state = PollState(status=TaskState.QUEUED, since_submit=self.now(), push_expected=push_expected)
        self._asked_at = self.now()
        # With the submit's answer in hand the first poll can wait; resuming, ask at once.
        self._next = self.now() + (self._gap() if answer_in_hand else 0.0)

    def now(self) -> float:
        """Seconds since the task was submitted."""
        return self._clock() - self._submitted

    def due_in(self) -> float:
        """Seconds until the next poll is due (zero or less: now)."""
        return self._next - self.now()

    @property
    def polls(self) -> int:
        return self.state.polls

    def polling(self) -> None:
        """A poll is about to be sent: what it sees is pinned to this moment."""
        self._asked_at = self.now()

    def saw(self, status: TaskState) -> None:
        """A poll answered with this status."""
        self.failures = 0
        changes: dict = dict(status=status, rate_limited=0, retry_after=None)
        if self.state.processing_began_by is None:
            if status is TaskState.QUEUED:
                changes["processing_began_after"] = self._asked_at
            else:
                # The first poll that saw it running (or done) bounds when processing began.
                changes["processing_began_by"] = self._asked_at
                changes["processing_began_after"] = self.state.processing_began_after or 0.0
        self._advance(**changes)

    def rate_limited(self, retry_after: float | None) -> None:
        """A poll was answered 429: back off, never sooner than the server asked."""
        self._advance(rate_limited=self.state.rate_limited + 1, retry_after=retry_after)

    def failed(self) -> bool:
        """A poll got no usable answer; True when too many in a row mean giving up."""
        self.failures += 1
        if self.failures >= self.max_failures:
            return True
        self.state = replace(self.state, since_submit=self.now(), polls=self.state.polls + 1)
        # Never sooner than the schedule itself would ask.
        self._next = self.now() + max(self._gap(), self.policy.delay(self.failures))
        return False

    def pushed(self) -> None:
        """A verified webhook says the task has ended: confirm with a poll now."""
        self._next = self.now()

    def _advance(self, **changes) -> None:
        self.state = replace(self.state, since_submit=self.now(), polls=self.state.polls + 1, **changes)
        self._next = self.now() + self._gap()

    def _gap(self) -> float:
        gap = self.schedule.next_gap(replace(self.state, since_submit=self.now()))
        if self.state.push_expected:
            gap = max(gap, PUSH_SAFETY_GAP_S)
        return gap
