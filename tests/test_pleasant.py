"""Pleasant for a stranger, in Chromium at a laptop's, a large screen's and a phone's size: the
whole clip on the screen, a status that always says what is true now, an error said once,
true words offline, what a click changed in view, and WCAG AA by axe-core.

Screenshots land in $SKYREELS_SHOTS (default /tmp/shots-pleasant) to be looked at.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import LaunchedApp, fill_in, photo, wait_for

SHOTS = Path(os.environ.get("SKYREELS_SHOTS", "/tmp/shots-pleasant"))
SIZES = {"laptop": (1366, 768), "large": (1920, 1080), "phone": (390, 844)}
# A desktop visitor's window at a laptop's size, then made larger: one page looked at twice.
SCREENS = {"desktop": ("laptop", "large"), "phone": ("phone",)}
SEED_MAX = 2_147_483_647


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    # Processing long enough that Stop lands mid-run, short enough for six runs in a test.
    with LaunchedApp(tmp_path_factory.mktemp("pleasant-app"), SKYREELS_PREVIEW_TIMING="0.3,2.5") as launched:
        yield launched


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict[str, str]:
    """A portrait and a square photo: the model makes them 544x960 and 720x720 clips."""
    folder = tmp_path_factory.mktemp("pictures")
    made = {}
    for name, (width, height) in {"portrait": (800, 1400), "square": (1000, 1000)}.items():
        path = folder / f"{name}.jpg"
        photo(width, height, seed=len(name)).save(path, quality=90)
        made[name] = str(path)
    return made


def visit(browser, url: str, size: str) -> Page:
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=size == "phone",
                                  has_touch=size == "phone")
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(url)
    page.get_by_role("button", name="Generate", exact=True).wait_for()
    return page


def resize(page: Page, size: str) -> None:
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})


def shot(page: Page, name: str, **options) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), **options)


def box_of(page: Page, selector: str) -> dict:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box


def inside_viewport(page: Page, box: dict) -> bool:
    size = page.viewport_size
    return (box["x"] >= -1 and box["y"] >= -1 and box["x"] + box["width"] <= size["width"] + 1
            and box["y"] + box["height"] <= size["height"] + 1)


def top_in_view(page: Page, selector: str) -> bool:
    box = box_of(page, selector)
    return 0 <= box["y"] + 2 and box["y"] + min(box["height"], 80) <= page.viewport_size["height"]


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now (experimental rules too)."""
    from axe_playwright_python.sync_playwright import Axe

    options = {"resultTypes": ["violations"], "rules": {"label-content-name-mismatch": {"enabled": True}}}
    found = Axe().run(page, options=options).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): " + "; ".join(node["html"][:120] for node in v["nodes"][:5])
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def status_text(page: Page) -> str:
    return page.locator("#status").inner_text()


def pop_ups(page: Page) -> int:
    return page.locator("[data-testid='toast-body'], .toast-body").count()


def generate_and_watch(page: Page, prompt: str, image: str) -> None:
    fill_in(page, prompt, image)
    page.get_by_role("button", name="Generate", exact=True).click()
    video = page.locator("#result-video video")
    video.wait_for(timeout=60_000)
    wait_for(lambda: video.evaluate("v => v.readyState") >= 1, timeout=30)


@pytest.mark.browser
@pytest.mark.parametrize("screen", SCREENS)
def test_the_whole_clip_is_on_the_screen_and_axe_finds_nothing_serious(app, browser, pictures, screen):
    sizes = SCREENS[screen]
    size = sizes[0]
    page = visit(browser, app.url, size)
    try:
        # Markup drawn at any moment is fixed before anything else can read the page (axe here, a
        # screen reader for a visitor): an unnamed-role label and a button named unlike its words.
        drawn_late = page.evaluate("""async () => {
            const box = document.createElement('div');
            box.setAttribute('aria-label', 'Empty value');
            const button = document.createElement('button');
            button.textContent = 'Drop a picture here';
            button.setAttribute('aria-label', 'Upload');
            document.body.append(box, button);
            await Promise.resolve();
            const seen = [box.getAttribute('role'), button.getAttribute('aria-label')];
            box.remove(); button.remove();
            return seen;
        }""")
        assert drawn_late == ["img", "Drop a picture here · Upload"]
        assert serious_violations(page) == [], "Create, before a run"
        for each in sizes:
            resize(page, each)
            shot(page, f"{each}-before")
        for shape, expected in (("portrait", 544 / 960), ("square", 1.0)):
            resize(page, size)
            fill_in(page, "A woman turns to the camera and smiles", pictures[shape])
            page.get_by_role("button", name="Generate", exact=True).click()
            expect(page.locator("#status")).to_contain_text("Making the video", timeout=30_000)
            if shape == "portrait":
                shot(page, f"{size}-during")
            video = page.locator("#result-video video")
            video.wait_for(timeout=60_000)
            wait_for(lambda: video.evaluate("v => v.readyState") >= 1, timeout=30)
            # The page shows the finished clip whole: its box (controls drawn inside it) on the
            # screen, at each of the screen's sizes.
            for each in sizes:
                resize(page, each)
                wait_for(lambda: inside_viewport(page, box_of(page, "#result-video video")), timeout=5)
                box = box_of(page, "#result-video video")
                assert abs(box["width"] / box["height"] - expected) < 0.03, (each, shape, box)  # its own shape
                assert box["height"] >= min(300, page.viewport_size["height"] * 0.4), (each, box)  # not a postage stamp
                shot(page, f"{each}-after-{shape}")
        assert serious_violations(page) == [], "Create, after a run"

        page.get_by_role("button", name=re.compile("^Your own WaveSpeed key")).click()
        expect(page.get_by_label("WaveSpeed API key")).to_be_visible()
        assert serious_violations(page) == [], "the key box opened"

        page.get_by_role("tab", name="History").click()
        first = page.get_by_role("button", name=re.compile(r"Thumbnail 1 of \d+"))
        expect(first).to_be_visible(timeout=10_000)
        # Every caption is shown whole (it wraps to two lines), not cut to "done · seed...".
        captions = page.locator("#history-gallery .caption-label")
        assert captions.count() >= 2
        for each in sizes:
            resize(page, each)
            shot(page, f"{each}-history-grid")
            assert captions.evaluate_all("els => els.every(e => e.scrollHeight <= e.clientHeight + 1)"), captions.evaluate_all("els => els.map(e => [e.scrollHeight, e.clientHeight, getComputedStyle(e).webkitLineClamp, e.innerText])")
            label, grid = box_of(page, "#history-gallery label"), box_of(page, "#history-gallery .grid-wrap")
            assert label["y"] + label["height"] <= grid["y"] + 1, (each, label, grid)  # the label is above the first row
        assert serious_violations(page) == [], "History with runs"
        resize(page, size)  # picked at the first size, then looked at as the window grows
        first.click()
        past = page.locator("#history-video video")
        past.wait_for(timeout=15_000)
        wait_for(lambda: past.evaluate("v => v.readyState") >= 1, timeout=30)
        for each in sizes:
            resize(page, each)
            wait_for(lambda: inside_viewport(page, box_of(page, "#history-video video")), timeout=5)
            shot(page, f"{each}-history")
        assert serious_violations(page) == [], "History, a run picked"
    finally:
        page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("size", SIZES)
def test_a_refusal_is_said_once_in_the_status_and_cleared_when_an_image_is_chosen(app, browser, pictures, size):
    page = visit(browser, app.url, size)
    try:
        page.get_by_label("Prompt", exact=True).fill("A man nods")
        page.get_by_role("button", name="Generate", exact=True).click()
        expect(page.locator("#status")).to_contain_text("Add an image first", timeout=10_000)
        assert top_in_view(page, "#status")
        time.sleep(0.5)  # a pop-up, had there been one, would be up by now
        assert pop_ups(page) == 0 and "Error" not in status_text(page)  # said once, nothing over it
        shot(page, f"{size}-error")

        page.locator("input[type=file]").first.set_input_files(pictures["square"])
        expect(page.locator("#status")).to_contain_text("press Generate", timeout=5_000)
        assert "Add an image first" not in status_text(page)

        # An out-of-range seed: the app's sentence, in a fresh status, never Gradio's or the last run's.
        expect(page.get_by_text("Upload size")).to_be_visible(timeout=15_000)
        page.get_by_label("Seed (-1 = random)").fill("99999999999999")
        page.get_by_role("button", name="Generate", exact=True).click()
        expect(page.locator("#status")).to_contain_text(f"The seed must be from -1 to {SEED_MAX}", timeout=10_000)
        shown = status_text(page)
        assert "greater than maximum" not in page.inner_text("body") and "Done" not in shown
        assert pop_ups(page) == 0
        # A run starts from a clean board at once, before the server has answered.
        page.get_by_label("Seed (-1 = random)").fill("7")
        expect(page.get_by_label("Randomize seed")).not_to_be_checked()
        page.get_by_role("button", name="Generate", exact=True).click()
        assert "The seed must" not in status_text(page)
        expect(page.locator("#result-video video")).to_have_count(1, timeout=60_000)
    finally:
        page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("screen", SCREENS)
def test_stop_in_the_preview_says_it_is_free_and_keeps_rendering_in_view(app, browser, pictures, screen):
    sizes = SCREENS[screen]
    page = visit(browser, app.url, sizes[0])
    try:
        fill_in(page, "A woman waves", pictures["square"])
        page.get_by_role("button", name="Generate", exact=True).click()
        expect(page.locator("#status")).to_contain_text("Making the video", timeout=30_000)
        stop = page.get_by_role("button", name="Stop", exact=True)
        stop.scroll_into_view_if_needed()  # on a phone Stop is far above the status
        stop.click()
        expect(page.locator("#status")).to_contain_text("Stopped waiting", timeout=5_000)
        words = status_text(page)
        assert "paid" not in words and "WaveSpeed" not in words, words
        assert "free" in words and "history" in words.lower()
        for size in sizes:
            resize(page, size)
            wait_for(lambda: top_in_view(page, "#status"), timeout=5)
            shot(page, f"{size}-stopped")
    finally:
        page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("size", SIZES)
def test_choosing_an_example_brings_its_image_and_prompt_into_view(app, browser, size):
    page = visit(browser, app.url, size)
    try:
        example = page.get_by_text("A tabby cat slowly blinks").first
        example.scroll_into_view_if_needed()
        example.click()
        expect(page.get_by_label("Prompt", exact=True)).to_have_value(re.compile("tabby cat"), timeout=10_000)
        wait_for(lambda: top_in_view(page, "#input-image"), timeout=5)
        shot(page, f"{size}-example")
    finally:
        page.context.close()


@pytest.mark.browser
def test_the_small_things_a_visitor_meets(app, browser, pictures):
    page = visit(browser, app.url, "laptop")
    try:
        # A "Randomize seed" box beside the seed, not a stretched button; ticking it means -1.
        assert page.get_by_role("button", name="Random seed").count() == 0
        randomize = page.get_by_label("Randomize seed")
        expect(randomize).to_be_checked()
        seed = page.get_by_label("Seed (-1 = random)")
        randomize.uncheck()
        wait_for(lambda: seed.input_value() not in ("", "-1"), timeout=5)
        randomize.check()
        expect(seed).to_have_value("-1")
        box = box_of(page, "#randomize-seed")
        assert box["height"] < 60, box

        # The footer says "Use via API" with no stray separator after it.
        footer = page.locator("footer")
        assert "·" not in footer.inner_text()
        # The idea box is named for what it is.
        expect(page.get_by_role("textbox", name="Optional idea for the prompt writer")).to_have_count(1)

        # The offline prompt writer's text is a prompt, not a prompt with a tag to delete.
        fill_in(page, "", pictures["square"])
        page.get_by_role("button", name="Write a prompt from my image").click()
        prompt = page.get_by_label("Prompt", exact=True)
        expect(prompt).to_have_value(re.compile("camera"), timeout=30_000)
        assert "[" not in prompt.input_value()
        expect(page.get_by_text("Offline preview: a stand-in prompt").first).to_be_visible()

        # A key of one character is refused here, in words, before anything is asked of WaveSpeed.
        page.get_by_role("button", name=re.compile("^Your own WaveSpeed key")).click()
        key = page.get_by_label("WaveSpeed API key")
        key.fill("x")
        key.press("Enter")
        expect(page.locator("#key-check")).to_contain_text("not a WaveSpeed key", timeout=10_000)
        assert "processing" not in page.locator("#key-check").inner_text()
        shot(page, "laptop-key-check")
    finally:
        page.context.close()


# --- starting again ----------------------------------------------------------------------------
