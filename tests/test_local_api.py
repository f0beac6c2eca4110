"""The built-in backend, over real loopback HTTP: endpoints, envelopes, clock, videos, faults."""

from __future__ import annotations

from dataclasses import replace

import io
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import pytest
import requests
from PIL import Image, ImageDraw

from skyreels_demo.models import BRONZE, SKYREELS_V1
from skyreels_demo.local_api import LocalBackend, Limits, TaskTiming
from skyreels_demo.local_api.render import NotAnImage, render_preview

FAST = TaskTiming(queue_s=0.2, processing_s=0.5)
QUICK = TaskTiming(queue_s=0.1, processing_s=0.2)  # for tests about the protocol, not the clock
SUBMIT_PATH = "/api/v3/wavespeed-ai/SkyReels-V1"
UPLOAD_PATH = "/api/v3/media/upload/binary"
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

pytestmark = pytest.mark.timeout(60)

# Calls made without a key; an environment proxy must not see loopback traffic.
anonymous = requests.Session()
anonymous.trust_env = False


# --- pictures and a tiny client --------------------------------------------------------------


def picture(width: int, height: int, *, tint: int = 0, fmt: str = "JPEG") -> bytes:
    """A photo-like test picture: a sky gradient, a sun and a hill."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    sun = (width * 0.6, height * 0.15, width * 0.8, height * 0.15 + width * 0.2)
    draw.ellipse(sun, fill=(250, 200, tint))
    draw.polygon([(0, height), (width * 0.4, height * 0.6), (width, height)], fill=(40, 120 + tint % 100, 60))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


class Api:
    """Just enough of a WaveSpeed client to drive the backend; no retries, no cleverness."""

    def __init__(self, backend: LocalBackend, key: str = "test-key") -> None:
        self.base = backend.base_url
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"Bearer {key}"

    def upload(self, data: bytes, name: str = "picture.jpg") -> str:
        answer = self.http.post(self.base + UPLOAD_PATH, files={"file": (name, data)}, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]["download_url"]

    def submit(self, body: dict[str, Any], **kwargs: Any) -> requests.Response:
        return self.http.post(self.base + SUBMIT_PATH, json=body, timeout=kwargs.pop("timeout", 10), **kwargs)

    def start_task(self, image_url: str, prompt: str = "FPS-24, a quiet lake", seed: int = 42) -> str:
        answer = self.submit({"prompt": prompt, "image": image_url, "seed": seed})
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]["id"]

    def result(self, task_id: str) -> requests.Response:
        return self.http.get(f"{self.base}/api/v3/predictions/{task_id}/result", timeout=10)

    def follow(self, task_id: str, timeout: float = 20) -> tuple[dict[str, Any], list[str]]:
        """Poll until the task is final; return its last data and the statuses seen, in order."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.result(task_id).json()["data"]
            if not seen or seen[-1] != data["status"]:
                seen.append(data["status"])
            if data["status"] in ("completed", "failed"):
                return data, seen
            time.sleep(0.02)
        raise AssertionError(f"task {task_id} still {seen[-1]} after {timeout} s")

    def walk(
        self, task_id: str, clock: HandClock, timing: TaskTiming, timeout: float = 30
    ) -> tuple[dict[str, Any], list[str]]:
        """Follow a task on a clock that moves only between polls: every state it passes is seen,
        however late a poll lands. After each step, poll until the status changes (a render may
        still be finishing); return the last data and the statuses seen, in order."""
        data = self.result(task_id).json()["data"]
        seen = [data["status"]]
        for step in (timing.queue_s, timing.processing_s):
            clock.advance(step)
            deadline = time.monotonic() + timeout
            while (data := self.result(task_id).json()["data"])["status"] == seen[-1]:
                if time.monotonic() > deadline:
                    raise AssertionError(f"task {task_id} still {seen[-1]} {timeout} s after the clock moved on")
                time.sleep(0.02)
            seen.append(data["status"])
            if data["status"] in ("completed", "failed"):
                break
        return data, seen

    def download(self, url: str, **kwargs: Any) -> requests.Response:
        # Output URLs are public, like a CDN's: no key is sent.
        return anonymous.get(url, timeout=10, **kwargs)


class HandClock:
    """A backend's clock that stands still until the test moves it on."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def frames_of(mp4: Path) -> list[Any]:
    with av.open(str(mp4)) as container:
        return [frame.to_ndarray(format="rgb24").astype(int) for frame in container.decode(video=0)]


def probe(mp4: bytes) -> dict[str, Any]:
    with av.open(io.BytesIO(mp4)) as container:
        stream = container.streams.video[0]
        facts = {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "size": (stream.width, stream.height),
            "fps": stream.average_rate,
        }
        facts["frames"] = sum(1 for _ in container.decode(stream))
    return facts


@pytest.fixture
def start_backend(tmp_path: Path) -> Iterator[Callable[..., LocalBackend]]:
    started: list[LocalBackend] = []

    def start(**kwargs: Any) -> LocalBackend:
        kwargs.setdefault("timing", FAST)
        kwargs.setdefault("data_dir", tmp_path / f"backend-{len(started)}")
        backend = LocalBackend(**kwargs).start()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture
def backend(start_backend: Callable[..., LocalBackend]) -> LocalBackend:
    return start_backend()


@pytest.fixture
def quick_backend(start_backend: Callable[..., LocalBackend]) -> LocalBackend:
    """No rendering: every task shares one tiny MP4, for tests about the protocol."""
    return start_backend(render=False, timing=QUICK)


@pytest.fixture(scope="module")
def shared_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    """One server for the many tests that arm no faults and check no totals (starts cost time)."""
    with LocalBackend(render=False, timing=QUICK, data_dir=tmp_path_factory.mktemp("shared")) as backend:
        yield backend


@pytest.fixture(scope="module")
def keyed_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    with LocalBackend(
        api_key="secret-key", render=False, timing=QUICK, data_dir=tmp_path_factory.mktemp("keyed")
    ) as backend:
        yield backend


@pytest.fixture
def shared_api(shared_backend: LocalBackend) -> Api:
    return Api(shared_backend)


@pytest.fixture
def api(backend: LocalBackend) -> Api:
    return Api(backend)


@pytest.fixture
def quick_api(quick_backend: LocalBackend) -> Api:
    return Api(quick_backend)


# --- the happy path --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "frame"),
    [((1280, 720), (960, 544)), ((720, 1280), (544, 960)), ((800, 800), (720, 720))],
    ids=["landscape", "portrait", "square"],
)
def test_uploaded_picture_becomes_a_97_frame_h264_preview_at_the_models_frame(
    api: Api, size: tuple[int, int], frame: tuple[int, int]
) -> None:
    task_id = api.start_task(api.upload(picture(*size)))
    data, _ = api.follow(task_id)
    assert data["status"] == "completed", data
    video = api.download(data["outputs"][0])

    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    assert probe(video.content) == {
        "codec": "h264", "pix_fmt": "yuv420p", "size": frame, "fps": 24, "frames": 97,
    }


def test_task_walks_created_processing_completed_on_the_clock(start_backend: Callable[..., LocalBackend]) -> None:
    clock = HandClock()
    backend = start_backend(clock=clock)
    api = Api(backend)
    image_url = api.upload(picture(640, 360))
    submitted = api.submit({"prompt": "FPS-24, waves", "image": image_url, "seed": 7})
    body = submitted.json()
    task_id = body["data"]["id"]

    assert submitted.status_code == 200 and body["code"] == 200 and body["message"] == "success"
    assert body["data"] == {
        "id": task_id,
        "model": "wavespeed-ai/SkyReels-V1",
        "outputs": [],
        "urls": {"get": f"{backend.base_url}/api/v3/predictions/{task_id}/result"},
        "has_nsfw_contents": [],
        "status": "created",
        "created_at": body["data"]["created_at"],
        "error": "",
        "timings": {"inference": 0},
    }
    assert re.fullmatch(r"[0-9a-f]{32}", task_id)
    assert ISO_MS.fullmatch(body["data"]["created_at"])

    data, seen = api.walk(task_id, clock, FAST)
    record = backend.task(task_id)
    assert seen == ["created", "processing", "completed"]
    assert data["outputs"] == [f"{backend.base_url}/files/outputs/{task_id}.mp4"]
    assert data["has_nsfw_contents"] == [False]
    assert data["timings"]["inference"] >= 500
    assert record.status == "completed"
    assert record.completed_at is not None
    assert record.completed_at >= record.created_at + FAST.queue_s + FAST.processing_s
    assert (record.prompt, record.seed, record.image_url) == ("FPS-24, waves", 7, image_url)


def test_bronzes_limits_when_switched_on_answer_429_past_two_at_once_and_two_a_minute(
    start_backend: Callable[..., LocalBackend],
) -> None:
    """Off by default; on, a submit past the tier's tasks at once or submits a minute is answered
    429 and makes nothing, as WaveSpeed's is (on a hand clock: the real minute, not waited)."""
    clock = HandClock()
    backend = start_backend(clock=clock, render=False, timing=TaskTiming(queue_s=0.0, processing_s=10.0), limits=Limits.of(BRONZE))
    api = Api(backend)
    body = {"prompt": "FPS-24, waves", "image": f"{backend.base_url}/files/uploads/none.jpg", "seed": 1}
    assert [api.submit(body).status_code for _ in range(3)] == [200, 200, 429]  # a 3rd waits until one finishes
    assert backend.tasks_created == 2 and backend.in_flight() == 2
    clock.advance(11)  # both done: none running, but two submits in this minute already
    third = api.submit(body)
    assert third.status_code == 429 and third.json()["code"] == 429
    clock.advance(50)  # a minute after the first two
    assert api.submit(body).status_code == 200
    assert backend.tasks_created == 3
    assert [why.split(":")[0] for _, why in backend.refused] == ["Too many requests"] * 2
    assert "2 at once" in backend.refused[0][1] and "2 tasks a minute" in backend.refused[1][1]


def test_every_result_request_is_noted_with_its_time_per_task(quick_api: Api, quick_backend: LocalBackend) -> None:
    task_id = quick_api.start_task(quick_api.upload(picture(64, 64)))
    before = time.time()
    for _ in range(2):
        quick_api.result(task_id)
    times = quick_backend.checks[task_id]
    assert len(times) == 2 and before <= times[0] <= times[1] <= time.time()


def test_the_short_result_path_answers_the_same(api: Api, backend: LocalBackend) -> None:
    task_id = api.start_task(api.upload(picture(320, 180)))
    answer = api.http.get(f"{backend.base_url}/api/v3/predictions/{task_id}", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["data"]["id"] == task_id


@pytest.mark.parametrize("body_seed", [-1, None], ids=["minus-one", "absent"])
def test_server_picks_a_seed_when_asked_for_a_random_one(
    shared_api: Api, shared_backend: LocalBackend, body_seed: int | None
) -> None:
    body: dict[str, Any] = {"prompt": "p", "image": shared_api.upload(picture(64, 64))}
    if body_seed is not None:
        body["seed"] = body_seed
    task_id = shared_api.submit(body).json()["data"]["id"]
    assert 0 <= shared_backend.task(task_id).seed <= 2_147_483_647


def test_uploaded_picture_is_served_back_unchanged(shared_api: Api) -> None:
    data = picture(200, 100, fmt="PNG")
    answer = shared_api.http.post(shared_api.base + UPLOAD_PATH, files={"file": ("sky.png", data)}, timeout=5)
    body = answer.json()

    assert body["code"] == 200 and body["message"] == "success"
    assert body["data"]["type"] == "image"
    assert body["data"]["filename"] == "sky.png"
    assert body["data"]["size"] == len(data)
    stored = re.escape(shared_api.base) + r"/files/uploads/[0-9a-f]{32}\.png"
    assert re.fullmatch(stored, body["data"]["download_url"])
    served = shared_api.download(body["data"]["download_url"])
    assert served.headers["content-type"] == "image/png"
    assert served.content == data


def test_a_browser_can_seek_in_the_video(shared_api: Api) -> None:
    data, _ = shared_api.follow(shared_api.start_task(shared_api.upload(picture(64, 64))))
    part = shared_api.download(data["outputs"][0], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert len(part.content) == 100
    assert part.content[4:8] == b"ftyp"


def test_without_rendering_every_task_gets_a_small_valid_mp4(shared_api: Api) -> None:
    data, _ = shared_api.follow(shared_api.start_task(shared_api.upload(picture(640, 360))))
    video = shared_api.download(data["outputs"][0]).content
    assert len(video) < 100_000
    assert probe(video)["codec"] == "h264"


def test_tasks_with_one_picture_seed_and_prompt_share_one_render_and_another_seed_gets_its_own(
    start_backend: Callable[..., LocalBackend],
) -> None:
    backend = start_backend(timing=TaskTiming(0, 0))
    api = Api(backend)
    data = picture(960, 540)
    urls = [api.upload(data), api.upload(data)]  # two uploads, same bytes
    task_ids = [api.start_task(urls[i % 2], seed=seed) for i, seed in enumerate((1, 1, 1, 2))]

    videos = [api.download(api.follow(task_id)[0]["outputs"][0]).content for task_id in task_ids]
    assert videos[0] == videos[1] == videos[2]
    assert videos[3] != videos[0]  # another seed: another camera move
    assert len(list((backend.data_dir / "renders").glob("*.mp4"))) == 2


def test_server_stays_responsive_while_previews_render(
    start_backend: Callable[..., LocalBackend],
) -> None:
    backend = start_backend(timing=TaskTiming(0, 0))
    api = Api(backend)
    # Four renders (about half a second of CPU each), so there is time to ask while they run.
    task_ids = [api.start_task(api.upload(picture(1280, 720, tint=tint))) for tint in (10, 80, 150, 220)]

    waits = []
    while rendering := [task_id for task_id in task_ids if backend.task(task_id).render is None]:
        started = time.perf_counter()
        assert api.result(rendering[-1]).json()["data"]["status"] in ("processing", "completed")
        waits.append(time.perf_counter() - started)
        time.sleep(0.02)

    assert len(waits) >= 3, "the renders finished before the server could be asked anything"
    # A stalled server would answer only after a render (about a second); the typical answer
    # must come at once. The median, not the max, so one hiccup on a shared machine is no failure.
    assert sorted(waits)[len(waits) // 2] < 0.25, waits
    for task_id in task_ids:
        assert api.follow(task_id)[0]["status"] == "completed"


# --- who may call, and what is refused -------------------------------------------------------


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer ", "Bearer wrong-key", "Basic secret-key", "secret-key"]
)
def test_missing_or_wrong_key_is_refused_with_401(
    keyed_backend: LocalBackend, authorization: str | None
) -> None:
    backend = keyed_backend
    created_before = backend.tasks_created
    headers = {} if authorization is None else {"Authorization": authorization}
    base = backend.base_url
    body = {"prompt": "p", "image": "http://127.0.0.1/x.jpg"}
    answers = [
        anonymous.post(base + SUBMIT_PATH, json=body, headers=headers, timeout=5),
        anonymous.post(base + UPLOAD_PATH, files={"file": ("a.jpg", picture(32, 32))}, headers=headers, timeout=5),
        anonymous.get(base + "/api/v3/predictions/abc/result", headers=headers, timeout=5),
    ]
    for answer in answers:
        assert answer.status_code == 401
        assert answer.json()["code"] == 401
        assert answer.json()["data"] is None
    assert backend.tasks_created == created_before


def test_the_configured_key_is_accepted(keyed_backend: LocalBackend) -> None:
    api = Api(keyed_backend, key="secret-key")
    assert api.submit({"prompt": "p", "image": api.upload(picture(32, 32))}).status_code == 200


def test_any_key_is_accepted_when_none_is_configured(shared_backend: LocalBackend) -> None:
    assert Api(shared_backend, key="whatever").upload(picture(32, 32))


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, 1400),
        ({"image": "http://127.0.0.1/x.jpg"}, 1400),
        ({"prompt": "", "image": "http://127.0.0.1/x.jpg"}, 1400),
        ({"prompt": "   ", "image": "http://127.0.0.1/x.jpg"}, 1400),
        ({"prompt": "p"}, 1400),
        ({"prompt": "p", "image": ""}, 1400),
        ({"prompt": 5, "image": "http://127.0.0.1/x.jpg"}, 1401),
        ({"prompt": "p", "image": "http://127.0.0.1/x.jpg", "seed": "5"}, 1401),
        ({"prompt": "p", "image": "http://127.0.0.1/x.jpg", "seed": 1.5}, 1401),
        ({"prompt": "p", "image": "http://127.0.0.1/x.jpg", "seed": True}, 1401),
        ({"prompt": "p", "image": "http://127.0.0.1/x.jpg", "seed": -2}, 1401),
        ({"prompt": "p", "image": "http://127.0.0.1/x.jpg", "seed": 2_147_483_648}, 1401),
        (["not", "an", "object"], 1401),
    ],
)
def test_bad_submission_is_refused_with_400_and_nothing_is_created(
    shared_api: Api, shared_backend: LocalBackend, body: Any, code: int
) -> None:
    created_before = shared_backend.tasks_created
    answer = shared_api.submit(body)
    assert answer.status_code == 400
    assert answer.json()["code"] == code
    assert answer.json()["message"]
    assert shared_backend.tasks_created == created_before


def test_submission_that_is_not_json_is_refused(shared_api: Api) -> None:
    answer = shared_api.http.post(shared_api.base + SUBMIT_PATH, data=b"{prompt", timeout=5)
    assert (answer.status_code, answer.json()["code"]) == (400, 1401)


def test_largest_seed_is_accepted(shared_api: Api, shared_backend: LocalBackend) -> None:
    task_id = shared_api.start_task(shared_api.upload(picture(32, 32)), seed=2_147_483_647)
    assert shared_backend.task(task_id).seed == 2_147_483_647


def test_upload_without_a_file_is_refused_with_400(shared_api: Api) -> None:
    without_file = shared_api.http.post(shared_api.base + UPLOAD_PATH, data={"other": "x"}, timeout=5)
    empty_file = shared_api.http.post(
        shared_api.base + UPLOAD_PATH, files={"file": ("a.jpg", b"")}, timeout=5
    )
    for answer in (without_file, empty_file):
        assert answer.status_code == 400
        assert answer.json()["code"] == 400


def test_upload_over_20_mb_is_refused_with_413(shared_api: Api) -> None:
    answer = shared_api.http.post(
        shared_api.base + UPLOAD_PATH, files={"file": ("big.jpg", b"\0" * (20 * 1024 * 1024 + 1))}, timeout=20
    )
    assert (answer.status_code, answer.json()["code"]) == (413, 413)


def test_unknown_task_is_404_in_an_envelope(shared_api: Api) -> None:
    answer = shared_api.result("0" * 32)
    assert answer.status_code == 404
    assert answer.json()["code"] == 404 and answer.json()["data"] is None


def test_unknown_path_is_404_in_an_envelope(shared_api: Api) -> None:
    answer = shared_api.http.get(shared_api.base + "/api/v3/nothing-here", timeout=5)
    assert answer.status_code == 404
    assert answer.json()["code"] == 404


# --- which images a task may fetch ------------------------------------------------------------


@pytest.mark.parametrize(
    "image_url",
    [
        "http://203.0.113.5/x.jpg",
        "https://example.com/x.jpg",
        "http://127.0.0.1.example.com/x.jpg",
        "http://[2001:db8::1]/x.jpg",
        "ftp://127.0.0.1/x.jpg",
        "not a url",
    ],
)
def test_image_off_this_computer_fails_the_task_with_1402_without_connecting(
    shared_api: Api, shared_backend: LocalBackend, image_url: str
) -> None:
    task_id = shared_api.start_task(image_url)
    data, seen = shared_api.follow(task_id)
    record = shared_backend.task(task_id)

    assert seen == ["created", "failed"]
    assert data["code"] == 1402
    assert data["error"].endswith(".") and len(data["error"]) > 20
    assert data["outputs"] == []
    # Refused from the URL alone at submit time: a connection attempt would have come later.
    assert record.failure is not None and record.failure.at == record.processing_at


def test_image_from_another_loopback_server_is_fetched(
    start_backend: Callable[..., LocalBackend],
) -> None:
    backend, elsewhere = start_backend(timing=TaskTiming(0, 0)), start_backend(render=False)
    image_url = Api(elsewhere).upload(picture(320, 320)).replace("127.0.0.1", "localhost")

    data, _ = Api(backend).follow(Api(backend).start_task(image_url))
    assert data["status"] == "completed"
    assert elsewhere.counts["file"] == 1


def test_missing_upload_fails_the_task_with_1402(backend: LocalBackend) -> None:
    api = Api(backend)
    data, _ = api.follow(api.start_task(f"{backend.base_url}/files/uploads/{'a' * 32}.jpg"))
    assert (data["status"], data["code"]) == ("failed", 1402)
    assert "404" in data["error"]


def test_not_a_picture_fails_the_task_with_1402(api: Api) -> None:
    text_url = api.upload(b"just some words, not a picture", name="notes.txt")
    data, _ = api.follow(api.start_task(text_url))
    assert (data["status"], data["code"]) == ("failed", 1402)
    assert "picture" in data["error"]


def test_unreachable_loopback_image_fails_the_task_with_1402(api: Api) -> None:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        closed_port = probe_socket.getsockname()[1]
    data, _ = api.follow(api.start_task(f"http://127.0.0.1:{closed_port}/x.jpg"))
    assert (data["status"], data["code"]) == ("failed", 1402)


# --- fault switches ---------------------------------------------------------------------------


def test_rate_limited_submit_says_when_to_retry_and_creates_nothing(
    quick_api: Api, quick_backend: LocalBackend
) -> None:
    body = {"prompt": "p", "image": quick_api.upload(picture(32, 32))}
    quick_backend.faults.rate_limit("submit", times=2, retry_after=0.5)

    limited = [quick_api.submit(body), quick_api.submit(body)]
    seen = [(a.status_code, a.headers.get("Retry-After"), a.json()["code"]) for a in limited]
    assert seen == [(429, "0.5", 429)] * 2
    assert quick_backend.tasks_created == 0
    assert quick_api.submit(body).status_code == 200
    assert quick_backend.tasks_created == 1


def test_rate_limit_header_is_whole_seconds_by_default_and_can_be_left_out(
    quick_api: Api, quick_backend: LocalBackend
) -> None:
    quick_backend.faults.rate_limit("upload")
    quick_backend.faults.rate_limit("result", retry_after=None)
    upload = quick_api.http.post(
        quick_api.base + UPLOAD_PATH, files={"file": ("a.jpg", picture(8, 8))}, timeout=5
    )
    result = quick_api.result("0" * 32)
    assert (upload.status_code, upload.headers["Retry-After"]) == (429, "1")
    assert result.status_code == 429 and "Retry-After" not in result.headers


def test_server_errors_come_in_the_order_asked_then_recovery(
    quick_api: Api, quick_backend: LocalBackend
) -> None:
    task_id = quick_api.start_task(quick_api.upload(picture(32, 32)))
    quick_backend.faults.server_errors("result")
    answers = [quick_api.result(task_id) for _ in range(5)]
    assert [a.status_code for a in answers] == [500, 502, 503, 504, 200]
    assert [a.json()["code"] for a in answers[:4]] == [500, 502, 503, 504]


def test_server_error_on_submit_creates_nothing(quick_api: Api, quick_backend: LocalBackend) -> None:
    quick_backend.faults.server_errors("submit", statuses=(503,))
    answer = quick_api.submit({"prompt": "p", "image": quick_api.upload(picture(32, 32))})
    assert answer.status_code == 503
    assert quick_backend.tasks_created == 0


def test_armed_faults_apply_first_come_first_served(quick_api: Api, quick_backend: LocalBackend) -> None:
    quick_backend.faults.rate_limit("result", retry_after=None)
    quick_backend.faults.server_errors("result", statuses=(502,))
    quick_backend.faults.envelope_error("result", code=5003)
    codes = [quick_api.result("0" * 32) for _ in range(4)]
    seen = [(a.status_code, a.json()["code"]) for a in codes]
    assert seen == [(429, 429), (502, 502), (200, 5003), (404, 404)]


def test_failed_task_carries_its_code_and_sentence(start_backend: Callable[..., LocalBackend]) -> None:
    clock = HandClock()
    backend = start_backend(render=False, timing=QUICK, clock=clock)
    api = Api(backend)
    image_url = api.upload(picture(32, 32))
    backend.faults.fail_next_task(code=1403, message="The task failed.")
    data, seen = api.walk(api.start_task(image_url), clock, QUICK)

    assert seen == ["created", "processing", "failed"]
    assert (data["code"], data["error"], data["outputs"]) == (1403, "The task failed.", [])
    data, seen = api.walk(api.start_task(image_url), clock, QUICK)
    assert seen == ["created", "processing", "completed"]


def test_hung_task_stays_processing(start_backend: Callable[..., LocalBackend]) -> None:
    clock = HandClock()  # moved on by hand: long past its due time, without waiting for it
    backend = start_backend(render=False, timing=QUICK, clock=clock)
    api = Api(backend)
    backend.faults.hang_next_task()
    task_id = api.start_task(api.upload(picture(32, 32)))
    clock.advance(QUICK.queue_s + QUICK.processing_s + 60)
    assert api.result(task_id).json()["data"]["status"] == "processing"
    assert backend.task(task_id).completed_at is None


def test_slow_answer_waits_then_answers(quick_api: Api, quick_backend: LocalBackend) -> None:
    quick_backend.faults.slow("result", 0.4)
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        assert quick_api.result("0" * 32).status_code == 404
        timings.append(time.perf_counter() - started)
    assert timings[0] >= 0.4 and timings[1] < 0.2


def test_submit_that_times_out_still_creates_the_task(quick_api: Api, quick_backend: LocalBackend) -> None:
    image_url = quick_api.upload(picture(32, 32))
    quick_backend.faults.slow("submit", 0.5)
    with pytest.raises(requests.ReadTimeout):
        quick_api.submit({"prompt": "p", "image": image_url}, timeout=0.2)
    assert quick_backend.tasks_created == 1


def test_truncated_submit_answer_is_cut_json_but_the_task_exists(
    quick_api: Api, quick_backend: LocalBackend
) -> None:
    image_url = quick_api.upload(picture(32, 32))
    quick_backend.faults.truncate("submit")
    answer = quick_api.submit({"prompt": "p", "image": image_url})

    assert answer.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.text)
    assert answer.text.startswith('{"code":200')
    assert quick_backend.tasks_created == 1


def test_truncated_download_is_half_the_video(quick_api: Api, quick_backend: LocalBackend) -> None:
    data, _ = quick_api.follow(quick_api.start_task(quick_api.upload(picture(32, 32))))
    whole = quick_api.download(data["outputs"][0]).content
    quick_backend.faults.truncate("file")
    half = quick_api.download(data["outputs"][0]).content
    assert half == whole[: len(whole) // 2]


def test_envelope_error_comes_with_http_200(quick_api: Api, quick_backend: LocalBackend) -> None:
    task_id = quick_api.start_task(quick_api.upload(picture(32, 32)))
    quick_backend.faults.envelope_error("result", code=5003, message="service unavailable", times=2)
    answers = [quick_api.result(task_id) for _ in range(3)]
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(200, 5003), (200, 5003), (200, 200)]
    assert answers[0].json()["message"] == "service unavailable"


def test_missing_output_is_listed_but_answers_404(quick_api: Api, quick_backend: LocalBackend) -> None:
    image_url = quick_api.upload(picture(32, 32))
    quick_backend.faults.missing_output()
    broken, _ = quick_api.follow(quick_api.start_task(image_url))
    fine, _ = quick_api.follow(quick_api.start_task(image_url))

    assert broken["status"] == "completed" and len(broken["outputs"]) == 1
    assert quick_api.download(broken["outputs"][0]).status_code == 404
    assert quick_api.download(fine["outputs"][0]).status_code == 200


def test_nsfw_task_is_flagged(quick_api: Api, quick_backend: LocalBackend) -> None:
    image_url = quick_api.upload(picture(32, 32))
    quick_backend.faults.nsfw_next_task()
    flagged, _ = quick_api.follow(quick_api.start_task(image_url))
    clean, _ = quick_api.follow(quick_api.start_task(image_url))
    assert flagged["has_nsfw_contents"] == [True]
    assert clean["has_nsfw_contents"] == [False]


def test_fault_for_an_unknown_kind_is_a_mistake(quick_backend: LocalBackend) -> None:
    with pytest.raises(ValueError):
        quick_backend.faults.rate_limit("download")


# --- the list of predictions and the price --------------------------------------------------


LIST_PATH, PRICING_PATH = "/api/v3/predictions", "/api/v3/model/pricing"


def iso(moment: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(moment, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_the_list_of_predictions_finds_tasks_by_model_status_and_time_newest_first_in_pages(
    start_backend: Callable[..., LocalBackend]
) -> None:
    clock = HandClock()
    backend = start_backend(render=False, timing=QUICK, clock=clock)
    api = Api(backend)
    image_url = api.upload(picture(32, 32))
    made = {}
    for step in range(3):  # three tasks, 100 s apart
        made[clock.now] = api.start_task(image_url, seed=step)
        clock.advance(100)
    first, second, third = (made[at] for at in sorted(made))
    clock.advance(-99.95)  # the newest is still "created"; the others are done

    def listed(**body: Any) -> dict[str, Any]:
        answer = api.http.post(api.base + LIST_PATH, json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["code"] == 200
        return answer.json()["data"]

    everything = listed()  # no dates: the last 24 hours
    assert [item["id"] for item in everything["items"]] == [third, second, first]
    assert everything["total"] == 3 and everything["page"] == 1
    item = everything["items"][1]
    assert set(item) == {"id", "model", "status", "outputs", "created_at", "execution_time", "has_nsfw_contents"}
    assert item["model"] == SKYREELS_V1.name and item["status"] == "completed" and ISO_MS.fullmatch(item["created_at"])
    assert item["outputs"] == [f"{backend.base_url}/files/outputs/{second}.mp4"]
    t0 = min(made)
    middle = listed(created_after=iso(t0 + 50), created_before=iso(t0 + 150), model=SKYREELS_V1.name)
    assert [item["id"] for item in middle["items"]] == [second]
    assert [item["id"] for item in listed(status="created")["items"]] == [third]
    assert listed(model="someone-else/another-model")["items"] == []
    pages = [listed(page=page, page_size=2) for page in (1, 2, 3)]
    assert [[item["id"] for item in page["items"]] for page in pages] == [[third, second], [first], []]
    assert {page["total"] for page in pages} == {3}
    refused = api.http.post(api.base + LIST_PATH, json={"created_after": "last tuesday"}, timeout=10)
    assert refused.status_code == 400 and refused.json()["code"] == 1401
    assert backend.counts["predictions"] == 8


def test_a_task_past_its_seven_days_leaves_the_list(start_backend: Callable[..., LocalBackend]) -> None:
    backend = start_backend(render=False, timing=QUICK)
    api = Api(backend)
    api.start_task(api.upload(picture(32, 32)))
    backend.retention_s = 0.0
    answer = api.http.post(api.base + LIST_PATH, json={}, timeout=10).json()["data"]
    assert answer["items"] == [] and answer["total"] == 0


def test_the_price_of_a_run_is_what_the_backend_is_told_to_answer(quick_api: Api, quick_backend: LocalBackend) -> None:
    def asked(model_id: str = SKYREELS_V1.name) -> requests.Response:
        return quick_api.http.post(
            quick_api.base + PRICING_PATH, json={"model_id": model_id, "inputs": {"seed": -1}}, timeout=10
        )

    assert asked().json()["data"]["unit_price"] == SKYREELS_V1.price_usd  # the listed price by default
    quick_backend.prices[SKYREELS_V1.name] = 0.35
    answer = asked()
    assert answer.status_code == 200 and answer.json()["code"] == 200
    assert answer.json()["data"] == {"model_id": SKYREELS_V1.name, "unit_price": 0.35, "currency": "USD"}
    assert asked("someone-else/another-model").status_code == 404
    no_model = quick_api.http.post(quick_api.base + PRICING_PATH, json={"inputs": {}}, timeout=10)
    assert no_model.status_code == 400 and no_model.json()["code"] == 1400
    quick_backend.retired.add("pricing")
    assert asked().status_code == 404  # as if WaveSpeed had taken the route away
    assert quick_backend.counts["pricing"] == 5


# --- counting ---------------------------------------------------------------------------------


def test_every_request_is_counted_by_route_including_refused_ones(
    quick_api: Api, quick_backend: LocalBackend
) -> None:
    image_url = quick_api.upload(picture(32, 32))
    quick_backend.faults.rate_limit("submit", retry_after=None)
    assert quick_api.submit({"prompt": "p", "image": image_url}).status_code == 429
    task_id = quick_api.start_task(image_url)
    for _ in range(3):
        quick_api.result(task_id)
    anonymous.get(quick_api.base + f"/api/v3/predictions/{task_id}/result", timeout=5)  # no key: 401
    quick_api.download(image_url)

    assert quick_backend.counts == {"upload": 1, "submit": 2, "result": 4, "file": 1}
    assert quick_backend.tasks_created == 1
    assert quick_backend.created_task_ids == [task_id]


# --- the preview video itself -----------------------------------------------------------------


def test_preview_moves_over_the_picture_and_says_it_is_a_preview(tmp_path: Path) -> None:
    grey = Image.new("RGB", (640, 360), (128, 128, 128))
    ImageDraw.Draw(grey).rectangle((280, 140, 360, 220), fill=(20, 40, 220))
    buffer = io.BytesIO()
    grey.save(buffer, "PNG")
    frames = frames_of(render_preview(buffer.getvalue(), tmp_path / "p.mp4", replace(SKYREELS_V1, frame_count=9), frame=(320, 180)))

    first, last = frames[0], frames[-1]
    assert len(frames) == 9
    assert abs(first - last).mean() > 1, "the camera should move"
    assert abs(first[:40, :80] - 128).max() < 12, "the top left is plain picture"
    assert abs(first[-25:, -170:] - 128).max() > 60, "the bottom right carries the preview mark"


def test_sideways_phone_photo_is_turned_upright_before_framing(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees: a portrait photo
    buffer = io.BytesIO()
    Image.open(io.BytesIO(picture(1280, 720))).save(buffer, "JPEG", exif=exif)
    video = render_preview(buffer.getvalue(), tmp_path / "p.mp4", replace(SKYREELS_V1, frame_count=2))
    assert probe(video.read_bytes())["size"] == (544, 960)


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "CMYK"])
def test_unusual_picture_modes_still_render(tmp_path: Path, mode: str) -> None:
    image = Image.open(io.BytesIO(picture(300, 300))).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "TIFF" if mode == "CMYK" else "PNG")
    video = render_preview(buffer.getvalue(), tmp_path / "p.mp4", replace(SKYREELS_V1, frame_count=2))
    assert probe(video.read_bytes())["size"] == (720, 720)


def test_unreadable_bytes_are_not_an_image_and_leave_no_file(tmp_path: Path) -> None:
    with pytest.raises(NotAnImage):
        render_preview(b"GIF89a but not really", tmp_path / "p.mp4", SKYREELS_V1)
    assert list(tmp_path.iterdir()) == []


# --- restarts: tasks outlive the backend, like WaveSpeed's ------------------------------------

SLOW = TaskTiming(queue_s=0.2, processing_s=1.5)
DAY = 24 * 3600


def another_port(than: int) -> int:
    """A free loopback port that is not `than`, so a restarted backend surely moves."""
    while True:
        with socket.socket() as probe_socket:
            probe_socket.bind(("127.0.0.1", 0))
            port = probe_socket.getsockname()[1]
        if port != than:
            return port


def stored(data_dir: Path, task_id: str) -> dict[str, Any]:
    return json.loads((data_dir / "tasks" / f"{task_id}.json").read_text())


def test_task_processing_when_the_backend_stops_is_finished_by_the_next_one(
    start_backend: Callable[..., LocalBackend], tmp_path: Path
) -> None:
    data_dir = tmp_path / "kept"
    first = start_backend(data_dir=data_dir, timing=SLOW)
    api = Api(first)
    task_id = api.start_task(api.upload(picture(1280, 720, tint=31)), prompt="FPS-24, a harbour", seed=9)
    due = first.task(task_id).due_at
    while api.result(task_id).json()["data"]["status"] != "processing":
        time.sleep(0.02)
    first.stop()
    assert time.time() < due, "the task should still be processing when the backend stops"

    second = start_backend(data_dir=data_dir, timing=QUICK, port=another_port(first.port))
    again = Api(second)
    first_answer = again.result(task_id)
    assert first_answer.status_code == 200
    assert first_answer.json()["data"]["status"] == "processing" and time.time() < due
    data, seen = again.follow(task_id)
    record = second.task(task_id)

    assert seen == ["processing", "completed"]
    assert record.completed_at is not None and record.completed_at >= due
    assert data["timings"]["inference"] >= SLOW.processing_s * 1000
    assert (record.prompt, record.seed, record.timing) == ("FPS-24, a harbour", 9, SLOW)
    assert data["urls"]["get"] == f"{second.base_url}/api/v3/predictions/{task_id}/result"
    assert data["outputs"] == [f"{second.base_url}/files/outputs/{task_id}.mp4"]
    video = again.download(data["outputs"][0])
    assert video.status_code == 200
    assert probe(video.content) == {
        "codec": "h264", "pix_fmt": "yuv420p", "size": (960, 544), "fps": 24, "frames": 97,
    }
    assert stored(data_dir, task_id)["render"] is not None
    assert second.tasks_created == 0  # it answers for the task; it did not create it


def test_render_cut_short_by_a_stop_is_done_again_from_the_stored_upload(
    start_backend: Callable[..., LocalBackend], tmp_path: Path
) -> None:
    data_dir = tmp_path / "kept"
    first = start_backend(data_dir=data_dir)
    api = Api(first)
    image_url = api.upload(picture(640, 360, tint=99))
    task_id = api.start_task(image_url, seed=5)
    first.stop()  # right after the answer: nothing has been rendered yet
    on_disk = stored(data_dir, task_id)
    assert on_disk["render"] is None and on_disk["failure"] is None
    assert (on_disk["id"], on_disk["seed"], on_disk["image_url"]) == (task_id, 5, image_url)
    assert on_disk["timing"] == {"queue_s": FAST.queue_s, "processing_s": FAST.processing_s}

    second = start_backend(data_dir=data_dir, port=another_port(first.port))
    data, _ = Api(second).follow(task_id)
    assert data["status"] == "completed", data
    assert probe(Api(second).download(data["outputs"][0]).content)["frames"] == 97
    # The image URL names the old, closed port: the upload was read from the data directory.
    assert (first.counts["file"], second.counts["file"]) == (0, 1)  # only the video download


def test_a_backend_given_no_folder_leaves_nothing_behind_and_one_given_a_folder_keeps_it(tmp_path: Path) -> None:
    # `python -m skyreels_demo local-api` without --data-dir, or a test's backend: each used to
    # leave a folder of uploads and renders in the system's temp folder, for good.
    kept_dir = tmp_path / "kept"
    for data_dir in (None, kept_dir):
        with LocalBackend(data_dir=data_dir, render=False, timing=QUICK) as server:
            api = Api(server)
            task_id = api.start_task(api.upload(picture(64, 64)))
            assert api.follow(task_id)[0]["status"] == "completed"
            folder = server.data_dir
            assert (folder / "tasks" / f"{task_id}.json").is_file()
        assert folder.exists() == (data_dir is not None), folder
    assert stored(kept_dir, task_id)["render"] is not None


def test_finished_tasks_keep_their_outcome_across_a_restart(
    start_backend: Callable[..., LocalBackend], tmp_path: Path
) -> None:
    data_dir = tmp_path / "kept"
    first = start_backend(data_dir=data_dir, render=False, timing=QUICK)
    api = Api(first)
    image_url = api.upload(picture(64, 64))
    first.faults.nsfw_next_task()
    done_id = api.start_task(image_url)
    first.faults.fail_next_task(code=1403, message="The task failed.")
    failed_id = api.start_task(image_url)
    done, _ = api.follow(done_id)
    failed, _ = api.follow(failed_id)
    before = api.download(done["outputs"][0]).content
    first.stop()

    second = start_backend(data_dir=data_dir, port=another_port(first.port))  # this one renders
    again = Api(second)
    done_after = again.result(done_id).json()["data"]
    failed_after = again.result(failed_id).json()["data"]

    assert done_after["status"] == "completed"
    assert done_after["outputs"] == [f"{second.base_url}/files/outputs/{done_id}.mp4"]
    assert done_after["has_nsfw_contents"] == done["has_nsfw_contents"] == [True]
    assert done_after["timings"] == done["timings"]
    assert again.download(done_after["outputs"][0]).content == before
    assert {k: failed_after[k] for k in ("status", "code", "error")} == {
        "status": "failed", "code": 1403, "error": "The task failed.",
    }
    rendered = [path.name for path in (data_dir / "renders").iterdir()]
    assert rendered == ["placeholder.mp4"], "nothing should be rendered again"


def test_housekeeping_deletes_what_is_older_than_seven_days(
    start_backend: Callable[..., LocalBackend], tmp_path: Path
) -> None:
    data_dir = tmp_path / "kept"
    first = start_backend(data_dir=data_dir, render=False, timing=QUICK)
    api = Api(first)
    old_upload = api.upload(picture(32, 32, tint=1))
    old_id = api.start_task(old_upload)
    fresh_id = api.start_task(api.upload(picture(32, 32, tint=2)))
    fresh_upload = first.task(fresh_id).image_url
    api.follow(fresh_id)
    first.stop()

    eight_days_ago = time.time() - 8 * DAY
    old_task = data_dir / "tasks" / f"{old_id}.json"
    record = json.loads(old_task.read_text())
    record["created_at"] = eight_days_ago
    old_task.write_text(json.dumps(record))
    stale = [data_dir / "uploads" / f"{'b' * 32}.jpg", data_dir / "renders" / f"{'c' * 64}.mp4",
             data_dir / "tasks" / f".{'d' * 32}.x.tmp"]
    fresh = [data_dir / "uploads" / f"{'e' * 32}.jpg", data_dir / "renders" / f"{'f' * 64}.mp4"]
    for path in stale + fresh:
        path.write_bytes(b"x")
    for path in stale:
        os.utime(path, (eight_days_ago, eight_days_ago))
    # An old upload that a task still within its seven days points at stays.
    still_needed = data_dir / "uploads" / fresh_upload.rsplit("/", 1)[1]
    os.utime(still_needed, (eight_days_ago, eight_days_ago))
    unreadable = data_dir / "tasks" / f"{'0' * 32}.json"
    unreadable.write_text("{not json")

    second = start_backend(data_dir=data_dir, render=False, timing=QUICK, port=another_port(first.port))
    again = Api(second)

    assert not old_task.exists()
    assert again.result(old_id).status_code == 404
    assert again.result(fresh_id).json()["data"]["status"] == "completed"
    assert (data_dir / "tasks" / f"{fresh_id}.json").exists()
    assert [path for path in stale if path.exists()] == []
    assert all(path.exists() for path in fresh + [still_needed, unreadable])


# --- what the backend depends on -------------------------------------------------------------


def local_api_modules() -> list[str]:
    import pkgutil

    import skyreels_demo.local_api as package

    found = [package.__name__]
    found += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return found


def imported_names(module: Any) -> set[str]:
    """Every module name an import statement in the module's source names, relative ones resolved."""
    import ast

    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    package = module.__name__ if module.__file__.endswith("__init__.py") else module.__name__.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # `from skyreels_demo import config` names the module skyreels_demo.config.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_backend_needs_nothing_of_the_app_but_the_core_values() -> None:
    import importlib

    allowed = ("skyreels_demo.models", "skyreels_demo.status", "skyreels_demo.times", "skyreels_demo.local_api")
    modules = local_api_modules()
    assert "skyreels_demo.local_api.routes.llm" in modules and "skyreels_demo.local_api.pusher" in modules
    borrowed = {}
    for name in modules:
        ours = {
            imported
            for imported in imported_names(importlib.import_module(name))
            if imported.split(".")[0] == "skyreels_demo"
            and not any(imported == a or imported.startswith(a + ".") for a in allowed)
        }
        if ours:
            borrowed[name] = sorted(ours)
    assert borrowed == {}


def test_the_backend_reads_the_idea_from_the_question_the_studio_asks() -> None:
    from skyreels_demo.studio import prompts
    from skyreels_demo.local_api.routes.llm import idea_in

    assert idea_in(prompts.ask("she laughs, then looks away")) == "she laughs, then looks away"
    assert idea_in(prompts.ask("")) == ""
    assert idea_in("Write a prompt.\nSomething else: she laughs") == ""


def test_the_webhook_pusher_stops_and_can_be_joined(tmp_path: Path) -> None:
    with LocalBackend(render=False, timing=QUICK, data_dir=tmp_path / "backend") as backend:
        pusher = backend.pusher
        assert pusher.is_alive()
    pusher.join(timeout=5)  # raised TypeError while `_stop` shadowed Thread._stop
    assert not pusher.is_alive()
