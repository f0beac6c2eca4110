"""A public Space, attacked as a stranger would: Gradio's own doors (uploads, deep links, bodies,
session state) are bounded, a key is used and forgotten, and no header a client writes makes it
someone else. Everything runs against `python app.py` in shared mode on loopback."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import requests
from gradio_client import Client, handle_file

from skyreels_demo.local_api import LocalBackend, TaskTiming

from .conftest import ASTRONAUT, LaunchedApp

OWNER_KEY = "owner-key-not-secret-0123"
# Shaped like a key, so a leak would be plain to see in any file or log.
VISITOR_KEY = "wsk-visitor-9f8e7d6c5b4a39281706"


@pytest.fixture(scope="module")
def api():
    with LocalBackend(api_key=OWNER_KEY, timing=TaskTiming(0.2, 0.5)) as server:
        yield server


@pytest.fixture(scope="module")
def space(api, tmp_path_factory):
    root = tmp_path_factory.mktemp("space")
    uploads = root / "gradio-cache"
    with LaunchedApp(
        root / "data",
        WAVESPEED_API_KEY=OWNER_KEY,
        WAVESPEED_BASE_URL=api.base_url,
        SKYREELS_SHARED="1",
        SKYREELS_PROXY_HOPS="0",
        SKYREELS_VISITOR_RUNS_PER_HOUR="1",
        SKYREELS_POLL="0.1",
        GRADIO_TEMP_DIR=str(uploads),
    ) as app:
        app.uploads = uploads
        yield app


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def fn_index(space, api_name: str) -> int:
    config = requests.get(space.url + "config", timeout=10).json()
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)


# --- uploads, deep links and bodies ----------------------------------------------------------


def test_gradios_own_doors_are_bounded_in_the_launched_space(space):
    """The door is in front of the launched app: a sixth file, a deep link and a body over its
    length are refused there, keeping nothing. How the door bounds each (mid-stream cut-offs,
    memory held flat over 200 sessions and a 200 MB stream, a laptop's door) is test_door.py's,
    in-process: the same attacks, sent again to a second process, checked nothing more."""
    before = files_under(space.uploads)
    files = [("files", (f"f{i}.jpg", os.urandom(50_000), "image/jpeg")) for i in range(6)]
    answer = requests.post(space.url + "gradio_api/upload", files=files, timeout=30)
    assert answer.status_code == 413
    assert "at most 5 files" in answer.json()["detail"]
    assert files_under(space.uploads) - before == set()
    answer = requests.get(space.url + "gradio_api/deep_link", params={"session_hash": "x" * 12}, timeout=10)
    assert answer.status_code == 404
    assert files_under(space.uploads) == before and not (space.uploads / "deep_links").exists()
    index = fn_index(space, "generate")
    body = json.dumps({"data": ["x" * 2_000_000], "fn_index": index, "session_hash": "s" * 11}).encode()
    assert requests.post(space.url + "gradio_api/queue/join", data=body, timeout=30).status_code == 413
    prompt = {"data": ["x" * 900_000, None, 1, True, "crop", ""], "fn_index": index, "session_hash": "t" * 11}
    assert requests.post(space.url + "gradio_api/queue/join", json=prompt, timeout=30).status_code == 413
    # Five files are fine.
    answer = requests.post(space.url + "gradio_api/upload", files=files[:5], timeout=30)
    assert answer.status_code == 200 and len(answer.json()) == 5


# --- a key is used and forgotten -------------------------------------------------------------


def everything_written(space) -> str:
    """Every file the app wrote (its data directory, Gradio's cache) and its log, as text."""
    texts = [space.log_path.read_bytes()]
    for path in files_under(Path(space.data_dir)) | files_under(space.uploads):
        texts.append(path.read_bytes())
    return b"\n".join(texts).decode("utf-8", "replace")


def test_a_key_with_a_line_break_is_refused_and_written_nowhere(space, api):
    client = Client(space.url, verbose=False)
    crafted = VISITOR_KEY + "\nX-Evil: 1"
    before = sum(api.counts.values())
    with pytest.raises(Exception, match="line breaks or other invisible characters"):
        client.predict("a woman smiles", handle_file(ASTRONAUT), 3, True, "crop", crafted, api_name="/generate")
    assert sum(api.counts.values()) == before  # no request at all
    time.sleep(0.5)
    written = everything_written(space)
    assert VISITOR_KEY not in written and "X-Evil" not in written


def test_five_refused_keys_cut_a_visitor_off_before_any_request(space, api):
    client = Client(space.url, verbose=False)
    for n in range(5):
        with pytest.raises(Exception, match="API key was refused"):
            client.predict("a man waves", handle_file(ASTRONAUT), n, True, "crop", f"{VISITOR_KEY}-{n}", api_name="/generate")
    before = dict(api.counts)
    with pytest.raises(Exception, match="refused 5 keys from you in the last hour"):
        client.predict("a man waves", handle_file(ASTRONAUT), 9, True, "crop", f"{VISITOR_KEY}-6", api_name="/generate")
    assert dict(api.counts) == before  # no upload, no balance check, nothing
    written = everything_written(space)
    assert VISITOR_KEY not in written
    # A refused key's run keeps no prepared image.
    images = files_under(Path(space.data_dir) / "images")
    assert images == set()


# --- who a visitor is -------------------------------------------------------------------------


def test_a_forwarded_header_from_a_loopback_client_does_not_make_a_new_visitor(space):
    # One video an hour per visitor; the second caller claims to be someone else.
    first = Client(space.url, verbose=False, headers={"X-Forwarded-For": "198.51.100.1"})
    status, video, summary = first.predict("a cat blinks", handle_file(ASTRONAUT), 1, api_name="/generate")
    assert video
    second = Client(space.url, verbose=False, headers={"X-Forwarded-For": "198.51.100.2"})
    with pytest.raises(Exception, match="You have made 1 videos in the last hour"):
        second.predict("a cat blinks again", handle_file(ASTRONAUT), 2, api_name="/generate")

