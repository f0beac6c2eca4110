"""The README's picture, made as a visitor sees the page: the launched app with no key, the cat
example made in Chromium, its offline preview playing beside the form.

Every run writes it to tests/screenshots/ (git-ignored) to look at; it goes into assets/, where
the README shows it, when it is missing there or when SKYREELS_README_PICTURES=1 asks for it
again (so a test run leaves a clean checkout: a picture of a live page differs by a pixel from
run to run):

    SKYREELS_README_PICTURES=1 .venv/bin/python -m pytest tests/test_readme_pictures.py
"""

from __future__ import annotations

import os
import re
import shutil

import pytest
from PIL import Image
from playwright.sync_api import expect

from .conftest import CHELSEA, ROOT, LaunchedApp, fill_in, wait_for

pytestmark = pytest.mark.browser

PROMPT = (
    "A tabby cat slowly blinks, twitches its ears and turns to look past the camera; "
    "warm afternoon light, shallow depth of field."
)
SHOTS = ROOT / "tests" / "screenshots"


def keep(name: str, page) -> Image.Image:
    """The page's screenshot, to look at, and into assets/ when the README needs it again."""
    SHOTS.mkdir(exist_ok=True)
    made = SHOTS / name
    page.screenshot(path=str(made), full_page=False)
    shown = ROOT / "assets" / name
    if not shown.exists() or os.environ.get("SKYREELS_README_PICTURES") == "1":
        shutil.copyfile(made, shown)
    return Image.open(made)


def test_the_readmes_picture_is_the_create_tab_with_an_offline_preview_playing(tmp_path, browser):
    with LaunchedApp(tmp_path / "data", SKYREELS_PREVIEW_TIMING="0.2,0.6") as app:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(60_000)
        page = context.new_page()
        page.goto(app.url)
        page.get_by_role("button", name="Generate", exact=True).wait_for()
        fill_in(page, PROMPT, CHELSEA)
        page.get_by_label("Randomize seed").uncheck()
        page.get_by_label("Seed (-1 = random)").fill("7")
        page.get_by_role("button", name="Generate", exact=True).click()
        video = page.locator("#result-video video")
        video.wait_for(timeout=60_000)
        expect(page.locator("#status")).to_contain_text(re.compile("Done|done"))
        expect(page.locator("#summary")).to_contain_text("Offline preview")
        # A frame well into the move, held still for the picture.
        wait_for(lambda: (page.evaluate("() => document.querySelector('#result-video video').duration") or 0) > 3.5, timeout=30)
        page.evaluate("() => { const v = document.querySelector('#result-video video'); v.pause(); v.currentTime = 3.0; }")
        wait_for(lambda: page.evaluate("() => document.querySelector('#result-video video').seeking") is False, timeout=10)
        page.evaluate("() => window.scrollTo(0, 0)")
        picture = keep("screenshot-create.png", page)
        assert picture.size == (1280, 800)
        context.close()
