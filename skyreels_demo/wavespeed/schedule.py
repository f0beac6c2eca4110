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

A 429 to a check backs off by the retry policy (retries.py), the schedule's own gap doubled,
never sooner than the server asked. What the adaptive schedule expects is learned in
expectation.py; `Expectation` and `Ended` are part of this module's face all the same, since a
schedule is built from them (the studio and bench_checks.py read them here).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable, Protocol

from skyreels_demo.models import PUSH_SAFETY_GAP_S, CheckRule
from skyreels_demo.status import TaskState
from skyreels_demo.wavespeed.expectation import (  # noqa: F401 (Ended: part of this module's face)
    SPREAD_FLOOR_S,
    Ended,
    Expectation,
    normal_cdf,
    normal_pdf,
)
from skyreels_demo.wavespeed.retries import DEFAULT_POLICY, RetryPolicy

# Bounds that hold whatever a schedule decides: never hammer, never go quiet for long.
MIN_GAP_S = 0.1
MAX_GAP_S = 15.0
# Past the usual end (or with nothing learned) a check is never late by more than this share of
# the time since the submit, or one gap of the rule, whichever is more.
NEVER_LATE_SHARE = 0.1
# What one check costs, in seconds of seeing the end later: the schedule spends a check where it
# saves more lateness than this, on average.
CHECK_COST_S = 0.3
# An end less sure than this many gaps of the rule cannot be aimed at: check patiently.
UNSURE_GAPS = 2.0


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


def patient_gap(since_submit: float, rule: CheckRule) -> float:
    """The gap that is never late by more than one gap of the rule or a tenth of the wait."""
    return _bounded(max(rule.apart_s, NEVER_LATE_SHARE * since_submit))


@dataclass(frozen=True)
class FixedSchedule:
    """A constant gap between polls (held to `rule`, if given, by the `Poller`)."""

    interval_s: float = 1.0
    rule: CheckRule | None = None
    policy: RetryPolicy = DEFAULT_POLICY  # how a 429 backs off

    def next_gap(self, state: PollState) -> float:
        if state.rate_limited:
            # Doubled from the rule's gap, as the adaptive schedule's are (1 s where no rule holds).
            floor = self.rule.apart_s if self.rule else 1.0
            return self.policy.poll_backoff(max(self.interval_s, floor), state.rate_limited, state.retry_after)
        return _bounded(self.interval_s)


@dataclass(frozen=True)
class AdaptiveSchedule:
    """Checks placed where the end is likely, within the rule (see the module's words)."""

    expected: Expectation = Expectation()
    rule: CheckRule = CheckRule()
    check_cost_s: float = CHECK_COST_S
    policy: RetryPolicy = DEFAULT_POLICY  # how a 429 backs off

    def next_gap(self, state: PollState) -> float:
        now = state.since_submit
        at = self.next_check(now, first=state.polls == 0)
        if state.rate_limited:
            # Never sooner than the calm schedule would ask, and longer with each 429 in a row.
            return max(at - now, self.policy.poll_backoff(self.rule.apart_s, state.rate_limited, state.retry_after))
        return max(MIN_GAP_S, at - now)

    def next_check(self, now: float, *, first: bool = False) -> float:
        """When to check next (seconds since the submit), `now` being just after the last check
        (or the submit's answer, `first`)."""
        rule = self.rule
        earliest = max(now, rule.first_s) if first else now + rule.apart_s
        centre, spread = self.expected.end_s, max(self.expected.spread_s, SPREAD_FLOOR_S)
        if spread > UNSURE_GAPS * rule.apart_s or normal_cdf((now - centre) / spread) > 0.99:
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
        alive = 1 - normal_cdf((now - centre) / spread)
        gap = self.rule.apart_s
        late = checks = 0.0
        before = now
        while True:
            lo, hi = (before - centre) / spread, (at - centre) / spread
            checks += (1 - normal_cdf(lo)) / alive  # the check at `at` is made if the task ran past `before`
            # An end between `before` and `at` is seen at `at`: late by (at - end), on average over that part.
            late += ((at - centre) * (normal_cdf(hi) - normal_cdf(lo)) + spread * (normal_pdf(hi) - normal_pdf(lo))) / alive
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
        max_failures: int | None = None,
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
        self.max_failures = policy.poll_failures if max_failures is None else max_failures
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
            gap = max(gap, self.rule.push_safety_s if self.rule else PUSH_SAFETY_GAP_S)
        return gap
