"""WaveSpeed's contract where it bites a real key: a task it no longer keeps, a slow submit, a
webhook address it would not call, and the official SDK's sync mode, against real loopback
servers (the built-in backend, the launched app)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from gradio_client import Client, handle_file

from skyreels_demo.config import Settings, public_url_problem, refused_public_url
from skyreels_demo.errors import TaskGone
from skyreels_demo.local_api import LocalBackend, TaskTiming
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.status import RunStatus
from skyreels_demo.studio.studio import Studio
from skyreels_demo.status import TaskState
from skyreels_demo.wavespeed.tasks import Task

from .conftest import ASTRONAUT, FAST, LaunchedApp, settings_for, video_facts

GONE = "WaveSpeed no longer keeps this task: predictions are deleted after 7 days."


def run_to_end(studio: Studio, image: Path | str, **fields):
    events = list(studio.generate(RunRequest("a woman smiles", str(image), 7, **fields)))
    return events[-1]


# --- deleted and expired are final -----------------------------------------------------------


@pytest.mark.parametrize("word", ["deleted", "expired"])
def test_deleted_and_expired_are_final_and_not_a_success(word):
    task = Task.from_data({"id": "t1", "status": word})
    assert task.state is TaskState.GONE and task.is_final and not task.succeeded


def test_a_task_deleted_while_it_is_followed_ends_the_run_as_lost_with_a_sentence(backend, tmp_path, photo_path):
    studio = Studio(settings_for(backend, tmp_path / "data"), SKYREELS_V1)
    try:
        backend.retention_s = 0.4  # past it before the video is made (FAST: 0.2 s + 0.6 s)
        with pytest.raises(TaskGone) as caught:
            run_to_end(studio, photo_path)
        assert str(caught.value) == GONE
        [run] = studio.store.recent()
        assert run.status == RunStatus.LOST and run.error_message == GONE and run.finished_at is not None
        assert run.is_finished and run not in studio.store.unfinished(model=SKYREELS_V1.name)
    finally:
        studio.close()


def test_a_stored_run_wavespeed_no_longer_keeps_is_resumed_once_and_never_followed_again(backend, tmp_path, photo_path):
    studio = Studio(settings_for(backend, tmp_path / "data"), SKYREELS_V1)
    try:
        backend.faults.hang_next_task()  # stays processing: the run is left submitted
        with pytest.raises(Exception):
            run_to_end(studio, photo_path, deadline_s=0.5)
        [run] = studio.store.recent()
        assert run.status in (RunStatus.SUBMITTED, RunStatus.QUEUED, RunStatus.PROCESSING)
        backend.retention_s = 0.0  # a week later, as far as the backend knows
        assert requests.get(
            studio.finisher.access.client_for_run(run).result_url(run.task_id),
            headers={"Authorization": "Bearer test-key-not-secret"},
            timeout=5,
        ).json()["data"]["status"] == "deleted"
        [(_, end)] = list(studio.resume(run.task_id))
        assert end.status == RunStatus.LOST and end.error_message == GONE
        polls = backend.counts["result"]
        assert list(studio.resume()) == []  # not unfinished any more: nothing is asked again
        assert backend.counts["result"] == polls
    finally:
        studio.close()


# --- timeouts per call, as the SDK's ---------------------------------------------------------


def test_timeouts_are_the_sdks_per_call():
    settings = Settings()
    assert (settings.connect_timeout_s, settings.submit_timeout_s, settings.upload_timeout_s) == (10.0, 60.0, 120.0)
    assert settings.read_timeout_s == 30.0  # polls and downloads, as before


@pytest.mark.renders  # looks at the video
def test_a_submit_answered_after_the_read_timeout_is_one_submit_and_the_video(backend, tmp_path, photo_path):
    """The SDK's clocks scaled down a tenth (a read waits 3 s, a submit 6 s): a submit answered
    after 4 s, longer than any read may take, is waited out and sent once (WaveSpeed's real
    40 s against 30 and 60, which test_timeouts_are_the_sdks_per_call holds)."""
    studio = Studio(settings_for(backend, tmp_path / "data", read_timeout_s=3.0, submit_timeout_s=6.0), SKYREELS_V1)
    try:
        backend.faults.slow("submit", 4.0)
        started = time.monotonic()
        done = run_to_end(studio, photo_path)
        assert time.monotonic() - started >= 4.0
        assert done.run.status == RunStatus.DONE and video_facts(done.video_path)["frames"] == 97
        assert backend.counts["submit"] == 1 and backend.tasks_created == 1
    finally:
        studio.close()


# --- webhooks only to https ------------------------------------------------------------------


@pytest.mark.parametrize(
    "address, usable",
    [
        ("https://studio.example", True),
        ("http://127.0.0.1:7860", True),  # loopback, for local testing
        ("http://localhost:7860", True),
        ("http://studio.example", False),
        ("ftp://studio.example", False),
    ],
)
def test_only_an_https_or_loopback_webhook_address_is_used(address, usable):
    settings = Settings.from_env({"SKYREELS_PUBLIC_URL": address})
    assert (settings.public_url is not None) is usable
    assert (public_url_problem(address) is None) is usable


def test_an_http_webhook_address_is_refused_at_start_and_runs_simply_poll(backend, tmp_path):
    refusal = refused_public_url({"SKYREELS_PUBLIC_URL": "http://studio.example"})
    assert "only to an https address" in refusal
    env = dict(
        WAVESPEED_API_KEY="test-key-not-secret",
        WAVESPEED_BASE_URL=backend.base_url,
        SKYREELS_PUBLIC_URL="http://studio.example",
    )
    with LaunchedApp(tmp_path / "data", **env) as app:
        status, video, summary = Client(app.url, verbose=False).predict(
            "a kite rises", handle_file(ASTRONAUT), 11, api_name="/generate"
        )
        logged = app.log_path.read_text()
    assert refusal in logged
    assert "Seed 11" in summary and video_facts(video)["frames"] == 97
    [task_id] = backend.created_task_ids
    assert backend.task(task_id).webhook is None  # polled: no webhook was asked for


# --- the official SDK against the built-in backend -------------------------------------------


def sdk_client(backend: LocalBackend):
    import wavespeed

    return wavespeed.Client(api_key="test-key-not-secret", base_url=backend.base_url, max_retries=0)


def test_the_official_sdk_uploads_and_runs_with_sync_mode_against_the_built_in_backend(backend, tmp_path):
    client = sdk_client(backend)
    image = client.upload(ASTRONAUT)
    # The SDK's upload: a ticket, then one PUT of the bytes to the address it names.
    assert image.startswith(backend.base_url + "/files/uploads/")
    assert backend.counts["ticket"] == 1 and backend.counts["put"] == 1
    started = time.monotonic()
    output = client.run(SKYREELS_V1.name, {"prompt": "a woman smiles", "image": image, "seed": 5}, enable_sync_mode=True)
    assert time.monotonic() - started >= FAST.queue_s + FAST.processing_s  # held until done
    assert backend.counts["submit"] == 1 and backend.counts["result"] == 0  # one POST, no polls
    video = tmp_path / "video.mp4"
    video.write_bytes(requests.get(output["outputs"][0], timeout=10).content)
    assert video_facts(video)["frames"] == 97


def test_a_sync_submit_past_its_wait_answers_processing_with_the_task_id(tmp_path):
    with LocalBackend(timing=TaskTiming(queue_s=0.2, processing_s=3.0), sync_wait_s=0.5) as backend:
        client = sdk_client(backend)
        image = client.upload(ASTRONAUT)
        with pytest.raises(RuntimeError, match="Sync mode timed out") as caught:
            client.run(SKYREELS_V1.name, {"prompt": "a man waves", "image": image}, enable_sync_mode=True)
        [task_id] = backend.created_task_ids
        assert task_id in str(caught.value)
        # The task goes on; the SDK's own get_result finds it by its id.
        assert client.get_result(task_id)["data"]["status"] in ("processing", "completed")
