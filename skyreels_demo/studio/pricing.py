"""What a run costs, as WaveSpeed answers it for the key that pays (its pricing route).

Prices change, so the figure shown beside Generate, in a film's total, in a sweep's question and
in what a balance pays for is WaveSpeed's, not one written in the code. The owner's is asked
once at start-up (the page is built with it) and kept; once older than `fresh_s` the next reader
still gets it at once while a thread asks again, so a page never waits on WaveSpeed for a price.
A visitor's own key asks for its own when they paste it (account.py); that figure is not kept.
Whenever the route does not answer (a 404 where it is not offered, an error, a figure that is no
price) the model's listed price (models.py) stands in, and is asked about again sooner.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from skyreels_demo.studio.access import Access
from skyreels_demo.wavespeed.client import WaveSpeedClient
from skyreels_demo.errors import StudioError
from skyreels_demo.models import ModelSpec
from skyreels_demo.times import HOUR_S

log = logging.getLogger(__name__)

# The run the route is asked about: one as the page's form starts (no picture yet, a random seed);
# a SkyReels V1 run costs the same whatever its prompt and picture.
PRICE_INPUTS = {"prompt": "", "image": "", "seed": -1}
FRESH_S = HOUR_S  # the owner's price is asked again after an hour
RETRY_S = 300.0  # after the route did not answer, after five minutes


def ask_price(client: WaveSpeedClient, model: ModelSpec) -> tuple[float, bool]:
    """(price, whether WaveSpeed answered it): the model's listed price when it did not."""
    try:
        return client.price(model, PRICE_INPUTS), True
    except StudioError as exc:
        log.info("the price of %s could not be read (%s); using its listed $%.2f",
                 model.name, getattr(exc, "detail", None) or exc.sentence, model.price_usd)
        return model.price_usd, False


class Prices:
    """The owner's price per model, asked with the owner's key and kept a while."""

    def __init__(
        self,
        access: Access,
        *,
        fresh_s: float = FRESH_S,
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.access = access
        self.fresh_s = fresh_s
        self.retry_s = retry_s
        self.clock = clock
        self._lock = threading.Lock()
        self._known: dict[str, tuple[float, float]] = {}  # model name -> (price, asked again after)
        self._asking: set[str] = set()

    def owner(self, model: ModelSpec) -> float:
        """What a run of `model` costs on the owner's key (its listed price when there is no key).

        Asked now the first time; later the kept figure, asked again in the background once stale."""
        if not self.access.settings.has_key:
            return model.price_usd
        with self._lock:
            known = self._known.get(model.name)
        if known is None:
            return self.refresh(model)
        price, stale_at = known
        if self.clock() >= stale_at:
            self._refresh_in_background(model)
        return price

    def refresh(self, model: ModelSpec) -> float:
        """Ask WaveSpeed now with the owner's key, keep the answer, and return it."""
        if not self.access.settings.has_key:
            return model.price_usd
        price, answered = ask_price(self.access.backend_for(None).client, model)
        with self._lock:
            self._known[model.name] = (price, self.clock() + (self.fresh_s if answered else self.retry_s))
        return price

    def _refresh_in_background(self, model: ModelSpec) -> None:
        with self._lock:
            if model.name in self._asking:
                return
            self._asking.add(model.name)

        def ask() -> None:
            try:
                self.refresh(model)
            except Exception:  # a price must never take anything down with it
                log.exception("asking the price of %s failed", model.name)
            finally:
                with self._lock:
                    self._asking.discard(model.name)

        threading.Thread(target=ask, name="skyreels-price", daemon=True).start()
