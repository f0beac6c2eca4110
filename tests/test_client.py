"""The client and one whole run, over real loopback HTTP against the local backend.

Each fault scenario ends either in recovery (a saved, playable video) or in the right typed
error with its sentence, and in every one the backend created at most one task per run: the
paid submit is never sent twice.
"""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from skyreels_demo.wavespeed.client import LIST_PAGE_SIZE, WaveSpeedClient
from skyreels_demo.errors import (
    BadInput,
    DownloadFailed,
    NetworkError,
    RateLimited,
    ServiceError,
    TaskFailed,
    TimedOut,
)
from skyreels_demo.local_api import LocalBackend
from skyreels_demo.status import RunStatus
DONE = RunStatus.DONE
from skyreels_demo.wavespeed.schedule import FixedSchedule
from skyreels_demo.studio.events import Done
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.studio.studio import Studio

from .conftest import FAST, free_port, jpeg_bytes, photo, settings_for, video_facts
from skyreels_demo.studio.run_request import RunRequest


def run_to_end(studio: Studio, image, **kwargs) -> Done:
    done = None
    for event in studio.generate(RunRequest("a woman smiles at the camera", image, 7, **kwargs)):
        if isinstance(event, Done):
            done = event
    assert done is not None
    return done


@pytest.mark.renders  # looks at the video
def test_happy_path_saves_a_playable_mp4_at_the_models_frame(studio, backend, photo_path):
    done = run_to_end(studio, photo_path)

    facts = video_facts(done.video_path)
    assert facts == dict(frames=97, fps=24.0, size=(960, 544), codec="h264", pix_fmt="yuv420p")
    assert done.seed == 7
    assert done.run.status == DONE
    assert backend.tasks_created == 1 and backend.counts["submit"] == 1
    sent = backend.task(done.run.task_id)
    assert sent.prompt == "FPS-24, a woman smiles at the camera"
    assert sent.seed == 7


@pytest.mark.renders  # looks at the video
def test_portrait_photo_becomes_a_portrait_video(studio, tmp_path):
    path = tmp_path / "tall.jpg"
    path.write_bytes(jpeg_bytes(photo(600, 1000)))
    done = run_to_end(studio, path)
    assert video_facts(done.video_path)["size"] == (544, 960)


# -- faults that the client recovers from --------------------------------------------------

RECOVERS = {
    "rate-limited upload": lambda f: f.rate_limit("upload", times=2, retry_after=0.1),
    "rate-limited submit (created nothing)": lambda f: f.rate_limit("submit", times=1, retry_after=0.1),
    "rate-limited polls": lambda f: f.rate_limit("result", times=3, retry_after=0.1),
    "5xx burst on polls": lambda f: f.server_errors("result", (500, 502, 503, 504)),
    "slow poll": lambda f: f.slow("result", 0.5),
    "truncated poll body": lambda f: f.truncate("result", times=2),
    "HTTP 200 with code 500 on a poll": lambda f: f.envelope_error("result", code=500, times=2),
    "5xx on the download": lambda f: f.server_errors("file", (503, 502)),
    "rate-limited download": lambda f: f.rate_limit("file", times=1, retry_after=0.1),
}


@pytest.mark.parametrize("fault", RECOVERS.values(), ids=RECOVERS.keys())
def test_run_recovers_from_transient_faults(fault, studio, backend, photo_path):
    fault(backend.faults)
    done = run_to_end(studio, photo_path)
    assert video_facts(done.video_path)["frames"] == 97
    assert backend.tasks_created == 1


def test_slow_poll_past_the_read_timeout_is_retried(backend, tmp_path, photo_path):
    studio = Studio(settings_for(backend, tmp_path / "data", read_timeout_s=0.3), SKYREELS_V1)
    backend.faults.slow("result", 1.0)
    done = run_to_end(studio, photo_path)
    assert done.run.status == DONE
    studio.close()


# -- faults that end in a typed error with its sentence --------------------------------------


def test_failed_task_says_why_and_what_to_do(studio, backend, photo_path):
    backend.faults.fail_next_task(code=1200, message="Content flagged by moderation")
    with pytest.raises(TaskFailed) as caught:
        run_to_end(studio, photo_path)
    err = caught.value
    assert err.code == 1200
    assert "moderation" in str(err) and "change the prompt or image" in str(err)
    assert studio.store.by_task(err.task_id).status == "failed"
    assert backend.tasks_created == 1


def test_internal_error_task_says_it_is_refunded(studio, backend, photo_path):
    backend.faults.fail_next_task(code=5000, message="Internal error")
    with pytest.raises(TaskFailed, match="refunded"):
        run_to_end(studio, photo_path)


def test_task_that_never_finishes_times_out_and_stays_recorded(studio, backend, photo_path):
    backend.faults.hang_next_task()
    with pytest.raises(TimedOut) as caught:
        run_to_end(studio, photo_path, deadline_s=1.5)
    assert "resume" in str(caught.value)
    run = studio.store.by_task(caught.value.task_id)
    assert run.is_unfinished_task
    assert backend.tasks_created == 1


def test_submit_5xx_is_not_retried_and_says_to_check_before_retrying(studio, backend, photo_path):
    backend.faults.server_errors("submit", (502,))
    with pytest.raises(ServiceError) as caught:
        run_to_end(studio, photo_path)
    assert backend.counts["submit"] == 1
    assert "check" in str(caught.value)


def test_submit_envelope_error_is_not_retried(studio, backend, photo_path):
    backend.faults.envelope_error("submit", code=500)
    with pytest.raises(ServiceError):
        run_to_end(studio, photo_path)
    assert backend.counts["submit"] == 1


def test_truncated_submit_answer_is_not_retried_and_its_task_is_found_again(studio, backend, photo_path):
    backend.faults.truncate("submit")
    done = run_to_end(studio, photo_path)
    assert backend.counts["submit"] == 1 and backend.counts["predictions"] == 1
    assert done.run.status == DONE and done.run.task_id == backend.created_task_ids[0]


def test_rate_limit_that_persists_on_submit_gives_up_with_a_sentence(studio, backend, photo_path):
    backend.faults.rate_limit("submit", times=10, retry_after=0.05)
    with pytest.raises(RateLimited, match="wait a minute"):
        run_to_end(studio, photo_path)
    assert backend.tasks_created == 0


def test_missing_output_is_a_download_failure_and_resume_can_retry(studio, backend, photo_path):
    backend.faults.missing_output()
    with pytest.raises(DownloadFailed) as caught:
        run_to_end(studio, photo_path)
    assert "resume" in str(caught.value)
    unfinished = studio.store.unfinished()
    assert len(unfinished) == 1 and unfinished[0].status == "completed"


def test_nsfw_flag_reaches_the_result(studio, backend, photo_path):
    backend.faults.nsfw_next_task()
    done = run_to_end(studio, photo_path)
    assert done.nsfw and "NSFW" in done.message


def test_unreachable_api_is_a_network_error(tmp_path, photo_path, backend):
    settings = settings_for(backend, tmp_path / "data", base_url=f"http://127.0.0.1:{free_port()}")
    studio = Studio(settings, SKYREELS_V1)
    with pytest.raises(NetworkError, match="Could not reach 127.0.0.1"):
        run_to_end(studio, photo_path)
    studio.close()


@pytest.mark.parametrize("seed", [-2, 2_147_483_648, "seven", 1.5])
def test_bad_seed_is_refused_before_any_request(studio, backend, photo_path, seed):
    with pytest.raises(BadInput, match="seed"):
        list(studio.generate(RunRequest("a man waves", photo_path, seed)))
    assert sum(backend.counts.values()) == 0


def test_empty_prompt_is_refused_before_any_request(studio, backend, photo_path):
    with pytest.raises(BadInput, match="Write a prompt"):
        list(studio.generate(RunRequest("   \n ", photo_path, 1)))
    assert sum(backend.counts.values()) == 0


def test_random_seed_is_chosen_by_the_app_and_reported(studio, backend, photo_path):
    done = None
    for event in studio.generate(RunRequest("a man waves", photo_path, -1)):
        done = event
    assert 0 <= done.seed <= 2_147_483_647
    assert backend.task(done.run.task_id).seed == done.seed


# -- what leaves the machine -------------------------------------------------------------------


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).seen.append(dict(self.headers))
        body = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_download_from_another_host_carries_no_authorization(settings, backend, tmp_path):
    cdn = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RecordingHandler)
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    _RecordingHandler.seen = []
    try:
        with WaveSpeedClient(settings) as client:
            client.download(f"http://127.0.0.1:{cdn.server_port}/video.mp4", tmp_path / "v.mp4")
            # The API's own host does get the key (so the check above is not vacuous).
            url = client.upload(jpeg_bytes(photo(400, 300)))
    finally:
        cdn.shutdown()
    assert (tmp_path / "v.mp4").stat().st_size > 0
    assert _RecordingHandler.seen and all("Authorization" not in h for h in _RecordingHandler.seen)
    assert url.startswith(backend.base_url)


def test_key_never_appears_in_reprs(settings):
    client = WaveSpeedClient(settings)
    assert settings.api_key not in repr(client) and settings.api_key not in repr(settings)
    assert settings.api_key not in repr(client.transport._session.auth)


def test_follow_yields_every_second_without_extra_requests(settings, backend, tmp_path):
    backend.faults.hang_next_task()
    with WaveSpeedClient(settings) as client:
        url = client.upload(jpeg_bytes(photo(400, 300)))
        task = client.submit(SKYREELS_V1, {"prompt": "a man waves", "image": url, "seed": 3}).task
        before = backend.counts["result"]
        seen = []
        with pytest.raises(TimedOut):
            for update in client.follow(task.id, deadline_s=3.2, schedule=FixedSchedule(10.0)):
                seen.append(update)
    assert len(seen) >= 3  # about one a second
    assert backend.counts["result"] - before == 1  # one poll, then the 10 s gap


def test_download_is_atomic_when_it_fails(settings, backend, tmp_path):
    dest = tmp_path / "out" / "video.mp4"
    with WaveSpeedClient(settings) as client, pytest.raises(DownloadFailed):
        client.download(f"{backend.base_url}/files/outputs/{'0' * 32}.mp4", dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


# --- the list of predictions and the price ------------------------------------------------


class HandClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_find_tasks_reads_every_page_and_keeps_only_the_window(tmp_path):
    clock = HandClock()
    with LocalBackend(render=False, timing=FAST, clock=clock) as backend:
        client = WaveSpeedClient(settings_for(backend, tmp_path / "data"))
        image = client.upload(jpeg_bytes(photo(64, 64)))
        inputs = {"prompt": "a fox", "image": image, "seed": 1}
        start = clock.now
        clock.now = start - 1000  # two tasks long before
        before = [client.submit(SKYREELS_V1, inputs).id for _ in range(2)]
        made = []
        for second in range(LIST_PAGE_SIZE + 3):  # more than a page, a second apart
            clock.now = start + second
            made.append(client.submit(SKYREELS_V1, inputs).id)
        found = client.find_tasks(SKYREELS_V1.name, start - 1, start + 30)
        assert sorted(task.id for task in found) == sorted(made) and not set(before) & {t.id for t in found}
        assert backend.counts["predictions"] == 2  # two pages of 20
        assert all(task.model == SKYREELS_V1.name and task.created_s is not None for task in found)
        assert client.find_tasks("someone-else/another-model", start - 1, start + 30) == []
        backend.retired.add("predictions")
        with pytest.raises(ServiceError) as gone:
            client.find_tasks(SKYREELS_V1.name, start - 1, start + 30)
        assert gone.value.status == 404
        client.close()


def test_the_price_is_the_pricing_routes_and_a_nonsense_one_is_refused(backend, settings):
    client = WaveSpeedClient(settings)
    assert client.price(SKYREELS_V1, {"seed": -1}) == SKYREELS_V1.price_usd
    backend.prices[SKYREELS_V1.name] = 0.35
    assert client.price(SKYREELS_V1, {"seed": -1}) == 0.35
    for nonsense in ("cheap", -1, True, [0.2]):
        backend.prices[SKYREELS_V1.name] = nonsense
        with pytest.raises(ServiceError, match="did not say what a run costs"):
            client.price(SKYREELS_V1, {})
    backend.retired.add("pricing")
    with pytest.raises(ServiceError) as gone:
        client.price(SKYREELS_V1, {})
    assert gone.value.status == 404
    client.close()
