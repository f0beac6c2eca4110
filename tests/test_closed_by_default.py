"""Closed by default: a shared `python app.py` on loopback, called as a stranger would call it,
names only what it was given and keeps only what each input's kind allows."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
from gradio_client import Client, handle_file

from skyreels_demo.local_api import LocalBackend, TaskTiming

from .conftest import ASTRONAUT, LaunchedApp

OWNER_KEY = "owner-key-not-secret-closed-0123"
FILE = {"_type": "gradio.FileData"}


@pytest.fixture(scope="module")
def api():
    with LocalBackend(api_key=OWNER_KEY, timing=TaskTiming(0.1, 0.3)) as server:
        yield server


@pytest.fixture(scope="module")
def space(api, tmp_path_factory):
    root = tmp_path_factory.mktemp("closed")
    uploads = root / "gradio-cache"
    with LaunchedApp(
        root / "data",
        WAVESPEED_API_KEY=OWNER_KEY,
        WAVESPEED_BASE_URL=api.base_url,
        SKYREELS_SHARED="1",
        SKYREELS_PROXY_HOPS="0",
        SKYREELS_POLL="0.1",
        GRADIO_TEMP_DIR=str(uploads),
    ) as app:
        app.uploads = uploads
        yield app


def config(space) -> dict:
    return requests.get(space.url + "config", timeout=10).json()


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def served_quickly(space) -> float:
    started = time.monotonic()
    assert requests.get(space.url + "gradio_api/info", timeout=8).status_code == 200
    return time.monotonic() - started


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("named", ["/dev/zero", "/proc/self/environ", "/etc/shadow", "{data}/runs.sqlite3",
                                   "{uploads}/../../../../etc/hostname", "/no/such/file"])
def test_a_server_file_named_as_the_picture_is_refused_unopened(space, named):
    before = files_under(space.uploads)
    path = named.format(data=space.data_dir, uploads=space.uploads)
    body = {"data": ["a cat", {"path": path, "meta": FILE}, 7, False, "16:9", ""]}
    answer = requests.post(space.url + "gradio_api/call/generate", json=body, timeout=10)
    assert answer.status_code == 403
    # The same sentence whether the file exists or not: the answer tells nothing about the disk.
    assert answer.json()["detail"].startswith("That file was not uploaded to this app, so it was not opened")
    assert served_quickly(space) < 3.0  # /dev/zero wedged the event loop for every visitor
    assert files_under(space.uploads) == before  # nothing copied into Gradio's cache to be served


def test_private_events_and_queue_joins_are_held_to_the_same_rule(space):
    continue_frame = next(d["id"] for d in config(space)["dependencies"] if d.get("api_name") == "frame_to_continue")
    body = {"data": [{"path": "/proc/self/environ", "meta": FILE}, 0, None], "fn_index": continue_frame,
            "session_hash": "stranger"}
    answer = requests.post(space.url + "gradio_api/queue/join", json=body, timeout=10)
    assert answer.status_code == 403
    assert OWNER_KEY not in answer.text


def test_a_picture_uploaded_to_the_app_still_makes_a_video(space):
    client = Client(space.url, verbose=False)
    status, video, _summary = client.predict("a woman smiles", handle_file(str(ASTRONAUT)), 7, api_name="/generate")
    assert video and Path(video["video"] if isinstance(video, dict) else video).suffix == ".mp4"


def test_oversized_values_in_every_input_of_every_event_are_refused_and_keep_nothing(space):
    """20 sessions send ~0.9 MB in every input that is not a text box, to every event, public
    or private: each call is refused before Gradio keeps a byte. The +100 MB margin allows for a
    loaded 2-core machine; before the rules, 60 such sessions kept +520 MB for 20 minutes."""
    blob = "x" * 900_000
    dependencies = [d for d in config(space)["dependencies"] if d.get("inputs")]
    components = {c["id"]: c for c in config(space)["components"]}
    start = rss_mb(space.process.pid)
    calls = 0
    with requests.Session() as http:
        for session in range(20):
            for dependency in dependencies:
                kinds = [components[i].get("type") for i in dependency["inputs"]]
                if all(kind == "textbox" for kind in kinds):
                    continue
                data = [None if kind == "textbox" else blob for kind in kinds]
                body = {"data": data, "fn_index": dependency["id"], "session_hash": f"big{session}"}
                answer = http.post(space.url + "gradio_api/queue/join", data=json.dumps(body), timeout=15)
                calls += 1
                assert answer.status_code in (413, 422), (dependency.get("api_name"), answer.status_code)
    assert calls >= 20 * 20
    assert rss_mb(space.process.pid) - start < 100
    assert served_quickly(space) < 3.0


def test_a_call_by_parameter_names_that_gives_none_gets_a_sentence_not_a_500(space):
    answer = requests.post(space.url + "gradio_api/call/v2/generate", json={}, timeout=10)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("/generate needs ")
    unknown = requests.post(space.url + "gradio_api/call/v2/generate", json={"prompt": "x", "colour": 1}, timeout=10)
    assert unknown.status_code == 422 and "no input named 'colour'" in unknown.json()["detail"]


def test_an_event_named_in_another_spelling_is_bounded_as_its_number(space):
    generate = next(d["id"] for d in config(space)["dependencies"] if d.get("api_name") == "generate")
    for spelling in (str(generate), float(generate), f"0{generate}"):
        body = {"data": ["p" * 100_000, None, 7, False, "16:9", ""], "fn_index": spelling, "session_hash": "spelt"}
        answer = requests.post(space.url + "gradio_api/queue/join", json=body, timeout=10)
        assert answer.status_code == 413, spelling
        assert "at most 2000 characters" in answer.json()["detail"]
