"""A share link's card, as a chat or a social site reads it: the launched app's page at the link's
address carries the take's prompt as its title, the app's name and a line as its description,
the take's first frame (served, and a picture of the take) and the link's own address; once the
link is withdrawn, or for the app itself, the app's card and not a word of the take."""

from __future__ import annotations

import io
from html.parser import HTMLParser
from pathlib import Path

import av
import numpy as np
import pytest
import requests
from gradio_client import Client, handle_file
from PIL import Image

from skyreels_demo.studio import takes

from .conftest import CHELSEA, LaunchedApp, open_store

PROMPT = 'A tabby cat blinks at "the camera" & looks <away>'


class Tags(HTMLParser):
    """Every <meta> in a page's head, and its <title>s."""

    def __init__(self) -> None:
        super().__init__()
        self.meta: list[tuple[str, str]] = []
        self.titles: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "meta" and "content" in values and ("property" in values or "name" in values):
            self.meta.append((values.get("property") or values.get("name"), values["content"]))
        self._in_title = tag == "title"

    def handle_data(self, data):
        if self._in_title:
            self.titles.append(data)

    def handle_endtag(self, tag):
        self._in_title = False


def card_of(url: str) -> dict[str, list[str]]:
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert len(answer.content) == int(answer.headers["content-length"])
    head = answer.text.split("</head>", 1)[0]
    parser = Tags()
    parser.feed(head)
    card: dict[str, list[str]] = {}
    for key, value in parser.meta:
        card.setdefault(key, []).append(value)
    card["<title>"] = parser.titles
    # Gradio's own card is gone, every tag of it.
    assert not any("Click to try out the app" in v or v in ("Gradio", "{url}") for vs in card.values() for v in vs), card
    assert all(len(values) == 1 for key, values in card.items() if key.startswith(("og:", "twitter:"))), card
    # Early in the page: a crawler that reads only its start still finds it.
    assert answer.text.index('property="og:title"') < 4000
    return {key: values for key, values in card.items()}


def first_frame(video: Path) -> np.ndarray:
    with av.open(str(video)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24").astype(np.int16)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    data = tmp_path_factory.mktemp("card") / "data"
    with LaunchedApp(data, SKYREELS_PREVIEW_TIMING="0.2,0.4") as app:
        Client(app.url, verbose=False).predict(PROMPT, handle_file(CHELSEA), 7, api_name="/generate")
        store = open_store(data)
        [run] = [r for r in store.recent() if r.status == "done"]
        yield app, store, run, takes.share(store, run)


def test_a_share_links_card_is_the_takes_prompt_its_first_frame_and_its_own_address(shared):
    app, store, run, token = shared
    base = app.url.rstrip("/")
    link = f"{base}/?take={token}"
    card = card_of(link)

    assert card["og:title"] == [PROMPT] and card["twitter:title"] == [PROMPT] and card["<title>"] == [PROMPT]
    [description] = card["og:description"]
    assert description.startswith("SkyReels V1 Studio · ") and "seed 7" in description
    assert "offline preview" in description  # said plainly: no key made it, so it is not SkyReels output
    assert card["og:url"] == [link]
    assert card["og:image"] == [f"{base}/takes/{token}/poster.jpg"] == card["twitter:image"]
    assert card["twitter:card"] == ["summary_large_image"] and card["og:type"] == ["video.other"]
    assert card["og:video"] == [f"{base}/takes/{token}/video.mp4"]
    assert (card["og:image:width"], card["og:image:height"]) == (["960"], ["544"])

    # The picture is served, and it is the take's first frame.
    poster = requests.get(card["og:image"][0], timeout=30)
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"
    picture = np.asarray(Image.open(io.BytesIO(poster.content)).convert("RGB"), dtype=np.int16)
    assert picture.shape == (544, 960, 3)
    assert np.abs(picture - first_frame(Path(run.video_path))).mean() < 3
    # And the video the card names plays from the link's own server.
    assert requests.get(card["og:video"][0], timeout=30).headers["content-type"] == "video/mp4"


def test_the_apps_own_card_and_a_withdrawn_links_card_say_nothing_of_the_take(shared):
    app, store, run, token = shared
    base = app.url.rstrip("/")
    for url in (app.url, f"{base}/?take={'x' * 22}", f"{base}/?take=%3Cscript%3E"):
        card = card_of(url)
        assert card["og:title"] == ["SkyReels V1 Studio"] and card["og:url"] == [f"{base}/"]
        assert "still picture and a prompt" in card["og:description"][0]
        assert "og:image" not in card
    store.withdraw_shares(run.id)
    try:
        card = card_of(f"{base}/?take={token}")
        assert card["og:title"] == ["SkyReels V1 Studio"]
        assert not any("tabby" in value for values in card.values() for value in values)
        assert requests.get(f"{base}/takes/{token}/poster.jpg", timeout=30).status_code == 404
    finally:
        takes.share(store, run)  # a new link for whatever runs after


@pytest.mark.browser
def test_the_page_at_a_share_link_still_shows_the_take_with_its_card(shared, browser):
    from playwright.sync_api import expect

    from .conftest import ROOT

    app, store, run, _ = shared
    token = store.live_share(run.id)
    shots = ROOT / "tests" / "screenshots"  # git-ignored: for a person to look at
    shots.mkdir(exist_ok=True)
    for name, viewport in (("desktop", {"width": 1366, "height": 768}), ("phone", {"width": 390, "height": 844})):
        page = browser.new_page(viewport=viewport)
        page.goto(f"{app.url}?take={token}")
        expect(page.locator(".shared-prompt")).to_have_text(PROMPT, timeout=30_000)
        assert page.locator('meta[property="og:title"]').get_attribute("content") == PROMPT
        page.locator(".shared-take video").evaluate("v => { v.pause(); v.currentTime = 0; }")
        page.screenshot(path=str(shots / f"shared-take-{name}.png"))
        page.close()
