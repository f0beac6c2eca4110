"""A visitor's polish, in a real Chromium at a laptop's and a phone's size against `python app.py`:
every button pressed too early or with nothing chosen answers with a sentence beside it (never a
red "Error" over an input, a server error or a word only the terminal hears); a pick lands before
Share, Download or Withdraw act on it; what a click filled or opened is brought into view; the
cut film is seen and plays; a take is told in a person's words.

Screenshots land in tests/screenshots/ (git-ignored), to be looked at.
"""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import Page, expect

from skyreels_demo.studio import takes
from skyreels_demo.models import SKYREELS_V1

from .conftest import ASTRONAUT, ROOT, LaunchedApp, clean_env, fill_in, run_cli, wait_for, write_storyboard
from .test_pleasant import serious_violations

pytestmark = pytest.mark.browser

SHOTS = ROOT / "tests" / "screenshots"
SIZES = {"desktop": (1366, 768), "phone": (390, 844)}
TIMING = "0.1,0.3"
FIRST = "A woman smiles at the camera as the flag stirs"
SECOND = "A woman slowly smiles and waves at the camera as the flag stirs"
TASK_ID = re.compile(r"\b[0-9a-f]{32}\b")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """An app whose History holds two takes of one picture (made by the command line, each the
    stock clip: nothing here looks inside them; the app's own runs are rendered)."""
    data = tmp_path_factory.mktemp("polish") / "data"
    env = clean_env(SKYREELS_DATA_DIR=str(data), SKYREELS_PREVIEW_TIMING=TIMING, SKYREELS_PREVIEW_RENDERS="0")
    for prompt, seed in ((FIRST, "7"), (SECOND, "8")):
        made = run_cli("generate", "--prompt", prompt, "--image", ASTRONAUT, "--seed", seed, env=env)
        assert made.returncode == 0, made.stderr
    with LaunchedApp(data, SKYREELS_PREVIEW_TIMING=TIMING) as launched:
        yield launched


class Visit:
    """One visitor at one size, and every server error their page met."""

    def __init__(self, browser, url: str, size: str, **options) -> None:
        width, height = SIZES[size]
        self.size = size
        self.context = browser.new_context(
            viewport={"width": width, "height": height}, is_mobile=size == "phone", has_touch=size == "phone", **options
        )
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.server_errors: list[str] = []
        self.page.on("response", lambda answer: answer.status >= 500 and self.server_errors.append(f"{answer.status} {answer.url}"))
        self.downloads: list = []
        self.page.on("download", lambda download: self.downloads.append(download))
        self.open(url)

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.get_by_role("button", name="Generate", exact=True).wait_for()

    def shot(self, name: str, **options) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"polish-{self.size}-{name}.png"), **options)

    def close(self) -> None:
        self.context.close()


@pytest.fixture(params=list(SIZES))
def size(request) -> str:
    return request.param


def no_error_shown(page: Page) -> None:
    """Nothing red over an input ("Error" on a component) and no pop-up."""
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)
    expect(page.locator("[data-testid='toast-body'], .toast-body")).to_have_count(0)


def in_view(page: Page, selector: str, *, whole: bool = False) -> bool:
    box = page.locator(selector).first.bounding_box()
    if box is None:
        return False
    height = page.viewport_size["height"]
    bottom = box["y"] + (box["height"] if whole else min(box["height"], 60))
    return box["y"] >= -1 and bottom <= height + 1


def open_history(page: Page) -> None:
    page.get_by_role("tab", name="History").click()
    expect(page.get_by_role("button", name=re.compile(r"Thumbnail 2 of \d+"))).to_be_visible(timeout=15_000)


def log_of(app: LaunchedApp) -> str:
    return app.log_path.read_text(errors="replace")


# --- pressed too early, or with nothing chosen ---------------------------------------------------


HISTORY_BUTTONS = (
    "Share this take", "Withdraw the link", "Download this take", "Use these settings",
    "☆ Keep this take", "Run again with a new seed", "Continue this shot",
)


def test_every_button_pressed_too_early_says_what_to_do_first_beside_it(app, browser, size):
    visit = Visit(browser, app.url, size)
    page = visit.page
    try:
        # Create: "Continue this shot" before there is any video.
        page.get_by_role("button", name="Continue this shot").click()
        note = page.locator("#continue-note")
        expect(note).to_contain_text("Make a video first: the next shot starts from its last frame.")
        no_error_shown(page)
        wait_for(lambda: in_view(page, "#continue-note"), timeout=5)
        expect(page.get_by_label("Prompt", exact=True)).to_have_value("")  # the inputs as they were
        expect(page.locator("#input-image img")).to_have_count(0)
        visit.shot("continue-too-early")
        assert serious_violations(page) == [], "Create, a note beside Continue"

        # History, nothing picked: each of the picked take's buttons says so in the note below
        # them, naming itself (so each sentence is that button's own, not the last one's).
        open_history(page)
        for name in HISTORY_BUTTONS:
            page.get_by_role("button", name=name, exact=True).click()
            expect(page.locator("#take-note")).to_contain_text(
                f"Pick a take first: click one of the pictures in your runs, then press “{name}” again."
            )
            no_error_shown(page)
            wait_for(lambda: in_view(page, "#take-note"), timeout=5)
            expect(page.get_by_role("tab", name="History")).to_have_attribute("aria-selected", "true")
            assert (page.locator("#status").text_content() or "").strip().startswith("Add an image"), name  # no run
            expect(page.get_by_label("Prompt", exact=True)).to_have_value("")  # Create left alone
        visit.shot("history-nothing-picked", full_page=True)
        assert serious_violations(page) == [], "History, a note under the take's buttons"

        # Compare with nothing ticked, then with one: a sentence where the comparison would be, in view.
        compare = page.locator("#compare")
        page.get_by_role("button", name="Compare", exact=True).click()
        expect(compare).to_contain_text("Tick 2 to 4 takes under “Compare…”, then press Compare: no take is ticked.")
        page.locator("label", has_text="seed 7 · A woman smiles").click()
        page.get_by_role("button", name="Compare", exact=True).click()
        expect(compare).to_contain_text("one take is ticked")
        no_error_shown(page)
        wait_for(lambda: in_view(page, "#compare"), timeout=5)
        visit.shot("compare-one-ticked")
        assert serious_violations(page) == [], "History, one take ticked to compare"
        assert visit.downloads == [] and visit.server_errors == []
        assert "Traceback" not in log_of(app)
    finally:
        visit.close()


# --- a quick visitor ---------------------------------------------------------------------------


def shared_prompt(app: LaunchedApp, link: str) -> str:
    return requests.get(f"{app.url}takes/{link.split('?take=')[1]}", timeout=10).json()["prompt"]


def test_share_download_and_withdraw_wait_for_the_pick_to_land(app, browser, tmp_path):
    visit = Visit(browser, app.url, "desktop", accept_downloads=True)
    page = visit.page
    link_box = page.locator("#share-link textarea, #share-link input")
    try:
        open_history(page)
        # Picked and shared at once, as fast as a script clicks: the take just picked is shared.
        page.get_by_role("button", name=re.compile(r"Thumbnail 2 of \d+")).click()
        page.get_by_role("button", name="Share this take").click()
        expect(link_box).to_have_value(re.compile(r"\?take="))
        link = link_box.input_value()
        assert shared_prompt(app, link) == FIRST
        expect(page.locator("#take-note")).to_contain_text("Anyone with this link can watch this take")

        # Another take picked and withdrawn at once: that take's (none), never the one before.
        page.get_by_role("button", name=re.compile(r"Thumbnail 1 of \d+")).click()
        page.get_by_role("button", name="Withdraw the link").click()
        expect(page.locator("#take-note")).to_contain_text("This take has no link to withdraw")
        assert requests.get(f"{app.url}takes/{link.split('?take=')[1]}", timeout=10).status_code == 200
        page.get_by_role("button", name=re.compile(r"Thumbnail 2 of \d+")).click()
        page.get_by_role("button", name="Withdraw the link").click()
        expect(page.locator("#take-note")).to_contain_text("The link is withdrawn")
        expect(link_box).to_have_count(0)  # no empty link box left to copy from
        assert requests.get(f"{app.url}takes/{link.split('?take=')[1]}", timeout=10).status_code == 404

        # Picked and downloaded at once: one click downloads the zip of the take just picked.
        page.get_by_role("button", name=re.compile(r"Thumbnail 1 of \d+")).click()
        with page.expect_download() as download:
            page.get_by_role("button", name="Download this take").click()
        zip_path = tmp_path / download.value.suggested_filename
        download.value.save_as(zip_path)
        assert takes.read_take(zip_path, SKYREELS_V1).prompt == SECOND

        # Keep leaves the takes ticked to compare as they were.
        for label in ("seed 7 · A woman smiles", "seed 8 · A woman slowly"):
            page.locator("#compare-row label", has_text=label).click()
        page.get_by_role("button", name="☆ Keep this take").click()
        expect(page.get_by_role("button", name=re.compile("★ Kept"))).to_be_visible()
        expect(page.locator("#take-note")).to_contain_text("★ Kept:")
        expect(page.locator("#compare-row input:checked")).to_have_count(2)
        page.get_by_role("button", name=re.compile("★ Kept")).click()  # unkept, for the other tests
        expect(page.get_by_role("button", name="☆ Keep this take")).to_be_visible()
        expect(page.locator("#compare-row input:checked")).to_have_count(2)
        assert visit.server_errors == []
    finally:
        visit.close()


# --- what a click filled or opened, in view ----------------------------------------------------


def form_in_view(page: Page) -> bool:
    return in_view(page, "#input-image") and in_view(page, "#prompt textarea")


def test_make_one_like_it_make_it_again_and_compare_bring_what_they_filled_into_view(app, browser, size, tmp_path):
    sharer = Visit(browser, app.url, "desktop", accept_downloads=True)
    try:
        open_history(sharer.page)
        sharer.page.get_by_role("button", name=re.compile(r"Thumbnail 1 of \d+")).click()
        sharer.page.get_by_role("button", name="Share this take").click()
        link_box = sharer.page.locator("#share-link textarea, #share-link input")
        expect(link_box).to_have_value(re.compile(r"\?take="))
        link = link_box.input_value()
    finally:
        sharer.close()

    visit = Visit(browser, link, size, accept_downloads=True)
    page = visit.page
    try:
        expect(page.locator("#shared-view")).to_contain_text(SECOND, timeout=15_000)
        like_it = page.get_by_role("button", name="Make one like it")
        like_it.scroll_into_view_if_needed()
        like_it.click()
        expect(page.get_by_label("Prompt", exact=True)).to_have_value(SECOND)
        wait_for(lambda: form_in_view(page), timeout=5)
        expect(page.locator("#status")).to_contain_text("Create holds the shared take")
        expect(page.get_by_text("Upload size")).to_be_visible(timeout=15_000)  # its picture, prepared
        no_error_shown(page)
        visit.shot("make-one-like-it")
        assert serious_violations(page) == [], "Create, filled from a shared take"

        # History's "Use these settings": Create filled, in view, and the status says what next.
        page.get_by_label("Prompt", exact=True).fill("")
        open_history(page)
        page.get_by_role("button", name=re.compile(r"Thumbnail 2 of \d+")).click()
        page.get_by_role("button", name="Use these settings").click()
        expect(page.get_by_label("Prompt", exact=True)).to_have_value(FIRST)
        wait_for(lambda: form_in_view(page), timeout=5)
        expect(page.locator("#status")).to_contain_text("Create holds the take's prompt, picture and seed")

        # A take made again from its zip: Create filled and in view, not the view left on the examples.
        # (Create is emptied while it is on screen, before History's download.)
        page.get_by_label("Prompt", exact=True).fill("")
        open_history(page)
        page.get_by_role("button", name=re.compile(r"Thumbnail 2 of \d+")).click()
        with page.expect_download() as download:
            page.get_by_role("button", name="Download this take").click()
        zip_path = tmp_path / download.value.suggested_filename
        download.value.save_as(zip_path)
        opener = page.get_by_role("button", name=re.compile("Make it again from a downloaded take"))
        opener.scroll_into_view_if_needed()
        opener.click()
        page.locator("input[type=file][accept*='.zip']").set_input_files(str(zip_path))
        page.get_by_role("button", name="Make it again", exact=True).click()
        expect(page.get_by_label("Prompt", exact=True)).to_have_value(FIRST)
        wait_for(lambda: form_in_view(page), timeout=5)
        expect(page.locator("#status")).to_contain_text("Create holds the take again")
        visit.shot("made-again-from-zip")

        # Compare: the comparison in view, not a screen or two below.
        open_history(page)
        for label in ("seed 7 · A woman smiles", "seed 8 · A woman slowly"):
            page.locator("#compare-row label", has_text=label).click()
        page.get_by_role("button", name="Compare", exact=True).click()
        expect(page.locator("#compare video")).to_have_count(2)
        wait_for(lambda: in_view(page, "#compare"), timeout=5)
        visit.shot("compare-in-view")
        no_error_shown(page)
        assert visit.server_errors == []
    finally:
        visit.close()


# --- the film ----------------------------------------------------------------------------------


def test_the_film_is_in_view_and_plays_once_it_is_cut(app, browser, size):
    # The phone's visitor has not asked for less motion (the film plays by itself); the desktop's
    # has, as the suite's visitors do (the film waits on its first frame until they press play).
    still = size == "desktop"
    visit = Visit(browser, app.url, size, reduced_motion="reduce" if still else "no-preference")
    page = visit.page
    try:
        page.get_by_role("tab", name="Film").click()
        make = page.get_by_role("button", name="Make the film")
        expect(make).to_be_visible()
        box = make.bounding_box()
        assert box["y"] + box["height"] <= page.viewport_size["height"], box  # on the first screen
        # No shot hides in a closed box: a third appears as the second is written.
        expect(page.get_by_label("Shot 3", exact=True)).to_be_hidden()
        write_storyboard(page)
        expect(page.get_by_label("Shot 3", exact=True)).to_be_visible()
        expect(page.get_by_label("Shot 4", exact=True)).to_be_hidden()
        visit.shot("film-storyboard")
        make.click()
        status = page.locator("#film-status")
        expect(status).to_contain_text("Your film · 2 shots")
        film = page.locator("#film-video video")
        film.wait_for(timeout=120_000)
        expect(status).to_contain_text("The film is cut")
        assert "film-" not in status.inner_text()  # shots, not the record's id
        wait_for(lambda: in_view(page, "#film-video video", whole=True), timeout=10)
        if still:
            wait_for(lambda: film.evaluate("v => v.readyState >= 2"), timeout=15)
            assert film.evaluate("v => [v.paused, v.currentTime < 0.1]") == [True, True]
            # A play nobody asked for, heard late (the page busy for 0.4 s after it began, as a
            # loaded machine's is): the film is back on its first frame, not paused mid-shot.
            heard_late = film.evaluate("""v => new Promise((done) => {
                v.play().catch(() => {});
                const until = performance.now() + 400;
                while (performance.now() < until) {}
                setTimeout(() => done([v.paused, v.currentTime]), 200);
            })""")
            assert heard_late == [True, 0], heard_late
            page.locator("#film-video [aria-label=play-pause-replay-button]").click()
        wait_for(lambda: film.evaluate("v => !v.paused && v.currentTime > 0.3"), timeout=15)
        visit.shot("film-cut")
        assert serious_violations(page) == [], "Film, cut and playing"
        assert visit.server_errors == []
    finally:
        visit.close()


# --- a take in a person's words ----------------------------------------------------------------


def test_a_take_is_told_in_a_persons_words_with_the_details_behind_a_disclosure(app, browser, size):
    visit = Visit(browser, app.url, size)
    page = visit.page
    try:
        fill_in(page, "A woman waves at the camera")
        page.get_by_label("Seed (-1 = random)").fill("7")
        page.get_by_role("button", name="Generate", exact=True).click()
        expect(page.locator("#result-video video")).to_have_count(1, timeout=60_000)
        status = page.locator("#status").inner_text()
        assert "Submitted with seed 7" in status and not TASK_ID.search(status), status
        summary = page.locator("#summary")
        expect(summary).to_contain_text("Seed 7")
        assert not TASK_ID.search(summary.inner_text())  # behind "Details", closed
        summary.get_by_text("Details").click()
        expect(summary).to_contain_text(TASK_ID)
        visit.shot("summary-details")

        # Continued: the next shot starts from the last frame, clean of the preview's mark.
        page.get_by_role("button", name="Continue this shot").click()
        expect(page.locator("#prompt textarea")).to_have_attribute("placeholder", re.compile("What happens next"))
        expect(page.get_by_text("Upload size")).to_be_visible(timeout=15_000)
        wait_for(lambda: in_view(page, "#prompt textarea"), timeout=5)
        expect(page.locator("#continue-note")).to_be_hidden()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("#input-image").screenshot(path=str(SHOTS / f"polish-{size}-continued-frame.png"))

        # Variations: each line says its seed once; picking one says "picked", not "kept".
        page.get_by_label("Prompt", exact=True).fill("A woman waves at the camera, then turns")
        page.get_by_text("Several seeds at once").click()
        page.get_by_label("Seed (-1 = random)").fill("500")
        page.get_by_role("button", name="Make variations").click()
        lines = page.locator("#variations-status p")
        expect(page.locator("#variations-status")).to_contain_text("✓ 3", timeout=60_000)
        for line in lines.all_inner_texts():
            assert len(re.findall(r"seed \d+", line, flags=re.I)) == 1, line
        page.get_by_role("button", name=re.compile("Thumbnail 2 of 3")).click()
        expect(page.locator("#summary")).to_contain_text("Picked: Seed 501 (variation 2), now in the player.")
        assert "Kept" not in page.locator("#summary").inner_text()
        visit.shot("variation-picked")

        # History: captions and details as a person wrote and wants them; the rest behind Details.
        page.get_by_role("tab", name="History").click()
        captions = page.locator("#history-gallery .caption-label")
        expect(captions.first).to_be_visible(timeout=15_000)
        for caption in captions.all_inner_texts():
            assert not caption.lower().startswith("done") and "FPS-24" not in caption, caption
            assert re.search(r" · seed \d+ · (\d{1,2} \w{3} )?\d\d:\d\d", caption), caption
        page.get_by_role("button", name=re.compile(r"Thumbnail \d+ of \d+")).filter(has_text="seed 7 · ").first.click()
        details = page.locator("#take-details")
        expect(details).to_contain_text("A woman waves at the camera")
        shown = details.inner_text()
        assert "FPS-24" not in shown and "→" not in shown and not TASK_ID.search(shown), shown
        details.get_by_text("Details").click()
        expect(details).to_contain_text("Sent to the model as: FPS-24, A woman waves at the camera")
        expect(details).to_contain_text("→")
        visit.shot("history-details", full_page=True)
        assert serious_violations(page) == [], "History, a take's details opened"
        assert visit.server_errors == []
    finally:
        visit.close()


def test_examples_start_on_the_first_screen_and_no_label_is_cut(app, browser, size):
    visit = Visit(browser, app.url, size)
    page = visit.page
    try:
        label = page.get_by_text("Examples (click one, then Generate)")
        assert label.bounding_box()["y"] + 10 < page.viewport_size["height"], label.bounding_box()
        # "Randomize seed" whole beside the seed; "Kept takes only ★" on one line.
        box = page.locator("#randomize-seed label").first
        assert box.evaluate("e => e.scrollWidth <= e.clientWidth + 1 && e.getBoundingClientRect().right <= window.innerWidth")
        visit.shot("create-first-screen")
        page.get_by_role("tab", name="History").click()
        kept = page.locator("#kept-only label").first
        expect(kept).to_be_visible()
        assert kept.bounding_box()["height"] < 40, kept.bounding_box()
        compare = page.get_by_role("button", name="Compare", exact=True).bounding_box()
        assert compare["width"] < 160 and compare["height"] < 50, compare  # a button, not a slab
        visit.shot("history-first-screen")
    finally:
        visit.close()
