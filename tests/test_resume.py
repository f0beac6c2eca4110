"""Nothing paid for is lost: a killed command line, a crashed or closed app, a Stop and a closed
tab all end with the video saved, and the task was submitted once.

Every test runs against a real `LocalBackend` in this process standing in for WaveSpeed (it keeps
its tasks while the app or command line around it dies, as the real API does), and drives the
project the way a person would: `python -m skyreels_demo`, `python app.py`, gradio_client, and
the Stop button in a real Chromium.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from skyreels_demo.local_api import LocalBackend, TaskTiming
from skyreels_demo.store.runs import RunStore
from skyreels_demo.status import RunStatus
DONE = RunStatus.DONE

from .conftest import (
    ASTRONAUT,
    ROOT,
    LaunchedApp,
    browser_page,
    clean_env,
    make_run_in_browser,
    open_store,
    run_cli,
    video_facts,
    wait_for,
)

IMAGE = ASTRONAUT
OWNER_KEY = "wsk-owner-test-key"
# Slow enough that a kill lands while the task is still being made.
SLOW = TaskTiming(queue_s=0.5, processing_s=3)


@pytest.fixture
def slow_backend():
    with LocalBackend(timing=SLOW, render=False) as server:
        yield server


def cli_env(backend: LocalBackend, data_dir: Path) -> dict[str, str]:
    return clean_env(
        WAVESPEED_BASE_URL=backend.base_url,
        WAVESPEED_API_KEY=OWNER_KEY,
        SKYREELS_DATA_DIR=str(data_dir),
        SKYREELS_POLL="0.2",
    )


def app_env(backend: LocalBackend) -> dict[str, str]:
    return dict(WAVESPEED_BASE_URL=backend.base_url, WAVESPEED_API_KEY=OWNER_KEY, SKYREELS_POLL="0.2")


def submitted_run(store: RunStore, prompt: str | None = None):
    """The first recorded run that has a task id (and, if given, whose prompt contains `prompt`)."""
    for run in store.recent(limit=200):
        if run.task_id and (prompt is None or prompt in run.prompt):
            return run
    return None


def saved_run(store: RunStore, run_id: str):
    run = store.get(run_id)
    return run if run.status == DONE and run.has_video else None


def wait_until_saved(store: RunStore, run_id: str, log_path: Path | None = None, timeout: float = 60):
    """The run once its video is saved; on giving up, say where it got stuck and what the app logged."""
    try:
        return wait_for(lambda: saved_run(store, run_id), timeout=timeout, every=0.2)
    except AssertionError:
        run = store.get(run_id)
        logged = log_path.read_text(errors="replace")[-3000:] if log_path and log_path.exists() else ""
        raise AssertionError(
            f"run {run_id} was not saved within {timeout}s: it is {run.status!r}, statuses "
            f"{[s for _, s in store.statuses(run_id)]}\n{logged}"
        ) from None


def start_generate(client: Client, prompt: str, seed: int = 5):
    return client.submit(prompt, handle_file(IMAGE), seed, True, "crop", "", "", api_name="/generate")


# --- the command line ------------------------------------------------------------------------


def test_a_generate_killed_after_submit_is_finished_by_resume_without_a_second_submit(slow_backend, tmp_path):
    data = tmp_path / "data"
    store = open_store(data)  # the schema exists before the child opens the file
    env = cli_env(slow_backend, data)
    child = subprocess.Popen(
        [sys.executable, "-m", "skyreels_demo", "generate", "--prompt", "a woman turns to the camera",
         "--image", IMAGE, "--seed", "11"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run = wait_for(lambda: submitted_run(store), timeout=60)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=15) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    cut_off = store.get(run.id)
    assert cut_off.is_unfinished_task and not cut_off.video_path  # the kill came mid-run

    resumed = run_cli("resume", env=env, timeout=120)

    assert resumed.returncode == 0, resumed.stderr
    done = store.get(run.id)
    assert done.status == DONE
    assert resumed.stdout.strip() == done.video_path
    assert f"{run.task_id}: done" in resumed.stderr
    assert video_facts(done.video_path)["frames"] == 97
    assert [status for _, status in store.statuses(run.id)][0] == "preparing"
    assert [status for _, status in store.statuses(run.id)][-1] == DONE
    assert slow_backend.tasks_created == 1
    assert slow_backend.counts["submit"] == 1


def test_resume_with_nothing_to_do_says_so(tmp_path):
    env = clean_env(SKYREELS_DATA_DIR=str(tmp_path / "data"))
    result = run_cli("resume", env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Nothing to resume" in result.stderr
    assert result.stdout.strip() == ""


def test_resume_after_everything_is_saved_sends_nothing(tmp_path):
    with LocalBackend(timing=TaskTiming(queue_s=0.1, processing_s=0.3), render=False) as backend:  # nothing to kill
        env = cli_env(backend, tmp_path / "data")
        made = run_cli("generate", "--prompt", "a cat blinks", "--image", IMAGE, "--seed", "3", env=env)
        assert made.returncode == 0, made.stderr
        before = dict(backend.counts)

        again = run_cli("resume", env=env, timeout=60)

        assert again.returncode == 0, again.stderr
        assert "Nothing to resume" in again.stderr
        assert backend.counts["submit"] == before["submit"] == 1 and backend.counts["result"] == before["result"]


def test_a_generate_that_gave_up_waiting_is_resumed_at_the_configured_poll_interval(tmp_path):
    # SKYREELS_POLL=0.2 asks for a poll every 0.2 s; `resume` should see the end that soon too.
    # The task runs long enough that `resume` is polling before it ends, however slowly a loaded
    # machine starts the command (at 2.5 s, one started after the end and saved it 2.4 s late).
    with LocalBackend(timing=TaskTiming(queue_s=0.2, processing_s=6.0), render=False) as backend:
        data = tmp_path / "data"
        env = cli_env(backend, data)
        gave_up = run_cli("generate", "--prompt", "a kite climbs", "--image", IMAGE, "--seed", "8",
                          "--timeout", "1", "--json", env=env)
        assert gave_up.returncode == 5, gave_up.stderr  # gave up waiting; the task is recorded
        task_id = json.loads(gave_up.stdout)["task_id"]

        resumed = run_cli("resume", task_id, env=env, timeout=120)

        assert resumed.returncode == 0, resumed.stderr
        store = open_store(data)
        run = store.by_task(task_id)
        assert run.status == DONE and video_facts(run.video_path)["frames"] == 97
        completed_at = backend.task(task_id).completed_at
        saved_at = next(at for at, status in store.statuses(run.id) if status == DONE)
        assert saved_at - completed_at < 2.0, f"saved {saved_at - completed_at:.1f}s after the task completed"
        assert backend.counts["submit"] == 1


# --- the app going down ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["crash", "close"])
def test_a_run_cut_off_by_the_app_going_down_is_saved_when_it_starts_again(how, slow_backend, tmp_path):
    data = tmp_path / "data"
    store = open_store(data)
    first = LaunchedApp(data, tmp_path / "first.log", **app_env(slow_backend))
    client = Client(first.url, verbose=False)
    try:
        start_generate(client, "a man waves from a boat")
        run = wait_for(lambda: submitted_run(store), timeout=60)
    finally:
        if how == "crash":
            first.kill()  # SIGKILL: no cleanup of any kind
        else:
            first.stop()  # SIGTERM, as a host stopping the app does
        client.close()
    cut_off = store.get(run.id)
    assert cut_off.is_unfinished_task and not cut_off.video_path

    second = LaunchedApp(data, tmp_path / "second.log", **app_env(slow_backend))
    try:
        done = wait_until_saved(store, run.id, second.log_path)
    finally:
        second.stop()
    assert video_facts(done.video_path)["frames"] == 97
    assert slow_backend.tasks_created == 1 and slow_backend.counts["submit"] == 1


# --- a visitor who stops watching ------------------------------------------------------------


@pytest.fixture(scope="module")
def live_backend():
    with LocalBackend(timing=SLOW, render=False) as server:
        yield server


@pytest.fixture(scope="module")
def live_app(tmp_path_factory, live_backend):
    data = tmp_path_factory.mktemp("live-app")
    with LaunchedApp(data, **app_env(live_backend)) as launched:
        launched.store = open_store(data)
        yield launched


def test_a_run_whose_client_went_away_is_saved_by_the_app_itself(live_app, live_backend):
    # gradio_client's cancel(): the server drops the event mid-run, as it does for a closed tab.
    submits = live_backend.counts["submit"]
    client = Client(live_app.url, verbose=False)
    job = start_generate(client, "a dog runs along a beach at dusk")
    run = wait_for(lambda: submitted_run(live_app.store, "a dog runs along a beach"), timeout=60)
    job.cancel()
    client.close()

    done = wait_until_saved(live_app.store, run.id, live_app.log_path)

    assert live_app.process.poll() is None  # the same app, not a restart
    assert video_facts(done.video_path)["frames"] == 97
    assert live_backend.counts["submit"] == submits + 1


@pytest.mark.browser
def test_pressing_stop_still_saves_the_video_to_history(live_app, live_backend, browser):
    submits = live_backend.counts["submit"]
    prompt = "an old man lights a pipe by the window"
    with browser_page(browser, live_app.url) as page:
        make_run_in_browser(page, prompt, wait_for_video=False)
        run = wait_for(lambda: submitted_run(live_app.store, prompt), timeout=60)
        page.get_by_role("button", name="Stop", exact=True).click()
        page.locator("#status").get_by_text("Stopped waiting").wait_for(timeout=30_000)
        assert page.locator("#result-video video").count() == 0  # nothing played: it was stopped

        done = wait_until_saved(live_app.store, run.id, live_app.log_path)

        # Opening History shows it saved, with no Generate pressed again.
        page.get_by_role("tab", name="History").click()
        # Listed as a made take: its prompt first, no state word before it.
        page.locator(".caption-label", has_text=re.compile(rf"^{prompt}")).wait_for(timeout=30_000)
    assert video_facts(done.video_path)["frames"] == 97
    assert live_backend.counts["submit"] == submits + 1


@pytest.mark.browser
def test_closing_the_tab_mid_run_still_saves_the_video(live_app, live_backend, browser):
    submits = live_backend.counts["submit"]
    prompt = "a girl on a swing laughs in the sun"
    with browser_page(browser, live_app.url) as page:
        make_run_in_browser(page, prompt, wait_for_video=False)
        run = wait_for(lambda: submitted_run(live_app.store, prompt), timeout=60)
    # Leaving the block closed the tab (its whole browser context) mid-run.
    assert not live_app.store.get(run.id).video_path

    done = wait_until_saved(live_app.store, run.id, live_app.log_path)

    assert video_facts(done.video_path)["frames"] == 97
    assert live_backend.counts["submit"] == submits + 1
