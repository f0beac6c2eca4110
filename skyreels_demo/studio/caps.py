"""Caps on what a public deployment spends: the owner's key and this machine's offline preview.

Who counts as one visitor is the server's decision (`Requester` in the app: a signed-in Hugging
Face account, else the client's address), never a value the client sends. The limits are
checked in the same write transaction that records the run (`RunStore.create(within=...)`), so
simultaneous calls at a cap's edge overshoot it by nothing. A visitor's own key is theirs to
spend and is not capped here; nor is anything when the app is not shared.
"""

from __future__ import annotations

import time

from skyreels_demo.studio.access import Backend
from skyreels_demo.config import Settings
from skyreels_demo.store.records import KeySource, Limit
from skyreels_demo.store.runs import RunStore
from skyreels_demo.studio.visitors import Requester
from skyreels_demo.times import DAY_S, HOUR_S


def limits_for(settings: Settings, backend: Backend, who: Requester, *, now: float | None = None) -> list[Limit]:
    """The limits a new run must stay within, most general first."""
    if not settings.shared or backend.key_source not in (KeySource.OWNER, KeySource.PREVIEW):
        return []
    now = time.time() if now is None else now
    requester, signed_in = who.key, who.signed_in
    if backend.key_source == KeySource.OWNER:
        per_hour = settings.signed_in_runs_per_hour if signed_in else settings.visitor_runs_per_hour
        return [
            Limit(
                since=now - DAY_S,
                most=settings.app_runs_per_day,
                key_source=KeySource.OWNER,
                refusal=(
                    "This Space has made all the videos it can today on its owner's key: paste "
                    "your own WaveSpeed key to go on, or come back tomorrow."
                ),
            ),
            Limit(
                since=now - HOUR_S,
                most=per_hour,
                key_source=KeySource.OWNER,
                requester=requester,
                refusal=(
                    f"You have made {per_hour} videos in the last hour on this Space's key: paste "
                    "your own WaveSpeed key to go on now"
                    + (", sign in for a larger allowance," if settings.sign_in and not signed_in else ",")
                    + " or wait a while."
                ),
            ),
        ]
    return [
        Limit(
            since=now - DAY_S,
            most=settings.preview_runs_per_day,
            key_source=KeySource.PREVIEW,
            refusal="This app has made all the offline previews it can today: come back tomorrow.",
        ),
        Limit(
            since=now - HOUR_S,
            most=settings.preview_runs_per_hour,
            key_source=KeySource.PREVIEW,
            requester=requester,
            refusal=(
                f"You have made {settings.preview_runs_per_hour} offline previews in the last hour: "
                "wait a while, or paste your own WaveSpeed key to make real videos."
            ),
        ),
    ]


def room_left(store: RunStore, limits: list[Limit]) -> int | None:
    """How many more runs fit within `limits` right now; None when nothing limits them."""
    if not limits:
        return None
    return max(0, min(limit.most - store.count(limit) for limit in limits))
