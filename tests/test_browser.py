"""The app in a real browser: Debian's Chromium driven by Playwright, as a visitor uses it."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from skyreels_demo.models import SKYREELS_V1

from .conftest import LaunchedApp, fill_in, open_store, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    # Long enough processing that Stop lands mid-run; the first run still ends in seconds.
    with LaunchedApp(tmp_path_factory.mktemp("browser-app"), SKYREELS_PREVIEW_TIMING="0.5,4") as launched:
        yield launched


def status_text(page: Page) -> str:
    return page.locator("#status").inner_text()


def test_a_visitor_makes_a_video_then_stops_a_second_run(app, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(app.url)
    expect(page.get_by_text("Offline preview.")).to_be_visible(timeout=30_000)
    fill_in(page, "A woman smiles at the camera")

    before = status_text(page)
    page.get_by_role("button", name="Generate").click()
    seen = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and page.locator("#result-video video").count() == 0:
        seen.add(status_text(page))
        time.sleep(0.2)
    assert before not in seen and len(seen) >= 3, seen  # the status moved through stages

    video = page.locator("#result-video video")
    wait_for(lambda: video.evaluate("v => v.readyState") >= 2, timeout=30)
    duration = video.evaluate("v => v.duration")
    assert 3.8 <= duration <= 4.3, duration  # 97 frames at 24 fps
    expect(page.locator("#summary")).to_contain_text("Seed")
    page.screenshot(path=str(tmp_path / "desktop.png"), full_page=True)

    # A second run, stopped while the video is being made.
    page.get_by_label("Prompt", exact=True).fill("A woman turns and waves")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status")).to_contain_text("Making the video", timeout=30_000)
    stopped_at = time.monotonic()
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#status")).to_contain_text("Stopped waiting", timeout=5_000)
    assert time.monotonic() - stopped_at < 2.5
    # The preview is free and local: nothing about paying WaveSpeed.
    expect(page.locator("#status")).to_contain_text("offline preview is free")

    # The stopped run is not lost: the app finishes it unseen.
    store = open_store(Path(app.data_dir))
    stopped = wait_for(lambda: [r for r in store.recent() if r.prompt.endswith("turns and waves")], timeout=10)[0]
    wait_for(lambda: store.get(stopped.id).status == "done", timeout=30)
    assert Path(store.get(stopped.id).video_path).stat().st_size > 10_000
    page.close()


def test_the_page_fits_a_phone(app, browser, tmp_path):
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page.goto(app.url)
    expect(page.get_by_role("button", name="Generate")).to_be_visible(timeout=30_000)
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # Inputs and the result stack: the image box sits above the status area.
    image_box = page.locator("input[type=file]").locator("xpath=ancestor::div[contains(@class,'block')][1]")
    assert image_box.bounding_box()["y"] < page.locator("#status").bounding_box()["y"]
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    page.close()


# Each animation frame the page asks for, by the script that asked (its file, without its hash).
FRAMES_BY_CALLER = """
window.__frames = {};
const askFrame = window.requestAnimationFrame.bind(window);
window.requestAnimationFrame = (callback) => {
  const caller = (new Error().stack || '').split('\\n').slice(2).join(' ').match(/assets\\/([a-zA-Z]+)/);
  const name = caller ? caller[1] : 'page';
  window.__frames[name] = (window.__frames[name] || 0) + 1;
  return askFrame(callback);
};
"""


def test_a_page_left_open_draws_nothing_for_gradios_hidden_timers(app, browser):
    """A visitor's open tab is quiet: Gradio's status trackers, one of them left timing the
    page's own loading forever, ask for no animation frames (sixty a second before, about 6% of
    a core: bench_page_frames.py); the page's own drawing (Svelte's) still gets its frames."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.add_init_script(FRAMES_BY_CALLER)
    page = context.new_page()
    page.goto(app.url)
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_visible(timeout=30_000)
    page.evaluate("() => { window.__frames = {}; }")
    page.wait_for_timeout(2000)  # the page left open: the window measured
    frames = page.evaluate("() => window.__frames")
    assert frames.get("statustracker", 0) == 0, frames
    context.close()


def in_view(page: Page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= -5 and box["y"] + min(box["height"], 120) <= height


def test_on_a_laptop_the_prompt_and_generate_are_on_the_first_screen_and_the_run_stays_in_view(app, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(app.url)
    fill_in(page, "A woman turns to the camera")
    assert page.evaluate("window.scrollY") == 0
    generate = page.get_by_role("button", name="Generate")
    box = generate.bounding_box()
    assert box["y"] + box["height"] <= 768, box  # no scrolling to reach it
    assert in_view(page, "textarea")
    generate.click()
    expect(page.locator("#status")).to_contain_text("Making the video", timeout=30_000)
    assert in_view(page, "#status") and in_view(page, "#result-video")
    page.screenshot(path=str(tmp_path / "laptop-during.png"))
    expect(page.locator("#result-video video")).to_have_count(1, timeout=60_000)
    page.close()


def test_on_a_phone_generate_brings_the_status_into_view(app, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(app.url)
    fill_in(page, "A man nods slowly")
    assert not in_view(page, "#status")  # below the controls on a phone
    page.get_by_role("button", name="Generate").click()
    wait_for(lambda: in_view(page, "#status"), timeout=5)
    expect(page.locator("#result-video video")).to_have_count(1, timeout=60_000)
    page.close()


def test_a_prompt_is_written_from_the_picture_into_the_box(app, browser):
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(app.url)
    fill_in(page, "")
    page.get_by_placeholder("Optional idea").fill("slow dolly in")
    page.get_by_role("button", name="Write a prompt from my image").click()
    prompt = page.get_by_label("Prompt", exact=True)
    expect(prompt).to_have_value(re.compile("dolly in"), timeout=30_000)
    assert "[" not in prompt.input_value()  # no tag left in the prompt to delete
    assert "key" not in prompt.input_value() and "person" not in prompt.input_value()  # a prompt, neutral
    expect(page.get_by_text("Offline preview: a stand-in prompt, a placeholder").first).to_be_visible()
    assert page.locator("#status").inner_text() == status_text(page)  # nothing was submitted
    expect(page.locator("#status")).to_contain_text("press Generate")
    page.close()


def test_three_variations_arrive_in_the_grid_with_three_seeds_and_one_is_picked(app, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(app.url)
    fill_in(page, "A woman laughs")
    page.get_by_label("Seed (-1 = random)").fill("500")
    page.get_by_text("Several seeds at once").click()
    page.get_by_label("3").check()
    page.get_by_role("button", name="Make variations").click()
    grid = page.locator("#variations")
    for seed in (500, 501, 502):
        expect(grid).to_contain_text(f"Seed {seed}", timeout=60_000)
    expect(page.locator("#variations-status")).to_contain_text("✓ 3", timeout=30_000)
    page.screenshot(path=str(tmp_path / "variations.png"), full_page=True)
    page.get_by_role("button", name=re.compile("Thumbnail 2 of 3")).click()
    expect(page.locator("#summary")).to_contain_text("Picked: Seed", timeout=10_000)
    expect(page.locator("#result-video video")).to_have_count(1)
    page.close()


def test_history_thumbnails_keep_their_size_with_one_run_or_many(browser, tmp_path):
    data = tmp_path / "data"
    app = LaunchedApp(data, tmp_path / "app.log", SKYREELS_PREVIEW_TIMING="0.1,0.3")
    try:
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(app.url)
        fill_in(page, "The first run")
        page.get_by_role("button", name="Generate").click()
        expect(page.locator("#result-video video")).to_have_count(1, timeout=60_000)
        page.get_by_role("tab", name="History").click()
        one = page.get_by_role("button", name="Thumbnail 1 of 1")
        expect(one).to_be_visible(timeout=10_000)
        single = one.bounding_box()
        expect(page.locator("#history-gallery")).to_contain_text("seed")
        # Many more runs, straight into the store with their picture: History shows forty.
        store = open_store(data)
        first = store.recent()[0]
        for n in range(45):
            run = store.create(model=SKYREELS_V1.name, prompt=f"FPS-24, run {n}", seed=n, mode="preview", api_host="offline-preview")
            store.update(run.id, image_path=first.image_path, status="refused")
        page.get_by_role("button", name="Refresh").click()
        many = page.get_by_role("button", name="Thumbnail 1 of 40")
        expect(many).to_be_visible(timeout=10_000)
        assert abs(many.bounding_box()["width"] - single["width"]) < 2  # the same size either way
        assert single["width"] < 1366 / 2  # one run is a thumbnail, not the whole gallery
        page.screenshot(path=str(tmp_path / "history-many.png"))
        page.close()
    finally:
        app.stop()
