"""A public Space on its owner's key, attacked as a hostile visitor would: with nothing but
gradio_client and plain HTTP. Who a visitor is comes from what the server sees (here the
address the Space's proxy reports, which the tests play), never from anything a client sends."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
import requests
from gradio_client import Client
from gradio_client.exceptions import AppError

from skyreels_demo.local_api import LocalBackend, TaskTiming

from .conftest import ROOT, LaunchedApp, open_store, video_facts
from .test_app import generate


def visitor_from(space, address: str, spoofed: str = "") -> Client:
    """A client as the Space's proxy delivers it: the proxy appends the address it saw."""
    forwarded = f"{spoofed}, {address}" if spoofed else address
    return Client(space.url, verbose=False, headers={"X-Forwarded-For": forwarded})


@pytest.fixture(scope="module")
def owner_backend():
    with LocalBackend(timing=TaskTiming(0.2, 0.6), render=False) as server:
        yield server


@pytest.fixture(scope="module")
def space(tmp_path_factory, owner_backend):
    env = dict(
        WAVESPEED_BASE_URL=owner_backend.base_url,
        WAVESPEED_API_KEY="fake-owner-key",
        SPACE_ID="someone/skyreels-studio",
        SKYREELS_VISITOR_RUNS_PER_HOUR="2",
    )
    with LaunchedApp(tmp_path_factory.mktemp("space"), **env) as launched:
        yield launched


def test_a_visitor_rotating_clients_and_spoofed_headers_stays_within_the_hourly_cap(space, owner_backend):
    before = owner_backend.tasks_created
    made, refused = 0, []
    # Every call a fresh client (a fresh session, a fresh browser id) and a made-up address in
    # front of the one the proxy saw: still one visitor.
    for attempt in range(5):
        visitor = visitor_from(space, "198.51.100.7", spoofed=f"10.0.0.{attempt}")
        try:
            status, video, summary = generate(visitor, f"a woman smiles, take {attempt}").result()
            made += 1
        except AppError as exc:
            refused.append(str(exc))
    assert made == 2 and owner_backend.tasks_created == before + 2
    assert len(refused) == 3 and all("paste your own WaveSpeed key" in text for text in refused)

    # Another visitor still has their own allowance; a key of one's own has no cap at all.
    status, video, summary = generate(visitor_from(space, "203.0.113.9"), "a man nods").result()
    assert video_facts(video)["frames"] == 97
    for prompt in ("a child laughs", "a child jumps"):
        status, video, summary = generate(
            visitor_from(space, "198.51.100.7"), prompt, key="visitor-own-key"
        ).result()
        assert Path(video).exists()


def test_simultaneous_calls_at_the_cap_s_edge_overshoot_by_nothing(space, owner_backend):
    before = owner_backend.tasks_created
    outcomes: list[str] = []

    def call(n: int) -> None:
        try:
            generate(visitor_from(space, "192.0.2.44"), f"a dog runs, take {n}").result()
            outcomes.append("made")
        except AppError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=call, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert outcomes.count("made") == 2, outcomes
    assert owner_backend.tasks_created == before + 2
    runs = [r for r in open_store(Path(space.data_dir)).recent(limit=100) if r.requester == "ip:192.0.2.44"]
    assert sum(r.status != "refused" for r in runs) == 2


def test_an_upload_over_the_image_limit_is_refused_at_the_door(space, tmp_path):
    big = tmp_path / "huge.png"
    with open(big, "wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n" + b"\0" * (60 * 1024 * 1024))
    with open(big, "rb") as file:
        answer = requests.post(space.url + "gradio_api/upload", files={"files": ("huge.png", file)}, timeout=60)
    assert answer.status_code == 413
    kept = [p for p in Path(space.data_dir).rglob("*") if p.is_file() and p.stat().st_size > 50_000_000]
    assert kept == []


@pytest.fixture(scope="module")
def preview_space(tmp_path_factory):
    env = dict(SKYREELS_SHARED="1", SKYREELS_PREVIEW_RUNS_PER_HOUR="2", SKYREELS_PREVIEW_TIMING="0.1,0.3",
               SKYREELS_PREVIEW_RENDERS="0")
    with LaunchedApp(tmp_path_factory.mktemp("preview-space"), **env) as launched:
        yield launched


def test_a_preview_flood_from_one_address_is_capped(preview_space):
    made, refused = 0, 0
    for attempt in range(5):
        try:
            generate(Client(preview_space.url, verbose=False), f"a cat blinks, take {attempt}").result()
            made += 1
        except AppError as exc:
            assert "offline previews in the last hour" in str(exc)
            refused += 1
    assert (made, refused) == (2, 3)
    runs = open_store(Path(preview_space.data_dir)).recent(limit=20)
    assert sum(r.status == "done" for r in runs) == 2


@pytest.mark.parametrize(
    "env, shared",
    [
        ({}, False),
        ({"GRADIO_SERVER_NAME": "127.0.0.1"}, False),
        ({"GRADIO_SERVER_NAME": "0.0.0.0"}, True),
        ({"GRADIO_SERVER_NAME": "::"}, True),
        ({"SPACE_ID": "someone/space"}, True),
        ({"GRADIO_SERVER_NAME": "0.0.0.0", "SKYREELS_SHARED": "0"}, False),
    ],
)
def test_an_app_listening_beyond_loopback_is_shared_by_default(env, shared):
    from skyreels_demo.config import Settings

    assert Settings.from_env(env).shared is shared


def _call_raw(app_url: str, fn_index: int, data: list, session: str) -> str:
    """Call one event through the queue's plain HTTP, as a script would; the stream's text."""
    joined = requests.post(
        app_url + "gradio_api/queue/join",
        json={"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None},
        timeout=10,
    )
    if joined.status_code != 200:
        return joined.text
    with requests.get(app_url + "gradio_api/queue/data", params={"session_hash": session}, stream=True, timeout=30) as stream:
        lines = []
        for line in stream.iter_lines(decode_unicode=True):
            lines.append(line or "")
            if "process_completed" in (line or ""):
                break
        return "\n".join(lines)


JUNK = [None, 7, -1.5, True, {"path": "/etc/passwd"}, ["x"] * 3, "x" * 10_000, "../../runs.sqlite3"]


def test_private_handlers_take_junk_without_a_traceback_or_a_leak(space):
    config = requests.get(space.url + "config", timeout=10).json()
    log_before = Path(space.log_path).read_text()
    private = [
        (index, dep)
        for index, dep in enumerate(config["dependencies"])
        if dep.get("api_visibility") == "private" and dep.get("backend_fn") and dep.get("queue") is not False
    ]
    assert private, "expected the page's own handlers"
    for index, dep in private:
        for junk in JUNK:
            text = _call_raw(space.url, index, [junk] * len(dep["inputs"]), f"junk-{index}-{JUNK.index(junk)}")
            # Gradio may echo the junk back in its refusal; what must never show is ours.
            assert "Traceback" not in text and str(space.data_dir) not in text and str(ROOT) not in text
            assert "root:x:0" not in text  # nothing read from a path a client named
    # None of our handlers failed on it (Gradio may log its own refusal of malformed event data).
    new_log = Path(space.log_path).read_text()[len(log_before):]
    ours = [block for block in new_log.split("Traceback")[1:] if re.search(r'File "[^"]*skyreels_demo/', block)]
    assert not ours, ours[0][-3000:]


def test_the_queue_cannot_be_skipped_through_the_run_route(space, owner_backend):
    # /gradio_api/run/<name> would run outside the queue and its concurrency limits. Refused means
    # Gradio's own refusal of the route: any other failure (our handler choking on the junk
    # below) would mean the call got through to the handler.
    before = owner_backend.tasks_created
    answer = requests.post(space.url + "gradio_api/run/generate", json={"data": ["x", None, 1]}, timeout=10)
    assert answer.status_code == 404, answer.text
    assert "does not accept direct HTTP POST requests" in answer.json()["detail"]
    assert owner_backend.tasks_created == before


@pytest.mark.parametrize(
    "forwarded, address",
    [
        ("198.51.100.7", "198.51.100.7"),
        ("10.9.9.9, 198.51.100.7", "198.51.100.7"),  # a made-up entry first: ignored
        ("198.51.100.7, 10.1.2.3, 172.16.0.9", "198.51.100.7"),  # the platform's inner hops: passed over
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),  # a household's /64 is one visitor
        ("", None),  # no header behind a proxy that always sends one: not trusted
    ],
)
def test_the_visitor_s_address_is_the_one_the_proxy_saw(forwarded, address):
    from skyreels_demo.studio.visitors import client_address

    assert client_address("10.0.0.1", {"X-Forwarded-For": forwarded} if forwarded else {}, 1) == address
