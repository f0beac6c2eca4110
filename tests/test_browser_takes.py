"""Takes in a real Chromium against `python app.py`: two takes compared side by side play, pause
and seek together; a take kept and found again; a share link opened by a stranger shows that
take and nothing else of the sharer's, and is dead once withdrawn or while sharing is off."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from .conftest import ASTRONAUT, LaunchedApp, clean_env, fill_in, run_cli

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots-takes")
FIRST = "A woman smiles at the camera as the flag stirs"
SECOND = "A woman slowly smiles and waves at the camera as the flag stirs"
PHONE = {"width": 390, "height": 844}
TIMING = "0.2,0.5"
# Each take the stock clip: these tests compare, keep, share and make takes again, and play them,
# reading nothing inside a video but its length and time.
STOCK = dict(SKYREELS_PREVIEW_RENDERS="0")


@pytest.fixture(scope="module")
def two_takes_app(tmp_path_factory):
    """A laptop's app whose data directory holds two takes of one picture (made by the CLI)."""
    data = tmp_path_factory.mktemp("two-takes") / "data"
    env = clean_env(SKYREELS_DATA_DIR=str(data), SKYREELS_PREVIEW_TIMING=TIMING, **STOCK)
    for prompt, seed in ((FIRST, "7"), (SECOND, "8")):
        made = run_cli("generate", "--prompt", prompt, "--image", ASTRONAUT, "--seed", seed, env=env)
        assert made.returncode == 0, made.stderr
    with LaunchedApp(data, SKYREELS_PREVIEW_TIMING=TIMING, **STOCK) as app:
        yield app


def open_history(page: Page) -> None:
    page.get_by_role("tab", name="History").click()
    expect(page.locator("#history-gallery")).to_contain_text("seed", timeout=10_000)


def compare_both(page: Page) -> None:
    open_history(page)
    expect(page.get_by_text("Compare… (choose 2 to 4 takes)")).to_be_visible()
    # Each choice names its take by its seed and the start of its prompt.
    page.locator("label", has_text="seed 7 · A woman smiles").click()
    page.locator("label", has_text="seed 8 · A woman slowly").click()
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.locator("#compare video")).to_have_count(2, timeout=10_000)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#compare video')).every(v => v.readyState >= 2)", timeout=15_000
    )


def clocks(page: Page) -> list[dict]:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('#compare video')).map(v => "
        "({t: v.currentTime, paused: v.paused, duration: v.duration, seed: v.dataset.seed}))"
    )


def test_two_takes_compared_play_together_and_a_seek_moves_both(browser, two_takes_app):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, viewport in (("desktop", {"width": 1366, "height": 1000}), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        try:
            page.goto(two_takes_app.url)
            compare_both(page)
            compare = page.locator("#compare")
            expect(compare).to_contain_text("Take 1 · seed 7")
            expect(compare).to_contain_text("Take 2 · seed 8")
            # What differs, in words: the words added and dropped, and the seeds.
            expect(compare).to_contain_text("adds “slowly”")
            expect(compare).to_contain_text("“and waves”")
            expect(compare).to_contain_text("Seeds: 7 (take 1), 8 (take 2).")
            compare.get_by_role("button", name="Play together").click()
            page.wait_for_function(  # both under way, half a second in
                "() => Array.from(document.querySelectorAll('#compare video')).every(v => !v.paused && v.currentTime > 0.5)",
                timeout=15_000,
            )
            playing = clocks(page)
            assert not any(video["paused"] for video in playing), playing
            assert all(video["t"] > 0.5 for video in playing), playing  # both really play
            assert abs(playing[0]["t"] - playing[1]["t"]) < 0.25, playing
            compare.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / f"compare-{name}.png"), full_page=True)
            compare.get_by_role("button", name="Pause together").click()
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('#compare video')).every(v => v.paused)", timeout=10_000
            )
            # One seek moves both.
            page.evaluate(
                "() => { const s = document.querySelector('#compare [data-compare=seek]');"
                " s.value = 250; s.dispatchEvent(new Event('input', {bubbles: true})); }"
            )
            page.wait_for_function(  # the seek has landed in both
                "() => Array.from(document.querySelectorAll('#compare video'))"
                ".every(v => !v.seeking && Math.abs(v.currentTime - v.duration * 0.25) < 0.1)",
                timeout=10_000,
            )
        finally:
            context.close()


def test_a_kept_take_is_starred_and_found_by_kept_only_and_by_its_words(browser, two_takes_app):
    context = browser.new_context(viewport={"width": 1366, "height": 1000})
    page = context.new_page()
    try:
        page.goto(two_takes_app.url)
        open_history(page)
        page.get_by_role("button", name="Thumbnail 1 of 2").click()  # the newest: seed 8
        keep = page.get_by_role("button", name="☆ Keep this take")
        expect(keep).to_be_enabled(timeout=10_000)
        keep.click()
        expect(page.get_by_role("button", name=re.compile("★ Kept"))).to_be_visible(timeout=10_000)
        expect(page.locator("#history-gallery")).to_contain_text("★", timeout=10_000)
        page.get_by_label("Kept takes only ★").check()
        expect(page.get_by_role("button", name="Thumbnail 1 of 1")).to_be_visible(timeout=10_000)
        expect(page.locator("#history-gallery")).to_contain_text("seed 8")
        page.get_by_label("Kept takes only ★").uncheck()
        expect(page.get_by_role("button", name="Thumbnail 1 of 2")).to_be_visible(timeout=10_000)
        words = page.get_by_label("Find takes by prompt words")
        words.fill("waves")
        words.press("Enter")
        expect(page.get_by_role("button", name="Thumbnail 1 of 1")).to_be_visible(timeout=10_000)
        expect(page.locator("#history-gallery")).to_contain_text("waves")
        words.fill("smiles CAMERA")  # every word, in any case: both takes
        words.press("Enter")
        expect(page.get_by_role("button", name="Thumbnail 1 of 2")).to_be_visible(timeout=10_000)
        # A quick visitor: a search sent while the one before is on its way is the one shown.
        for quick in ("flag stirs", "waves"):
            words.fill(quick)
            words.press("Enter")
        expect(page.get_by_role("button", name="Thumbnail 1 of 1")).to_be_visible(timeout=10_000)
        expect(page.locator("#history-gallery")).to_contain_text("waves")
        words.fill("")
        words.press("Enter")
        page.get_by_role("button", name="Thumbnail 1 of 2").click()
        page.get_by_role("button", name=re.compile("★ Kept")).click()  # unkept again, for the other tests
        expect(page.get_by_role("button", name="☆ Keep this take")).to_be_visible(timeout=10_000)
    finally:
        context.close()


def make_a_take(page: Page, prompt: str) -> None:
    fill_in(page, prompt)
    page.get_by_role("button", name="Generate", exact=True).click()
    # The last take's video leaves the player as the run starts, and this one's arrives.
    expect(page.locator("#result-video video")).to_have_count(0, timeout=10_000)
    expect(page.locator("#result-video video")).to_have_count(1, timeout=60_000)


def share_newest(page: Page) -> str:
    open_history(page)
    page.get_by_role("button", name=re.compile("Thumbnail 1 of")).click()
    page.get_by_role("button", name="Share this take").click()
    link = page.locator("#share-link textarea, #share-link input")
    expect(link).to_have_value(re.compile(r"\?take="), timeout=10_000)
    return link.input_value()


def test_a_shared_link_shows_only_that_take_to_a_stranger_and_dies_when_withdrawn_or_sharing_is_off(browser, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "data"
    env = dict(SKYREELS_SHARED="1", SKYREELS_PREVIEW_TIMING=TIMING, **STOCK)
    secret = "A secret take the sharer never shares: a man juggles oranges"
    shared_prompt = "A woman smiles at the camera, shared with a friend"
    app = LaunchedApp(data, tmp_path / "app.log", **env)
    sharer = browser.new_context(viewport={"width": 1366, "height": 1000})
    try:
        page = sharer.new_page()
        page.goto(app.url)
        make_a_take(page, secret)
        make_a_take(page, shared_prompt)
        link = share_newest(page)
        token = link.split("?take=")[1]
        assert link.startswith(app.url.rstrip("/") + "/?take=") and re.fullmatch(r"[A-Za-z0-9_-]{22}", token)
        task_ids = {run_id for run_id in re.findall(r"[0-9a-f]{32}", page.content())}
        assert not any(run_id in token for run_id in task_ids)

        # A stranger, in a fresh browser, on a phone.
        stranger = browser.new_context(viewport=PHONE)
        view = stranger.new_page()
        view.goto(link)
        shared = view.locator("#shared-view")
        expect(shared).to_contain_text(shared_prompt, timeout=15_000)
        expect(shared).to_contain_text("Seed")
        view.wait_for_function(
            "() => { const v = document.querySelector('#shared-view video'); return v && v.readyState >= 2; }",
            timeout=15_000,
        )
        view.wait_for_function(  # a second of the take playing, for the picture (or its first frame, if it waits)
            "() => { const v = document.querySelector('#shared-view video'); return v.currentTime >= 1 || v.paused; }",
            timeout=15_000,
        )
        view.screenshot(path=str(SHOTS / "shared-take-phone.png"))  # what a friend sees first
        expect(view.locator("#shared-view textarea, #shared-view input")).to_have_count(0)  # text, not an editable box
        html = view.content()
        assert secret not in html and "juggles" not in html
        assert str(data) not in html and "test-key" not in html
        view.get_by_role("tab", name="History").click()
        expect(view.locator("#history-gallery")).not_to_contain_text("juggles")
        view.get_by_role("tab", name="Create").click()
        view.screenshot(path=str(SHOTS / "shared-take-phone-full.png"), full_page=True)
        # "Make one like it": Create holds that prompt and seed, for the stranger's own run.
        view.get_by_role("button", name="Make one like it").click()
        expect(view.get_by_label("Prompt", exact=True)).to_have_value(shared_prompt, timeout=10_000)
        shared_seed = requests.get(f"{app.url}takes/{token}", timeout=10).json()["seed"]
        expect(view.get_by_label("Seed (-1 = random)")).to_have_value(str(shared_seed))
        expect(view.get_by_text("Upload size")).to_be_visible(timeout=15_000)  # the picture too
        stranger.close()

        api = requests.get(f"{app.url}takes/{token}", timeout=10)
        assert api.status_code == 200 and api.json()["prompt"] == shared_prompt
        assert str(data) not in api.text
        assert requests.get(f"{app.url}takes/{token}/video.mp4", timeout=10).content[4:8] == b"ftyp"
        for wrong in ("not-a-token", token[:-1] + ("A" if token[-1] != "A" else "B"), "x" * 22):
            assert requests.get(f"{app.url}takes/{wrong}", timeout=10).status_code == 404
            assert requests.get(f"{app.url}takes/{wrong}/video.mp4", timeout=10).status_code == 404

        # Withdrawn: the link shows that the take is not shared, and the API answers 404.
        page.get_by_role("button", name="Withdraw the link").click()
        expect(page.locator("#take-note")).to_contain_text("The link is withdrawn", timeout=10_000)
        expect(page.locator("#share-link textarea, #share-link input")).to_have_count(0)  # no dead link to copy
        assert requests.get(f"{app.url}takes/{token}", timeout=10).status_code == 404
        dead = browser.new_context(viewport=PHONE)
        gone = dead.new_page()
        gone.goto(link)
        expect(gone.locator("#shared-view")).to_contain_text("not shared", timeout=15_000)
        expect(gone.locator("#shared-view video")).to_have_count(0)
        assert shared_prompt not in gone.content()
        gone.goto(app.url + "?take=%3Cscript%3Ealert(1)%3C/script%3E")
        expect(gone.locator("#shared-view")).to_contain_text("not shared", timeout=15_000)
        dead.close()
        live_again = share_newest(page)  # a new link of its own; the old one stays dead
        assert live_again != link
        assert requests.get(f"{app.url}takes/{token}", timeout=10).status_code == 404
    finally:
        sharer.close()
        app.stop()

    # Sharing off: the live link shows the take is not shared, and the API answers 404.
    new_token = live_again.split("?take=")[1]
    off = LaunchedApp(data, tmp_path / "app-off.log", SKYREELS_SHARING="0", **env)
    try:
        assert requests.get(f"{off.url}takes/{new_token}", timeout=10).status_code == 404
        context = browser.new_context(viewport=PHONE)
        view = context.new_page()
        view.goto(f"{off.url}?take={new_token}")
        expect(view.locator("#shared-view")).to_contain_text("Sharing is turned off", timeout=15_000)
        assert shared_prompt not in view.content()
        context.close()
    finally:
        off.stop()
    # Links survive a restart: sharing on again, the same link works.
    on = LaunchedApp(data, tmp_path / "app-on.log", **env)
    try:
        assert requests.get(f"{on.url}takes/{new_token}", timeout=10).json()["prompt"] == shared_prompt
    finally:
        on.stop()


def test_a_downloaded_take_made_again_from_its_zip_fills_create(browser, two_takes_app, tmp_path):
    context = browser.new_context(viewport={"width": 1366, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(two_takes_app.url)
        open_history(page)
        page.get_by_role("button", name="Thumbnail 2 of 2").click()  # the older: seed 7
        # One click downloads it (the button waits for the pick to land), and its link stays.
        with page.expect_download() as download:
            page.get_by_role("button", name="Download this take").click()
        expect(page.locator("a[href*='skyreels-take-']")).to_be_visible(timeout=15_000)
        zip_path = tmp_path / download.value.suggested_filename
        download.value.save_as(zip_path)
        assert zip_path.name.startswith("skyreels-take-") and zip_path.suffix == ".zip"
        page.get_by_role("button", name=re.compile("Make it again from a downloaded take")).click()
        page.locator("input[type=file][accept*='.zip']").set_input_files(str(zip_path))
        page.get_by_role("button", name="Make it again", exact=True).click()
        expect(page.get_by_label("Prompt", exact=True)).to_have_value(FIRST, timeout=15_000)
        expect(page.get_by_label("Seed (-1 = random)")).to_have_value("7")
        expect(page.get_by_text("Upload size")).to_be_visible(timeout=15_000)  # its picture, prepared
    finally:
        context.close()


def test_variations_open_in_the_compare_view(browser, two_takes_app):
    context = browser.new_context(viewport={"width": 1366, "height": 1000})
    page = context.new_page()
    try:
        page.goto(two_takes_app.url)
        page.get_by_role("button", name="Generate", exact=True).wait_for()
        fill_in(page, "A woman smiles, three ways")
        page.get_by_text("Several seeds at once").click()
        page.get_by_role("button", name="Make variations").click()
        expect(page.locator("#variations-status")).to_contain_text("✓ 3", timeout=60_000)
        page.get_by_role("button", name="Compare these side by side").click()
        expect(page.get_by_role("tab", name="History")).to_have_attribute("aria-selected", "true", timeout=10_000)
        expect(page.locator("#compare video")).to_have_count(3, timeout=10_000)
        expect(page.locator("#compare")).to_contain_text("The prompt is the same in every take.")
    finally:
        context.close()
