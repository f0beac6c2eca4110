"""An account tier's limits, kept as WaveSpeed keeps them: tasks at once and submits a minute.

Off unless a `LocalBackend` is given `limits`: then a submit past either answers 429 and makes
nothing, as WaveSpeed's does past an account's tier. `minute_s` shortens the minute for tests
that cannot wait real ones (2 a minute with a minute of 3 s is 2 every 3 s).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from skyreels_demo.models import Tier


class OverLimits(Exception):
    """A submit past the account tier's limits: WaveSpeed answers 429 and makes nothing."""


@dataclass(frozen=True)
class Limits:
    tasks_at_once: int
    submits_per_minute: float
    minute_s: float = 60.0

    @classmethod
    def of(cls, tier: Tier, *, minute_s: float = 60.0) -> "Limits":
        return cls(tier.tasks_at_once, tier.submits_per_minute, minute_s)


class Admissions:
    """The submits let in over the last minute, and every one refused (time, why)."""

    def __init__(self) -> None:
        self._admitted: collections.deque[float] = collections.deque()
        self.refused: list[tuple[float, str]] = []

    def refusal(self, limits: Limits, now: float, in_flight: int) -> str | None:
        """Why a submit arriving at `now` is over the limits (recorded), or None (counted in)."""
        while self._admitted and self._admitted[0] <= now - limits.minute_s:
            self._admitted.popleft()
        if in_flight >= limits.tasks_at_once:
            why = f"Too many requests: {in_flight} tasks are running, and this account runs {limits.tasks_at_once} at once."
        elif len(self._admitted) >= limits.submits_per_minute:
            why = f"Too many requests: this account starts {limits.submits_per_minute:g} tasks a minute."
        else:
            self._admitted.append(now)
            return None
        self.refused.append((now, why))
        return why
