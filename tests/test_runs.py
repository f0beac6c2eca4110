"""The run store and who sees which runs: many writers at once, an old file migrated, the `runs`
command, and two visitors of one shared app who never see each other's runs.

The browser helpers (`browser`, `browser_page`, `make_run_in_browser`) are in conftest.py.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import gradio as gr
import pytest

from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.config import Settings
from skyreels_demo.store.db import MIGRATIONS, SCHEMA_VERSION
from skyreels_demo.store.runs import RunStore
from skyreels_demo.status import RunStatus

COMPLETED, DONE, PREPARING = RunStatus.COMPLETED, RunStatus.DONE, RunStatus.PREPARING
PROCESSING, SUBMITTED = RunStatus.PROCESSING, RunStatus.SUBMITTED
from skyreels_demo.web.page import StudioApp

from .conftest import ASTRONAUT, CHELSEA, LaunchedApp, browser_page, clean_env, make_run_in_browser, open_store, run_cli

LIFECYCLE = [PREPARING, SUBMITTED, PROCESSING, COMPLETED, DONE]


# --- the store under many writers ------------------------------------------------------------


def test_many_threads_writing_runs_at_once_leave_a_consistent_store(tmp_path):
    path = tmp_path / "runs.sqlite3"
    # The app's threads share one store; a command line running beside it has its own connection.
    stores = [RunStore(path), RunStore(path)]
    threads_n, runs_each = 16, 50
    start = threading.Barrier(threads_n)
    errors: list[BaseException] = []
    made: dict[int, list[str]] = {}

    def writer(index: int) -> None:
        store = stores[index % len(stores)]
        ids = made.setdefault(index, [])
        try:
            start.wait()
            for n in range(runs_each):
                run = store.create(model=SKYREELS_V1.name, prompt=f"writer {index} run {n}", seed=n, mode="api", api_host="h")
                ids.append(run.id)
                store.update(run.id, task_id=f"task-{index}-{n}", status=SUBMITTED, submitted_at=time.time())
                store.update(run.id, status=PROCESSING, processing_at=time.time())
                store.update(run.id, status=PROCESSING)  # a repeated status is not history
                store.update(run.id, status=COMPLETED, finished_at=time.time())
                store.update(run.id, status=DONE, video_path=f"/videos/{index}-{n}.mp4")
        except BaseException as exc:  # reported below, with the thread that hit it
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    for store in stores:
        store.close()

    store = RunStore(path)
    runs = {run.id: run for run in store.recent(limit=10_000)}
    assert len(runs) == threads_n * runs_each
    for index, ids in made.items():
        assert len(ids) == runs_each
        for n, run_id in enumerate(ids):
            run = runs[run_id]
            assert (run.prompt, run.seed, run.task_id, run.status) == (
                f"writer {index} run {n}", n, f"task-{index}-{n}", DONE
            )
            assert run.video_path == f"/videos/{index}-{n}.mp4"
            history = store.statuses(run_id)
            assert [status for _, status in history] == LIFECYCLE
            assert [at for at, _ in history] == sorted(at for at, _ in history)
    assert store.unfinished() == []
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT COUNT(*) FROM run_statuses").fetchone()[0] == threads_n * runs_each * len(LIFECYCLE)
    db.close()
    store.close()


def test_stores_opening_a_new_file_at_once_all_work(tmp_path):
    # The app and a `resume` started together on a fresh data directory both create the schema.
    # The race is narrow, so it is run on several fresh files.
    openers, rounds = 8, 10
    errors: list[str] = []
    for round_ in range(rounds):
        path = tmp_path / f"round-{round_}" / "runs.sqlite3"
        start = threading.Barrier(openers)

        def open_it() -> None:
            start.wait()
            try:
                RunStore(path).close()
            except Exception as exc:  # noqa: BLE001 (collected and reported below)
                errors.append(repr(exc))

        threads = [threading.Thread(target=open_it) for _ in range(openers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        store = RunStore(path)
        assert store.version == SCHEMA_VERSION
        store.close()
    assert not errors, sorted(set(errors))


def test_a_store_from_the_first_schema_is_migrated_and_keeps_its_runs(tmp_path):
    path = tmp_path / "runs.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0])
    old.execute("PRAGMA user_version = 1")
    old.execute(
        "INSERT INTO runs (id, created_at, updated_at, prompt, seed, mode, api_host, task_id, status,"
        " video_path) VALUES ('old-run', 1700000000, 1700000100, 'FPS-24, a horse gallops', 42, 'api',"
        " 'api.wavespeed.ai', 'task-old', 'done', '/videos/old.mp4')"
    )
    old.commit()
    old.close()

    store = RunStore(path)

    assert store.version == SCHEMA_VERSION == len(MIGRATIONS)
    run = store.get("old-run")
    assert (run.prompt, run.seed, run.task_id, run.status, run.video_path) == (
        "FPS-24, a horse gallops", 42, "task-old", "done", "/videos/old.mp4"
    )
    assert (run.visitor, run.key_source, run.nsfw, run.sweep) == ("", "owner", 0, None)
    assert store.statuses("old-run") == []
    assert store.recent(visitor="")[0].id == "old-run"
    # The migrated file takes new runs, with their history, like a new one.
    new = store.create(model=SKYREELS_V1.name, prompt="a boat", seed=1, mode="api", api_host="h", visitor="v1")
    store.update(new.id, status=SUBMITTED, task_id="task-new")
    assert [s for _, s in store.statuses(new.id)] == [PREPARING, SUBMITTED]
    store.close()
    store = RunStore(path)  # opening it again changes nothing
    assert store.version == SCHEMA_VERSION and len(store.recent()) == 2
    store.close()


def test_a_store_from_a_newer_app_is_refused_with_a_sentence(tmp_path):
    path = tmp_path / "runs.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="newer SkyReels Studio"):
        RunStore(path)


# --- the `runs` command ----------------------------------------------------------------------


def test_the_runs_command_lists_status_seed_and_prompt(tmp_path):
    data = tmp_path / "data"
    store = open_store(data)
    finished = store.create(model=SKYREELS_V1.name, prompt="FPS-24, a lighthouse in a storm", seed=1234, mode="api", api_host="h")
    store.update(finished.id, task_id="task-lighthouse", status=DONE, video_path=str(data / "runs" / "x.mp4"))
    waiting = store.create(model=SKYREELS_V1.name, prompt="FPS-24, a fox in the snow", seed=99, mode="api", api_host="h")
    store.update(waiting.id, task_id="task-fox", status=PROCESSING)
    store.close()
    env = clean_env(SKYREELS_DATA_DIR=str(data))

    listed = run_cli("runs", env=env, timeout=60)

    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    fox = next(line for line in lines if "a fox in the snow" in line)
    lighthouse = next(line for line in lines if "a lighthouse in a storm" in line)
    assert lines.index(fox) < lines.index(lighthouse)  # newest first
    assert fox.split()[0] == PROCESSING and "99" in fox.split() and "task-fox" in fox
    assert lighthouse.split()[0] == DONE and "1234" in lighthouse.split()
    assert str(data / "runs" / "x.mp4") in listed.stdout

    as_json = run_cli("runs", "--json", env=env, timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert [(r["status"], r["seed"], r["prompt"]) for r in rows] == [
        (PROCESSING, 99, "FPS-24, a fox in the snow"),
        (DONE, 1234, "FPS-24, a lighthouse in a storm"),
    ]


def test_the_runs_command_on_an_empty_data_dir_says_so(tmp_path):
    listed = run_cli("runs", env=clean_env(SKYREELS_DATA_DIR=str(tmp_path / "data")), timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "No runs yet" in listed.stderr and listed.stdout == ""


# --- visitors of one shared app --------------------------------------------------------------


def test_in_shared_mode_a_visitor_can_neither_list_nor_pick_another_visitors_run(tmp_path):
    # The History handlers themselves, given each browser's private id.
    app = StudioApp(Settings(data_dir=tmp_path / "data", shared=True))
    store = app.studio.store
    image = tmp_path / "frame.jpg"
    image.write_bytes(Path(ASTRONAUT).read_bytes())
    a, b = "a" * 32, "b" * 32  # two browsers' private ids
    theirs = store.create(model=SKYREELS_V1.name, prompt="FPS-24, visitor A's boat", seed=1, mode="preview", api_host="p", visitor=a)
    store.update(theirs.id, image_path=str(image), task_id="task-a", status=SUBMITTED)
    mine = store.create(model=SKYREELS_V1.name, prompt="FPS-24, visitor B's kite", seed=2, mode="preview", api_host="p", visitor=b)
    store.update(mine.id, image_path=str(image), task_id="task-b", status=SUBMITTED)
    as_b = gr.Request(session_hash="session-of-b")

    items, ids = app.history.history(b, as_b)

    assert ids == [mine.id]
    assert [caption.rsplit(" · ", 1)[0] for _, caption in items] == ["Being made · visitor B's kite · seed 2"]
    # Another visitor's run is as good as nothing picked: Create is left alone, the note says so.
    refused = app.history.reuse(theirs.id, b, as_b)
    assert refused[0] == gr.update() and refused[1] == gr.update() and refused[-1] != ""
    assert app.history.reuse(mine.id, b, as_b)[0] == "visitor B's kite"
    # A made-up id, or none, sees nothing at all.
    assert app.history.history("B", as_b) == ([], []) and app.history.history(None, as_b) == ([], [])
    app.studio.close()


def history_captions(page) -> list[str]:
    page.get_by_role("tab", name="History").click()
    captions = page.locator(".caption-label")
    captions.first.wait_for()
    return [text.strip() for text in captions.all_inner_texts()]


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory):
    data = tmp_path_factory.mktemp("shared-app")
    env = dict(SKYREELS_SHARED="1", SKYREELS_VISITOR_RUNS_PER_HOUR="50", SKYREELS_PREVIEW_TIMING="0.2,0.5")
    with LaunchedApp(data, **env) as launched:
        launched.store = open_store(data)
        yield launched


@pytest.mark.browser
def test_two_browser_sessions_do_not_see_each_others_runs(shared_app, browser):
    prompt_a = "a tabby cat yawns on a windowsill"
    prompt_b = "an astronaut waves at the camera"
    with browser_page(browser, shared_app.url) as page_a, browser_page(browser, shared_app.url) as page_b:
        make_run_in_browser(page_a, prompt_a, CHELSEA, wait_for_video=False)
        make_run_in_browser(page_b, prompt_b, ASTRONAUT)
        page_a.locator("#result-video video").wait_for(timeout=60_000)
        runs = {run.prompt: run for run in shared_app.store.recent()}
        run_a, run_b = runs[f"FPS-24, {prompt_a}"], runs[f"FPS-24, {prompt_b}"]
        assert run_a.visitor and run_b.visitor and run_a.visitor != run_b.visitor

        captions_a = history_captions(page_a)
        captions_b = history_captions(page_b)

        assert len(captions_a) == 1 and captions_a[0].startswith(prompt_a)  # a made take: its prompt first
        assert len(captions_b) == 1 and captions_b[0].startswith(prompt_b)
        # B picks the only run it has: it is B's own, and A's run shows up nowhere on B's page.
        page_b.get_by_test_id("thumbnail 1").click()
        page_b.locator("#take-details blockquote", has_text=prompt_b).wait_for()
        page_b.locator("#take-details").get_by_text("Details", exact=True).click()
        page_b.get_by_text(run_b.task_id, exact=True).locator("visible=true").wait_for()  # its details
        page_b_html = page_b.content()
        for secret in (run_a.id, run_a.task_id, prompt_a):
            assert secret not in page_b_html
        assert run_b.task_id not in page_a.content()
