"""When a model's tasks usually end, learned from the runs the store has seen.

A poll schedule (schedule.py) places its checks where the end is likely; this module says where
that is and how sure: an `Expectation` (the usual end, counted from the submit, split into
waiting and making, and its spread), from the model's prior or learned from recorded runs, each
an `Ended` (known only to lie between two checks). Separate from the schedule because it is
statistics over past runs, not the timing of the present one (pure; its fit is cached).
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass, replace
from typing import Iterable

from skyreels_demo.models import DurationPrior, ModelSpec

# How far off a prior's usual time may be, as a share of it.
PRIOR_CENTRE_DOUBT = 0.5
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
                    chance = normal_pdf((by - centre) / spread) / spread  # known exactly: its density
                else:
                    chance = normal_cdf((by - centre) / spread) - normal_cdf((after - centre) / spread)
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


def normal_cdf(z: float) -> float:
    """The chance a normal value lies below `z` standard deviations from its mean."""
    return 0.5 * math.erfc(-z / math.sqrt(2))


def normal_pdf(z: float) -> float:
    """The normal density `z` standard deviations from the mean."""
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

