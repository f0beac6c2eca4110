"""A director's film in the page: takes side by side, another take picked and what follows it
marked with its price, re-made from there, and the film exported for an editor; in a real
Chromium against `python app.py` on the offline backend, at a laptop's and a phone's size."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from skyreels_demo.models import SKYREELS_V1

from .conftest import ASTRONAUT, ROOT, LaunchedApp, open_store, write_storyboard
from .test_pleasant import serious_violations

SHOTS = ROOT / "tests" / "screenshots"  # git-ignored: for a person to look at
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    # Every take the stock clip (SKYREELS_PREVIEW_RENDERS=0): what is checked here is which takes
    # were made, picked and followed, never what is inside them.
    with LaunchedApp(tmp_path_factory.mktemp("film-page") / "data", SKYREELS_PREVIEW_TIMING="0.2,0.4",
                     SKYREELS_PREVIEW_RENDERS="0") as launched:
        yield launched


def test_make_film_takes_a_number_of_takes_per_shot(app):
    from gradio_client import Client, handle_file

    client = Client(app.url, verbose=False)
    film, lines = client.predict(handle_file(ASTRONAUT), "a woman smiles\nshe turns away", 8, None, 2,
                                 api_name="/make_film")
    assert "2 shots × 2 takes" in lines and "seeds 8, 9" in lines and "The film is cut" in lines
    store = open_store(Path(app.data_dir))
    made = store.films(limit=1)[0]
    assert [r.shot for r in store.shots_of(made.id) if r.status == "done"].count(1) == 2


def _screens(page, name: str, seen: str = "#film-status") -> None:
    """The page as it is now at a laptop's size and at a phone's, `seen` in view, saved for a
    person to look at."""
    SHOTS.mkdir(exist_ok=True)
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.locator(seen).evaluate("el => el.scrollIntoView({block: 'center'})")
        page.screenshot(path=str(SHOTS / f"film-{name}-{size}.png"), full_page=False)
    page.set_viewport_size(DESKTOP)


def _picked_take(page, shot: int) -> int:
    caption = page.locator("#film-timeline").get_by_text(re.compile(rf"Shot {shot} · take \d · seed \d+ ★ picked"))
    return int(re.search(r"take (\d)", caption.first.inner_text()).group(1))


@pytest.mark.browser
def test_a_director_picks_a_take_re_makes_what_follows_and_exports_the_film(app, browser, tmp_path):
    from playwright.sync_api import expect

    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        page.goto(app.url)
        write_storyboard(page)
        page.locator("#film-takes").get_by_label("2", exact=True).check()
        expect(page.locator("#film-price")).to_contain_text("2 shots × 2 takes")
        page.get_by_role("button", name="Make the film").click()
        status = page.locator("#film-status")
        expect(status).to_contain_text("take 1", timeout=30_000)
        expect(status).to_contain_text("The film is cut", timeout=120_000)
        timeline = page.locator("#film-timeline")
        for shot in (1, 2):
            for take in (1, 2):
                expect(timeline.get_by_text(f"Shot {shot} · take {take} · seed")).to_be_visible()
        expect(status).to_contain_text("continues from shot 1")
        assert serious_violations(page) == [], "the Film tab with its takes"
        _screens(page, "takes")

        other = 3 - _picked_take(page, 1)
        # A take clicked in the strip fills the boxes of "Pick this take".
        timeline.get_by_text(f"Shot 1 · take {other} · seed").click()
        expect(page.locator("#film-pick").get_by_label("Take", exact=True)).to_have_value(str(other))
        expect(page.locator("#film-pick").get_by_label("Shot", exact=True)).to_have_value("1")
        page.get_by_role("button", name="Pick this take").click()
        expect(status).to_contain_text("Shot 2 follows an old frame")
        expect(status).to_contain_text("2 new takes · offline preview: free")
        expect(timeline.get_by_text(f"Shot 1 · take {other} · seed")).to_contain_text("★ picked")
        remake = page.get_by_role("button", name="Re-make from here")
        expect(remake).to_be_visible()
        expect(page.get_by_role("button", name="Export for an editor")).to_be_hidden()
        _screens(page, "changed", "#film-remake")

        remake.click()
        expect(status).to_contain_text("The film is cut", timeout=120_000)
        expect(remake).to_be_hidden()
        store = open_store(Path(app.data_dir))
        film = next(f for f in store.films(limit=5) if f.status == "done" and len(store.shots_of(f.id)) == 6)
        runs = store.shots_of(film.id)
        seed = SKYREELS_V1.following_seeds(film.shots[0]["seed"], 2)[other - 1]
        picked = next(r for r in runs if r.shot == 0 and r.seed == seed)
        # Shot 2's new takes start from the take picked; its old ones stay (History).
        assert sorted(r.continued_from == picked.id for r in runs if r.shot == 1) == [False, False, True, True]

        export = page.get_by_role("button", name="Export for an editor")
        with page.expect_download() as download:
            export.click()
        saved = tmp_path / "film.zip"
        download.value.save_as(saved)
        with zipfile.ZipFile(saved) as zf:
            assert {"film.mp4", "shot-1.mp4", "shot-2.mp4", "film.otio", "film.edl", "film.xml", "film.json"} <= set(zf.namelist())
        expect(page.locator("#film-export-file")).to_be_visible()
        _screens(page, "export", "#film-export-file")
    finally:
        context.close()
