"""When to ask the API about a task next, within WaveSpeed's rule for checks.

WaveSpeed asks for no check of a video task sooner than 2 s after its submit, nor sooner than 5 s
after the previous check of it (the model's `CheckRule`), with longer gaps for long tasks. A
check is then worth placing well. A `Poller` holds the decisions of one follow on an injectable
clock: it hears what each check saw (a status, a 429, a failure, news pushed by a webhook) and
answers when to check next, never sooner than the rule allows; `follow` only does the HTTP and
the waiting. The gaps come from one of two schedules:

- `FixedSchedule`: a constant gap (the official SDK's is 1.0 s, against the rule; the app's
  `SKYREELS_POLL=<seconds>` is held to the rule all the same).
- `AdaptiveSchedule`: knows when this model's tasks usually end, counted from the submit, and
  how sure that is (`Expectation`, learned from the run store's runs, or the model's prior); it
  checks once at the rule's first moment (a task refused at once is said at once), then places
  each check where it best catches the end for what a check costs: none while the end is far
  off (but never quiet for longer than MAX_GAP_S), a check just past where the end most likely
  falls, then one a gap later. Far past the usual end, the gaps grow with the time waited.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Protocol

from skyreels_demo.models import CheckRule, DurationPrior, ModelSpec
from skyreels_demo.wavespeed.retries import DEFAULT_POLICY, RetryPolicy
from skyreels_demo.status import TaskState

# Bounds that hold whatever a schedule decides: never hammer, never go quiet for long.
MIN_GAP_S = 0.1
MAX_GAP_S = 15.0
# How far off a prior's usual time may be, as a share of it.
PRIOR_CENTRE_DOUBT = 0.5
# Past the usual end (or with nothing learned) a check is never late by more than this share of
# the time since the submit, or one gap of the rule, whichever is more.
NEVER_LATE_SHARE = 0.1
# What one check costs, in seconds of seeing the end later: the schedule spends a check where it
# saves more lateness than this, on average.
CHECK_COST_S = 0.3
# The end's spread is never taken as narrower than this (seconds, or share of the usual time):
# a lucky streak of identical runs cannot make the window vanish.
SPREAD_FLOOR_S = 0.25
SPREAD_FLOOR_SHARE = 0.005
# Tasks of one shape end within about this share of their usual time of each other (a run far
# outside it, stuck for minutes, is set aside before learning).
SPREAD_CEILING_SHARE = 0.1
# Before runs say how widely a shape's making varies: as if PRIOR_RUNS runs had varied by this
# share of it (WaveSpeed's SkyReels runs were seen within about 5% of each other).
PRIOR_SHARE = 0.03
PRIOR_RUNS = 2
# Runs learned from (newest first): enough to know a shape, few enough to follow it as it moves.
LEARN_FROM = 12
# A run this far from the usual (in spreads, and as a share of the usual time) says the shape
# may have changed: WaveSpeed got faster or slower.
CHANGE_SPREADS = 4.0
CHANGE_SHARE = 0.15
# An end less sure than this many gaps of the rule cannot be aimed at: check patiently.
UNSURE_GAPS = 2.0


@dataclass(frozen=True)
class Ended:
    """When one recorded run ended, in seconds from its submit: after the last check that saw it
    running (`after`) and by the first that saw it done (`by`); and how long WaveSpeed says its
    making took (`making_s`, the answer's timings.inference), when it said."""

    after: float
    by: float
    making_s: float | None = None

    @classmethod
    def of(cls, end: "Ended | float | tuple[float, float]") -> "Ended | None":
        """An `Ended` from itself, a time (known exactly) or an (after, by) pair; None if senseless."""
        if not isinstance(end, Ended):
            after, by = (end, end) if isinstance(end, (int, float)) else end
            end = cls(after, by)
        if not end.by > 0:
            return None
        making = end.making_s if end.making_s is not None and 0 < end.making_s <= end.by else None
        return cls(max(0.0, min(end.after, end.by)), end.by, making)


@dataclass(frozen=True)
class Expectation:
    """When tasks usually end, in seconds from the submit, and how sure that is.

    `queue_s` (waiting, and whatever else is not the making) and `processing_s` (the making)
    split the usual end, `end_s`, for the page; `spread_s` is one standard deviation of the end,
    including the doubt about where it lies (wide for a prior, narrow once a few runs agree)."""

    queue_s: float = DurationPrior.queue_s
    processing_s: float = DurationPrior.processing_s
    spread_s: float = DurationPrior.spread_s
    samples: int = 0

    @property
    def end_s(self) -> float:
        return self.queue_s + self.processing_s

    @classmethod
    def prior(cls, model: ModelSpec) -> "Expectation":
        """What the model's spec says before any run has been seen."""
        return cls.from_prior(model.prior)

    @classmethod
    def from_prior(cls, prior: DurationPrior) -> "Expectation":
        end = prior.queue_s + prior.processing_s
        spread = math.hypot(prior.spread_s, PRIOR_CENTRE_DOUBT * end)
        return cls(queue_s=prior.queue_s, processing_s=prior.processing_s, spread_s=spread)

    @classmethod
    def learn(cls, ends: Iterable["Ended | float | tuple[float, float]"], prior: "Expectation | None" = None) -> "Expectation":
        """Learn from recorded runs, newest first (see `Ended`). The making, which varies from run
        to run, WaveSpeed measures itself; the rest (queue, fetching, storing) is much the same
        from run to run, so the checks' intervals for it overlap and narrow one another: a run
        or two of a shape is enough to place checks well. A run stuck far outside the usual is
        set aside; when the newest runs have all left the usual shape, only they are learned from."""
        prior = prior or cls()
        seen = [end for end in map(Ended.of, ends) if end is not None]
        if not seen:
            return prior
        middles = [(end.after + end.by) / 2 for end in seen]
        median = statistics.median(middles)
        floor = max(SPREAD_FLOOR_S, SPREAD_FLOOR_SHARE * median)
        # A run far outside the usual (a task stuck for minutes) says nothing about the usual:
        # set such runs aside by the median absolute deviation, which they cannot sway.
        mad = statistics.median(abs(m - median) for m in middles) * 1.4826
        usual = [end for end, m in zip(seen, middles) if abs(m - median) <= 4 * max(mad, floor, end.by - end.after)]
        learned = _learn(usual[:LEARN_FROM], prior)
        changed = _departed(middles, median, learned.spread_s)
        if changed and len(changed) < len(seen):
            learned = _learn(seen[: len(changed)], prior)
        return replace(learned, samples=len(seen))


def _learn(ends: list[Ended], prior: Expectation) -> Expectation:
    ceiling = SPREAD_CEILING_SHARE * statistics.median(end.by for end in ends)
    if all(end.making_s is not None for end in ends):
        making, making_spread = _measured([e.making_s for e in ends])  # type: ignore[misc]
        rest = tuple((max(0.0, e.after - e.making_s), e.by - e.making_s) for e in ends)  # type: ignore[operator]
        waiting, waiting_spread = _fit(rest, prior.queue_s, prior.spread_s, ceiling)
        return Expectation(queue_s=waiting, processing_s=making, spread_s=math.hypot(making_spread, waiting_spread))
    centre, spread = _fit(tuple((e.after, e.by) for e in ends), prior.end_s, prior.spread_s, ceiling)
    queue = min(prior.queue_s, centre / 2)
    return Expectation(queue_s=queue, processing_s=centre - queue, spread_s=spread)


def _measured(values: list[float]) -> tuple[float, float]:
    """(centre, spread) of the next of these measured values: their mean, and their spread
    pooled with PRIOR_RUNS runs at PRIOR_SHARE of it (two runs alone cannot say how widely a
    shape varies), widened by the doubt about the mean."""
    n, mean = len(values), statistics.fmean(values)
    squares = sum((v - mean) ** 2 for v in values) + PRIOR_RUNS * (PRIOR_SHARE * mean) ** 2
    spread = math.sqrt(squares / (n - 1 + PRIOR_RUNS) * (1 + 1 / n))
    return mean, max(spread, SPREAD_FLOOR_S, SPREAD_FLOOR_SHARE * mean)


@functools.lru_cache(maxsize=128)
def _fit(
    intervals: tuple[tuple[float, float], ...], prior_centre: float, prior_doubt: float, ceiling: float
) -> tuple[float, float]:
    """(centre, spread) of the next value, from values each known to lie within (after, by]
    (after == by: known exactly).

    A small grid of likely shapes, a centre and a spread of the values around it, each weighed
    by how well it explains every interval (the chance of falling inside it), by the prior's
    guess for the centre, and evenly on a log scale for the spread, between a floor and
    `ceiling`. Intervals that overlap pin the centre to their overlap, narrower than any one."""
    low, high = min(a for a, _ in intervals), max(b for _, b in intervals)
    floor = max(SPREAD_FLOOR_S, SPREAD_FLOOR_SHARE * high)
    ceiling = max(2 * floor, ceiling)
    spreads = [floor * (ceiling / floor) ** (i / 7) for i in range(8)]
    start, stop = low - 2 * ceiling, high + 2 * ceiling
    step = max(0.02, (stop - start) / 240)
    centres = [start + i * step for i in range(int((stop - start) / step) + 1)]
    weights: list[tuple[float, float, float]] = []
    for spread in spreads:
        for centre in centres:
            log_weight = -0.5 * ((centre - prior_centre) / max(prior_doubt, 1e-6)) ** 2
            for after, by in intervals:
                if by - after < 1e-6:
                    chance = _pdf((by - centre) / spread) / spread  # known exactly: its density
                else:
                    chance = _cdf((by - centre) / spread) - _cdf((after - centre) / spread)
                log_weight += math.log(max(chance, 1e-300))
            weights.append((log_weight, centre, spread))
    top = max(w for w, _, _ in weights)
    total = mean = second = 0.0
    for log_weight, centre, spread in weights:
        weight = math.exp(log_weight - top)
        total += weight
        mean += weight * centre
        second += weight * (spread**2 + centre**2)
    mean /= total
    return mean, math.sqrt(max(floor**2, second / total - mean**2))


def _departed(middles_newest_first: list[float], median: float, spread: float) -> list[float]:
    """The newest runs that all lie far from the usual, on the same side; [] if none do."""
    far = max(CHANGE_SPREADS * spread, CHANGE_SHARE * median)
    streak: list[float] = []
    for end in middles_newest_first:
        if abs(end - median) <= far:
            break
        if streak and (end > median) != (streak[0] > median):
            break
        streak.append(end)
    return streak


def _cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2))


def _pdf(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


@dataclass(frozen=True)
class PollState:
    """What `follow` knows when it asks for the next gap (seconds on its own clock)."""

    status: TaskState
    since_submit: float
    polls: int = 0
    rate_limited: int = 0  # consecutive 429s in a row
    retry_after: float | None = None
    push_expected: bool = False  # a webhook will say when the task ends


class PollSchedule(Protocol):
    rule: CheckRule | None  # the API's rule for checks of this task; None: no rule

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


def patient_gap(since_submit: float, rule: CheckRule) -> float:
    """The gap that is never late by more than one gap of the rule or a tenth of the wait."""
    return _bounded(max(rule.apart_s, NEVER_LATE_SHARE * since_submit))


@dataclass(frozen=True)
class FixedSchedule:
    """A constant gap between polls (held to `rule`, if given, by the `Poller`)."""

    interval_s: float = 1.0
    rule: CheckRule | None = None

    def next_gap(self, state: PollState) -> float:
        if state.rate_limited:
            return _backoff(state, max(self.interval_s, 1.0))
        return _bounded(self.interval_s)


@dataclass(frozen=True)
class AdaptiveSchedule:
    """Checks placed where the end is likely, within the rule (see the module's words)."""

    expected: Expectation = Expectation()
    rule: CheckRule = CheckRule()
    check_cost_s: float = CHECK_COST_S

    def next_gap(self, state: PollState) -> float:
        now = state.since_submit
        at = self.next_check(now, first=state.polls == 0)
        if state.rate_limited:
            # Never sooner than the calm schedule would ask, and longer with each 429 in a row.
            return max(at - now, _backoff(state, self.rule.apart_s))
        return max(MIN_GAP_S, at - now)

    def next_check(self, now: float, *, first: bool = False) -> float:
        """When to check next (seconds since the submit), `now` being just after the last check
        (or the submit's answer, `first`)."""
        rule = self.rule
        earliest = max(now, rule.first_s) if first else now + rule.apart_s
        centre, spread = self.expected.end_s, max(self.expected.spread_s, SPREAD_FLOOR_S)
        if spread > UNSURE_GAPS * rule.apart_s or _cdf((now - centre) / spread) > 0.99:
            # Nothing learned yet (the end could be anywhere), or far past the usual end (a slow
            # task, a stuck one): never late by much, and gaps that grow with the wait.
            return earliest if first else max(earliest, now + patient_gap(now, rule))
        best = min(self._candidates(earliest, centre, spread), key=lambda at: self._cost(at, now, centre, spread))
        if first and best >= rule.first_s + rule.apart_s:
            return max(earliest, rule.first_s)  # the rule's first moment: a refusal is said at once
        if best - now > MAX_GAP_S:
            # Never quiet for long (a shape that got faster is still seen within MAX_GAP_S): as few
            # checks as that takes, evenly on the way to one a gap before `best`, so that none
            # pushes the one at `best` later and an end just before it is seen within a gap.
            way = best - rule.apart_s - now
            return max(earliest, now + way / math.ceil(way / MAX_GAP_S))
        return best

    @staticmethod
    def _candidates(earliest: float, centre: float, spread: float) -> list[float]:
        last = max(earliest, centre + 3 * spread)
        step = max(0.05, spread / 20, (last - earliest) / 400)
        return [earliest + i * step for i in range(int((last - earliest) / step) + 1)]

    def _cost(self, at: float, now: float, centre: float, spread: float) -> float:
        """Expected lateness plus the checks' cost, if the next check is `at` and then one every
        gap of the rule until the end (the task is known to run past `now`): the end falling
        between two checks is seen at the second."""
        alive = 1 - _cdf((now - centre) / spread)
        gap = self.rule.apart_s
        late = checks = 0.0
        before = now
        while True:
            lo, hi = (before - centre) / spread, (at - centre) / spread
            checks += (1 - _cdf(lo)) / alive  # the check at `at` is made if the task ran past `before`
            # An end between `before` and `at` is seen at `at`: late by (at - end), on average over that part.
            late += ((at - centre) * (_cdf(hi) - _cdf(lo)) + spread * (_pdf(hi) - _pdf(lo))) / alive
            if hi > 4:
                break
            before, at = at, at + gap
        return late + self.check_cost_s * checks


def schedule_from_setting(value: str, expected: Expectation | None = None, rule: CheckRule | None = None) -> PollSchedule:
    """`adaptive` (the default) or a fixed interval in seconds, as SKYREELS_POLL gives it, held
    to `rule` (the model's, for the app; None only where no rule applies).

    The one place where that choice is made.
    """
    value = (value or "adaptive").strip().lower()
    if value == "adaptive":
        return AdaptiveSchedule(expected or Expectation(), rule or CheckRule())
    try:
        return FixedSchedule(float(value), rule)
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

    The schedule's `rule` holds whatever it decides: no check sooner than `first_s` after the
    submit, nor sooner than `apart_s` after the previous check's answer (counted from the answer,
    which comes after the server heard the check). A follow that starts on a task submitted
    earlier (resuming) cannot know when another follow last asked: it waits one gap first.
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
        self.rule: CheckRule | None = getattr(schedule, "rule", None)
        # Failed polls (no answer, a 5xx) back off as every other request does: the retry
        # policy's delays, not the schedule's rate-limit doubling.
        self.policy = policy
        self._clock = clock
        # One clock for everything: seconds since the task was submitted.
        self._submitted = clock() - max(0.0, age_s)
        self.max_failures = max_failures
        self.failures = 0
        self.state = PollState(status=TaskState.QUEUED, since_submit=self.now(), push_expected=push_expected)
        # Resuming, another follow may have just asked: count its check as now.
        self._answered: float | None = None if answer_in_hand else self.now()
        # With the submit's answer in hand the first poll can wait; resuming, ask at once.
        self._next = self._allowed(self.now() + (self._gap() if answer_in_hand else 0.0))

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
        """A poll is about to be sent."""

    def saw(self, status: TaskState) -> None:
        """A poll answered with this status."""
        self.failures = 0
        self._advance(status=status, rate_limited=0, retry_after=None)

    def rate_limited(self, retry_after: float | None) -> None:
        """A poll was answered 429: back off, never sooner than the server asked."""
        self._advance(rate_limited=self.state.rate_limited + 1, retry_after=retry_after)

    def failed(self) -> bool:
        """A poll got no usable answer; True when too many in a row mean giving up."""
        self.failures += 1
        if self.failures >= self.max_failures:
            return True
        self._answered = self.now()
        self.state = replace(self.state, since_submit=self.now(), polls=self.state.polls + 1)
        # Never sooner than the schedule itself would ask.
        self._next = self._allowed(self.now() + max(self._gap(), self.policy.delay(self.failures)))
        return False

    def pushed(self) -> None:
        """A verified webhook says the task has ended: confirm with a poll, as soon as allowed."""
        self._next = self._allowed(self.now())

    def _advance(self, **changes) -> None:
        self._answered = self.now()
        self.state = replace(self.state, since_submit=self.now(), polls=self.state.polls + 1, **changes)
        self._next = self._allowed(self.now() + self._gap())

    def _allowed(self, at: float) -> float:
        """`at`, or the first moment after it that the rule allows a check."""
        if self.rule is None:
            return at
        at = max(at, self.rule.first_s)
        if self._answered is not None:
            at = max(at, self._answered + self.rule.apart_s)
        return at

    def _gap(self) -> float:
        gap = self.schedule.next_gap(replace(self.state, since_submit=self.now()))
        if self.state.push_expected:
            gap = max(gap, PUSH_SAFETY_GAP_S)
        return gap
