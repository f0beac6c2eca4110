"""Closed by default: a shared `python app.py` on loopback, called as a stranger would call it,
names only what it was given and keeps only what each input's kind allows."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from skyreels_demo.local_api import LocalBackend, TaskTiming

from .conftest import ASTRONAUT, LaunchedApp

OWNER_KEY = "owner-key-not-secret-closed-0123"
FILE = {"_type": "gradio.FileData"}


@pytest.fixture(scope="module")
def api():
    with LocalBackend(api_key=OWNER_KEY, timing=TaskTiming(0.1, 0.3), render=False) as server:
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


def press(space, api_name: str, data: list, session: str) -> list:
    """One of the page's own events, as a browser's page sends it (its session, its History id
    among the inputs): the outputs it answers with."""
    index = next(d["id"] for d in config(space)["dependencies"] if d.get("api_name") == api_name)
    body = {"data": data, "fn_index": index, "session_hash": session, "event_data": None, "trigger_id": None}
    assert requests.post(space.url + "gradio_api/queue/join", json=body, timeout=10).status_code == 200
    with requests.get(space.url + "gradio_api/queue/data", params={"session_hash": session}, stream=True, timeout=60) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            message = json.loads(line[5:]) if line and line.startswith("data:") else {}
            if message.get("msg") == "process_completed":
                assert message.get("success"), message
                return message["output"]["data"]
    raise AssertionError(f"{api_name} never completed")


def test_continue_this_shot_refuses_another_browsers_take(space):
    """Browser B presses "Continue this shot" on browser A's take, as the page sends it: refused
    beside the button, B's picture and prompt untouched, no frame of A's made; A still can, and
    an API caller (no History) is refused A's take with the same sentence."""
    from skyreels_demo.web.page_input import NOT_YOURS

    browser_a, browser_b = "a" * 32, "b" * 32  # each browser's private History id
    upload = requests.post(space.url + "gradio_api/upload", files={"files": open(ASTRONAUT, "rb")}, timeout=10).json()
    picture = {"path": upload[0], "meta": FILE}
    _status, video, _summary = press(space, "generate_in_page", ["a woman smiles", picture, 3, True, "crop", "", browser_a], "page-a")
    assert video and video["path"].endswith(".mp4")
    frames = space.data_dir / "frames"
    before = files_under(frames)

    image, prompt, said = press(space, "frame_to_continue", [video, -1, browser_b], "page-b")
    assert said == NOT_YOURS
    assert image == prompt == {"__type__": "update"}  # left as they were
    assert files_under(frames) == before  # nothing of A's read into a frame

    image, prompt, said = press(space, "frame_to_continue", [video, -1, browser_a], "page-a2")
    assert said == "" and image["path"].endswith("-last.png") and "What happens next?" in prompt["placeholder"]

    client = Client(space.url, verbose=False)
    with pytest.raises(AppError, match=NOT_YOURS):
        client.predict(handle_file(video["url"]), "she turns to the window", 4, api_name="/continue_shot")


# --- MCP callers: each is who its own connection says, and an inline picture is an upload ------


@pytest.fixture(scope="module")
def mcp_space(tmp_path_factory):
    root = tmp_path_factory.mktemp("closed-mcp")
    uploads = root / "gradio-cache"
    with LaunchedApp(
        root / "data",
        GRADIO_MCP_SERVER="True",
        SKYREELS_SHARED="1",
        SKYREELS_PROXY_HOPS="0",
        SKYREELS_PREVIEW_RUNS_PER_HOUR="1",
        SKYREELS_UPLOAD_MB_PER_HOUR="1",
        SKYREELS_PREVIEW_TIMING="0.1,0.3",
        GRADIO_TEMP_DIR=str(uploads),
    ) as app:
        app.uploads = uploads
        yield app


def call_tool_from(app, source: str, name: str, arguments: dict):
    """One MCP tool call with the official client, its connections made from `source`."""
    import asyncio

    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def run():
        transport = httpx.AsyncHTTPTransport(local_address=source)
        async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(60, read=120)) as http:
            async with streamable_http_client(app.url + "gradio_api/mcp/", http_client=http) as (read, write, _):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await session.call_tool(name, arguments)

    return asyncio.run(run())


def inline_picture(seed: int) -> str:
    import base64

    from .conftest import jpeg_bytes, photo

    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(photo(1500, 1100, seed=seed))).decode()


def words(result) -> str:
    return " ".join(item.text for item in result.content if item.type == "text")


def test_two_mcp_callers_from_two_addresses_are_two_visitors(mcp_space):
    picture = inline_picture(1)
    first = call_tool_from(mcp_space, "127.0.0.2", "skyreels_generate_video", {"prompt": "a cat", "image": picture})
    assert not first.isError, words(first)
    again = call_tool_from(mcp_space, "127.0.0.2", "skyreels_generate_video", {"prompt": "a cat", "image": picture})
    assert again.isError and "preview" in words(again).lower()  # one preview an hour each, in the caps' words
    other = call_tool_from(mcp_space, "127.0.0.3", "skyreels_generate_video", {"prompt": "a dog", "image": picture})
    assert not other.isError, words(other)  # before: every MCP caller was 127.0.0.1, one visitor


def test_inline_pictures_count_against_the_callers_upload_allowance(mcp_space):
    """Each inline picture is kept as the caller's upload (before, each went to Gradio's temporary
    folder, counted by nothing and never swept: 1.2 GB a minute)."""
    sizes = []
    outcomes = []
    before = sum(p.stat().st_size for p in files_under(mcp_space.uploads))
    for n in range(8):
        picture = inline_picture(10 + n)
        sizes.append(len(picture) * 3 // 4)
        # An empty prompt: refused by the run, but only after the picture was kept as an upload.
        result = call_tool_from(mcp_space, "127.0.0.4", "skyreels_generate_video", {"prompt": " ", "image": picture})
        outcomes.append(words(result))
        if "uploaded" in outcomes[-1]:
            break
    assert all(200_000 < size < 700_000 for size in sizes), sizes  # a body under the 1 MB limit
    assert "Write a prompt first" in outcomes[0]
    assert outcomes[-1].startswith("You have uploaded 1 MB this hour"), outcomes
    grown = sum(p.stat().st_size for p in files_under(mcp_space.uploads)) - before
    # Kept once as the caller's upload and once as Gradio's own copy of it: twice the allowance,
    # in the folder the app was given (both copies of the first picture, at least).
    assert 2 * sizes[0] <= grown <= 2 * 1024 * 1024 + 2 * max(sizes)


def test_a_caller_header_a_client_writes_makes_no_one_else():
    from skyreels_demo.studio.visitors import CALLER_HEADER, Requester, identify, seal

    forged = {CALLER_HEADER: "ip:127.0.0.9|0|" + "0" * 64}
    assert identify(username=None, peer="127.0.0.5", headers=forged, proxy_hops=0).key == "ip:127.0.0.5"
    sealed = {CALLER_HEADER: seal(Requester("ip:127.0.0.9"))}
    assert identify(username=None, peer="127.0.0.1", headers=sealed, proxy_hops=0).key == "ip:127.0.0.9"
    # A sealed header is believed from the app's own loopback call only.
    assert identify(username=None, peer=None, headers=sealed, proxy_hops=0).key != "ip:127.0.0.9"
