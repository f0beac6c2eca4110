"""A shared app in a real browser, as visitors come back to it: after restarts, after crashes,
with History opened again and again, and with pictures built to exhaust memory."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from playwright.sync_api import Page, expect

from skyreels_demo.local_api import LocalBackend, TaskTiming

from .conftest import LaunchedApp, fill_in, free_port, open_store, wait_for

VISITOR_KEY = "wsk-visitor-own-key-for-history"

pytestmark = pytest.mark.browser


def files_under(*folders: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file()}


def open_history(page: Page) -> None:
    page.get_by_role("tab", name="History").click()
    expect(page.locator("#history-gallery")).to_be_visible(timeout=10_000)


def make_a_video(page: Page, prompt: str) -> None:
    fill_in(page, prompt)
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#result-video video")).to_have_count(1, timeout=60_000)


def test_history_survives_a_restart_and_rendering_it_grows_no_files(browser, tmp_path):
    data, cache, port = tmp_path / "data", tmp_path / "gradio-cache", free_port()
    env = dict(SKYREELS_SHARED="1", SKYREELS_PREVIEW_TIMING="0.2,0.6", GRADIO_TEMP_DIR=str(cache))
    app = LaunchedApp(data, tmp_path / "app.log", port=port, **env)
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        page.goto(app.url)
        make_a_video(page, "A woman smiles at the camera")
        open_history(page)
        expect(page.locator("#history-gallery")).to_contain_text("A woman smiles", timeout=10_000)
        before = files_under(data, cache)
        for _ in range(20):
            page.get_by_role("button", name="Refresh").click()
            page.wait_for_timeout(150)
        expect(page.locator("#history-gallery")).to_contain_text("A woman smiles")
        after = files_under(data, cache)
        grown = {path: size for path, size in after.items() if path not in before}
        assert not grown, grown  # no copy per render: the video is served from where it is kept
    finally:
        app.stop()

    again = LaunchedApp(data, tmp_path / "app-again.log", port=port, **env)
    try:
        page.reload()
        open_history(page)
        # The same browser reads its History id again: the app kept the secret that encrypts it.
        expect(page.locator("#history-gallery")).to_contain_text("A woman smiles", timeout=15_000)
    finally:
        context.close()
        again.stop()


def test_an_own_key_run_cut_off_by_a_crash_is_finished_from_history(browser, tmp_path):
    data, port = tmp_path / "data", free_port()
    with LocalBackend(api_key=VISITOR_KEY, timing=TaskTiming(0.3, 4.0)) as api:
        env = dict(SKYREELS_SHARED="1", WAVESPEED_BASE_URL=api.base_url)
        app = LaunchedApp(data, tmp_path / "app.log", port=port, **env)
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        page = context.new_page()
        try:
            page.goto(app.url)
            fill_in(page, "A man waves from a boat")
            page.get_by_role("button", name=re.compile("^Your own WaveSpeed key")).click()
            page.get_by_label("WaveSpeed API key").fill(VISITOR_KEY)
            page.get_by_role("button", name="Generate").click()
            expect(page.locator("#status")).to_contain_text("Making the video", timeout=30_000)
        finally:
            app.kill()  # the key was only ever in that process's memory

        again = LaunchedApp(data, tmp_path / "app-again.log", port=port, **env)
        try:
            store = open_store(data)
            cut_off = [r for r in store.recent() if r.prompt.endswith("boat")][0]
            assert cut_off.is_unfinished_task and cut_off.key_source == "visitor"
            # The visitor comes back in the same browser (its storage, so its History id). The
            # old tab may have been torn down while its server was gone: then a new one.
            try:
                page.reload()
            except Exception:
                page = context.new_page()
                page.goto(again.url)
            open_history(page)
            page.get_by_role("button", name="Thumbnail 1 of 1").click()
            key_box = page.get_by_label("This run was made with your own key")
            expect(key_box).to_be_visible(timeout=10_000)
            key_box.fill(VISITOR_KEY)
            page.get_by_role("button", name="Finish this run").click()
            wait_for(lambda: store.get(cut_off.id).status == "done", timeout=60)
            assert api.tasks_created == 1  # finished, not made again
            expect(key_box).to_have_value("", timeout=10_000)
        finally:
            context.close()
            again.stop()
        for path in data.rglob("*"):
            if path.is_file():
                assert VISITOR_KEY.encode() not in path.read_bytes(), path
        assert VISITOR_KEY not in (tmp_path / "app-again.log").read_text()


def test_memory_bombs_in_tabs_and_api_calls_at_once_stay_within_bounds(browser, tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("I;16", (10_000, 8_000), 1200).save(bomb, optimize=True)  # 80 MP of 16-bit grey
    assert bomb.stat().st_size < 1_000_000
    app = LaunchedApp(tmp_path / "data", tmp_path / "app.log", SKYREELS_SHARED="1", SKYREELS_PREVIEW_TIMING="0.2,0.6")
    try:
        # Warm up: one ordinary picture through the same paths, so the baseline is a working app.
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(app.url)
        fill_in(page, "warm-up")
        baseline = app.peak_memory_kb()

        errors: list[str] = []

        def api_call() -> None:
            try:
                Client(app.url, verbose=False).predict("a bomb", handle_file(str(bomb)), 1, api_name="/generate")
            except AppError as exc:
                errors.append(str(exc))

        calls = [threading.Thread(target=api_call) for _ in range(3)]
        tabs = [browser.new_page(viewport={"width": 1366, "height": 768}) for _ in range(3)]
        for tab in tabs:
            tab.goto(app.url)
        for call in calls:
            call.start()
        for tab in tabs:
            tab.set_input_files("input[type=file]", str(bomb))
        for tab in tabs:
            expect(tab.get_by_text("of memory to open")).to_be_visible(timeout=60_000)
        for call in calls:
            call.join(timeout=120)
        assert len(errors) == 3 and all("of memory to open" in e for e in errors), errors
        grew_mb = (app.peak_memory_kb() - baseline) / 1024
        print(f"peak memory: {baseline / 1024:.0f} MB after warm-up, +{grew_mb:.0f} MB under the bombs")
        assert grew_mb < 500, f"peak memory grew {grew_mb:.0f} MB"
        for tab in tabs + [page]:
            tab.close()
    finally:
        app.stop()


def test_a_pasted_key_is_checked_at_once_and_never_shown(browser, tmp_path):
    with LocalBackend(api_key=VISITOR_KEY, balance=3.4) as api:
        app = LaunchedApp(tmp_path / "data", tmp_path / "app.log", WAVESPEED_BASE_URL=api.base_url)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        try:
            page.goto(app.url)
            expect(page.locator("#price")).to_contain_text("Offline preview: free")
            page.get_by_role("button", name=re.compile("^Your own WaveSpeed key")).click()
            box = page.get_by_label("WaveSpeed API key")
            box.fill("wsk-not-the-right-one")
            box.press("Enter")
            expect(page.locator("#key-check")).to_contain_text("key was refused", timeout=15_000)
            box.fill(VISITOR_KEY)
            box.press("Enter")
            expect(page.locator("#key-check")).to_contain_text("This key works: $3.40 of credit, about 17 videos")
            expect(page.locator("#price")).to_contain_text("about $0.20 of your WaveSpeed credit")
            assert api.counts["submit"] == 0 and api.counts["ticket"] == 0  # nothing spent
            # The key is in its password box and nowhere else on the page.
            html = page.content()
            assert html.count(VISITOR_KEY) == 0 and VISITOR_KEY not in page.inner_text("body")
        finally:
            page.close()
            app.stop()
        assert VISITOR_KEY not in (tmp_path / "app.log").read_text()
