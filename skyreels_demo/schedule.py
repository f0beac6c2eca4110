"""When to ask the API about a task next: the poll schedule, as one small replaceable object.

`follow` asks a schedule for the gap before each poll and tells it what it saw; everything about
timing lives here. Two schedules:

- `FixedSchedule`: a constant gap (the official SDK polls every 1.0 s).
- `AdaptiveSchedule`: knows how long this model's tasks usually take (`Expectation`, learned from
  the run store or a prior), anchors on the moment a task turns from `created` to `processing`,
  polls sparsely while the end is far off and densely across the window where it is likely, and
  backs off on 429. A SkyReels task spends about a minute processing, so this sees the result
  sooner than a fixed 1 s poll with well under half the requests.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable, Protocol

# Bounds that hold whatever a schedule decides: never hammer, never go quiet for long.
MIN_GAP_S = 0.1
MAX_GAP_S = 15.0


@dataclass(frozen=True)
class Expectation:
    """How long tasks usually take, in seconds: median time queued and processing, and spread."""

    queue_s: float = 10.0
    processing_s: float = 60.0
    # Spread of processing time around its median (a robust standard deviation).
    spread_s: float = 9.0
    samples: int = 0

    @classmethod
    def prior(cls) -> "Expectation":
        # SkyReels V1 renders 97 frames at 544p; on WaveSpeed that takes about a minute.
        return cls()

    @classmethod
    def learn(
        cls,
        processing_s: Iterable[float],
        queue_s: Iterable[float] = (),
        prior: "Expectation | None" = None,
    ) -> "Expectation":
        """Blend recorded durations with the prior; a handful of runs is enough to trust."""
        prior = prior or cls.prior()
        done = sorted(d for d in processing_s if d > 0)
        queued = sorted(q for q in queue_s if q >= 0)
        if not done:
            return prior
        median = statistics.median(done)
        # Median absolute deviation, scaled to a standard deviation; floored so one lucky
        # sample cannot make the window vanishingly narrow.
        mad = statistics.median(abs(d - median) for d in done) * 1.4826
        spread = max(mad, 0.02 * median, 0.5)
        weight = len(done) / (len(done) + 3)  # three prior "pseudo-runs"
        return cls(
            queue_s=statistics.median(queued) if queued else prior.queue_s,
            processing_s=weight * median + (1 - weight) * prior.processing_s,
            spread_s=weight * spread + (1 - weight) * prior.spread_s,
            samples=len(done),
        )


@dataclass(frozen=True)
class PollState:
    """What `follow` knows when it asks for the next gap (seconds on its own clock)."""

    status: str
    since_submit: float
    # Bounds on when processing began, from the last poll that saw `created` and the first that
    # saw `processing`; None until processing has been seen.
    processing_began_after: float | None = None
    processing_began_by: float | None = None
    polls: int = 0
    rate_limited: int = 0  # consecutive 429s on polls
    retry_after: float | None = None


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
    """Sparse far from the likely end, dense across it, backing off on 429."""

    expected: Expectation = Expectation()
    queue_gap_s: float = 2.0  # while queued: how sharply the processing anchor is known
    dense_gap_s: float = 0.4  # inside the likely window: a completed task is seen ~0.2 s late
    window_sigmas: float = 2.5  # the window spans this many spreads either side of the median

    def next_gap(self, state: PollState) -> float:
        if state.rate_limited:
            return _backoff(state, self.queue_gap_s)
        if state.processing_began_by is None:
            # Still queued (or not yet seen processing): moderate, so the anchor stays sharp.
            return _bounded(self.queue_gap_s)
        begun_after = state.processing_began_after or 0.0
        processing = self.expected.processing_s
        margin = self.window_sigmas * self.expected.spread_s
        window_opens = begun_after + processing - margin
        window_closes = state.processing_began_by + processing + margin
        now = state.since_submit
        if now < window_opens:
            # Far from the end: take half the remaining distance, so the gaps shrink as it nears.
            remaining = window_opens - now
            return _bounded(max(self.dense_gap_s, remaining / 2))
        if now <= window_closes:
            return _bounded(self.dense_gap_s)
        # Longer than usual: widen slowly with the overrun, so a stuck task costs little.
        overrun = now - window_closes
        return _bounded(self.dense_gap_s + math.sqrt(overrun) * 0.5)


def schedule_from_setting(value: str, expected: Expectation | None = None) -> PollSchedule:
    """`adaptive` (the default) or a fixed interval in seconds, as SKYREELS_POLL gives it."""
    value = (value or "adaptive").strip().lower()
    if value == "adaptive":
        return AdaptiveSchedule(expected or Expectation.prior())
    try:
        return FixedSchedule(float(value))
    except ValueError:
        raise ValueError(f"SKYREELS_POLL must be 'adaptive' or seconds, not {value!r}.") from None
