"""Caps on what a public deployment spends: the owner's key, per visitor and per day.

A visitor's own key is theirs to spend and is not capped here.
"""

from __future__ import annotations

import time

from .access import Backend
from .config import Settings
from .errors import QuotaExceeded
from .runs import RunStore

HOUR_S, DAY_S = 3600.0, 86400.0


class Caps:
    def __init__(self, settings: Settings, store: RunStore) -> None:
        self.settings = settings
        self.store = store

    def check(self, backend: Backend, visitor: str) -> None:
        """Refuse (before anything is spent) a run past a cap; nothing happens otherwise."""
        if not backend.costs_the_owner or not self.settings.shared:
            return
        now = time.time()
        if self.store.count_since(now - DAY_S, key_source="owner") >= self.settings.app_runs_per_day:
            raise QuotaExceeded(
                "This Space has made all the videos it can today on its owner's key: paste your "
                "own WaveSpeed key to go on, or come back tomorrow."
            )
        used = self.store.count_since(now - HOUR_S, key_source="owner", visitor=visitor)
        if used >= self.settings.visitor_runs_per_hour:
            raise QuotaExceeded(
                f"You have made {used} videos in the last hour on this Space's key: paste your own "
                "WaveSpeed key to go on now, or wait a while."
            )
