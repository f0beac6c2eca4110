"""The account behind a key: its balance, a key checked before it is used, and a low-credit
warning for the owner.

A balance costs nothing to ask for, so a key a visitor pastes is checked at once: they learn
whether it works and roughly how many videos it pays for, at the price WaveSpeed answers for
that key (pricing.py), before they press Generate. The owner's balance is never shown to
visitors; it only reaches the log, when it runs low.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Callable

from skyreels_demo.wavespeed.client import WaveSpeedClient
from skyreels_demo.config import Settings
from skyreels_demo.errors import AuthError, StudioError
from skyreels_demo.studio.keys import checked_key, in_use
from skyreels_demo.models import ModelSpec
from skyreels_demo.studio.pricing import ask_price
from skyreels_demo.times import DAY_S

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyCheck:
    ok: bool
    sentence: str  # what the person reads
    balance: float | None = None
    currency: str = "USD"
    videos: int | None = None  # how many videos the balance pays for
    refused: bool = False  # WaveSpeed refused the key itself (401/403)
    price: float | None = None  # what a video costs on this key, as WaveSpeed answers it


def videos_for(amount: float, price: float) -> int:
    """How many videos at `price` a balance of `amount` pays for."""
    return max(0, math.floor(amount / price + 1e-9)) if price > 0 else 0


def check_key(settings: Settings, api_key: str | None, model: ModelSpec) -> KeyCheck:
    """Whether a key works and what it can pay for; never raises for a bad key."""
    try:
        key = checked_key(api_key)
    except StudioError as exc:
        return KeyCheck(False, exc.sentence)
    if not key:
        return KeyCheck(False, "Paste a WaveSpeed API key to check it.")
    try:
        # Masked in the log while the check uses it, then forgotten with its client (keys.py).
        with in_use(key), WaveSpeedClient(settings.with_key(key)) as client:
            balance = client.balance()
            cost, _ = ask_price(client, model)  # this key's own price
    except AuthError as exc:
        return KeyCheck(False, exc.sentence, refused=True)
    except StudioError as exc:
        return KeyCheck(False, exc.sentence)
    videos = videos_for(balance.amount, cost)
    price = f"${cost:.2f}"
    if videos == 0:
        sentence = (
            f"This key works, but its credit (${balance.amount:.2f}) does not pay for a video "
            f"({price} each): top it up on WaveSpeed first."
        )
    else:
        sentence = (
            f"This key works: ${balance.amount:.2f} of credit, about {videos} "
            f"video{'s' if videos != 1 else ''} at {price} each."
        )
    return KeyCheck(True, sentence, balance.amount, balance.currency, videos, price=cost)


class BalanceWatch(threading.Thread):
    """Logs a warning at start-up, then at most once a day, while the owner's credit is low."""

    def __init__(
        self, settings: Settings, model: ModelSpec, *, every_s: float = DAY_S, price: Callable[[], float] | None = None
    ) -> None:
        super().__init__(name="skyreels-balance", daemon=True)
        self.settings = settings
        self.model = model
        # What a video costs the owner (the studio's `Prices.owner`), else the listed price.
        self.price = price or (lambda: model.price_usd)
        self.every_s = every_s
        # Not `_stop`: that would shadow Thread._stop, which join() calls.
        self._halt = threading.Event()

    def check_once(self) -> float | None:
        """The owner's balance now (None if it could not be read); warns when it is low."""
        if not self.settings.has_key:
            return None
        try:
            with WaveSpeedClient(self.settings) as client:
                balance = client.balance()
        except StudioError as exc:
            log.warning("could not read the owner's WaveSpeed balance: %s", exc.sentence)
            return None
        if balance.amount < self.settings.low_balance_usd:
            log.warning(
                "the owner's WaveSpeed credit is low: $%.2f, about %d videos; top it up to keep "
                "the Space running (warning below $%.2f, SKYREELS_LOW_BALANCE_USD)",
                balance.amount, videos_for(balance.amount, self.price()), self.settings.low_balance_usd,
            )
        return balance.amount

    def run(self) -> None:
        while not self._halt.is_set():
            self.check_once()
            self._halt.wait(self.every_s)

    def stop(self) -> None:
        self._halt.set()
