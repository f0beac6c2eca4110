"""The price of a run is WaveSpeed's: the pricing route's answer, for the key that pays, kept a
while; the model's listed price only when the route does not answer."""

from __future__ import annotations

import requests

from skyreels_demo.studio.access import Access
from skyreels_demo.studio.account import check_key
from skyreels_demo.studio.films import film_price
from skyreels_demo.local_api import LocalBackend
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.studio.pricing import Prices
from skyreels_demo.studio.studio import Studio

from .conftest import FAST, LaunchedApp, settings_for, wait_for


def component(config: dict, elem_id: str) -> dict:
    [found] = [c for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id]
    return found["props"]


def test_the_page_shows_the_price_the_pricing_route_answers(tmp_path):
    with LocalBackend(timing=FAST, render=False, prices={SKYREELS_V1.name: 0.35}) as backend:
        env = dict(WAVESPEED_API_KEY="test-key-not-secret", WAVESPEED_BASE_URL=backend.base_url, SKYREELS_SHARED="1")
        with LaunchedApp(tmp_path / "data", **env) as app:
            # What a visitor's browser is given to draw the page.
            config = requests.get(app.url + "config", timeout=10).json()
            assert component(config, "price")["value"] == (
                "Each video uses about $0.35 of this Space's credit; paste your own key for more."
            )
            banners = [c["props"]["value"] for c in config["components"] if "mode-banner live" in str(c["props"].get("value"))]
            assert banners and "about $0.35 each" in banners[0]
            assert "$0.20" not in str(config)
            assert backend.counts["pricing"] == 1  # asked once at start-up, then kept


def test_the_listed_price_stands_in_when_the_route_does_not_answer_and_is_asked_again_later(backend, tmp_path):
    now = [1000.0]
    backend.retired.add("pricing")
    access = Access(settings_for(backend, tmp_path / "data"))
    prices = Prices(access, fresh_s=3600, retry_s=300, clock=lambda: now[0])
    try:
        assert prices.owner(SKYREELS_V1) == SKYREELS_V1.price_usd == 0.20
        assert prices.owner(SKYREELS_V1) == 0.20 and backend.counts["pricing"] == 1  # kept a while
        backend.retired.discard("pricing")
        backend.prices[SKYREELS_V1.name] = 0.35
        now[0] += 301  # asked again sooner after a miss: the kept figure meanwhile
        assert prices.owner(SKYREELS_V1) == 0.20
        wait_for(lambda: prices.owner(SKYREELS_V1) == 0.35, timeout=10)
        backend.prices[SKYREELS_V1.name] = 0.40
        now[0] += 3599  # an answer is kept an hour
        assert prices.owner(SKYREELS_V1) == 0.35 and backend.counts["pricing"] == 2
        now[0] += 2
        wait_for(lambda: prices.owner(SKYREELS_V1) == 0.40, timeout=10)
        assert backend.counts["pricing"] == 3
    finally:
        access.close()


def test_a_films_total_is_at_wavespeeds_price(backend, tmp_path):
    backend.prices[SKYREELS_V1.name] = 0.35
    studio = Studio(settings_for(backend, tmp_path / "data"), SKYREELS_V1)
    try:
        assert film_price(studio, 3) == "3 shots · about $1.05 (3 videos at $0.35)."
    finally:
        studio.close()


def test_a_visitors_own_key_asks_for_its_own_price(tmp_path):
    with LocalBackend(timing=FAST, render=False, balance=3.4, prices={SKYREELS_V1.name: 0.5}) as backend:
        checked = check_key(settings_for(backend, tmp_path), "a-visitors-own-key", SKYREELS_V1)
        assert checked.ok and checked.price == 0.5 and checked.videos == 6
        assert checked.sentence == "This key works: $3.40 of credit, about 6 videos at $0.50 each."
        assert backend.counts["pricing"] == 1 and backend.counts["submit"] == 0
