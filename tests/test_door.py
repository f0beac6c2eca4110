"""The door against a real Gradio app on loopback, as a hostile visitor would try it."""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import gradio as gr
import pytest
import requests
import uvicorn
from fastapi import FastAPI
from python_multipart.multipart import MultipartParser

from skyreels_demo.web.door import (
    MB,
    Door,
    DoorLimits,
    session_limits,
    visitor_by_address,
)
from skyreels_demo.web.upload_parts import PartCount
from skyreels_demo.web.event_inputs import EventInputs, events_of

SHARED = DoorLimits(shared=True, upload_bytes_per_hour=2 * MB, upload_folder_bytes=1000 * MB)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def files_in(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A tiny Blocks (a 20-character box echoed, a file and an image box) behind the door."""
    folder = tmp_path_factory.mktemp("gradio-uploads")
    old = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(folder)  # where Gradio's App writes uploads
    try:
        with gr.Blocks() as demo:
            box = gr.Textbox(max_length=20)
            out = gr.Textbox()
            box.submit(lambda text: text, box, out, api_name="echo")
            gr.File(file_count="multiple")
            gr.Image(type="filepath")
        demo.queue()
        app = gr.mount_gradio_app(FastAPI(), demo, path="/")
        clock = Clock()
        door = Door(
            app, SHARED, visitor=visitor_by_address(1), inputs=EventInputs(events_of(demo), [folder]), folder=folder,
            clock=clock,
        )
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(door, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                requests.get(base + "/gradio_api/info", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        yield type("Studio", (), dict(base=base, door=door, folder=folder, clock=clock, demo=demo))
        server.should_exit = True
        thread.join(timeout=5)
    finally:
        if old is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = old


@pytest.fixture
def door(studio, monkeypatch):
    monkeypatch.setattr(studio.door, "limits", SHARED)
    return studio.door


def upload(studio, sizes: list[int], visitor: str) -> requests.Response:
    files = [("files", (f"f{i}.bin", os.urandom(size))) for i, size in enumerate(sizes)]
    return requests.post(
        studio.base + "/gradio_api/upload", files=files, headers={"X-Forwarded-For": visitor}, timeout=30
    )


def settled(folder: Path, before: set[Path]) -> set[Path]:
    """Files new since `before`, once Gradio has finished with the request."""
    for _ in range(20):
        new = files_in(folder) - before
        if not new:
            return new
        time.sleep(0.05)
    return new


def test_sixth_file_in_one_upload_is_refused_and_nothing_of_it_is_kept(studio, door):
    before = files_in(studio.folder)
    answer = upload(studio, [1000] * 6, "198.51.100.1")
    assert answer.status_code == 413
    assert "at most 5 files" in answer.json()["detail"]
    assert settled(studio.folder, before) == set()
    assert upload(studio, [1000] * 5, "198.51.100.1").status_code == 200


def test_sixth_file_streamed_after_five_written_is_refused_and_all_six_are_deleted(studio, door):
    boundary = "six-files"

    written_before_sixth = []

    def body():  # each part its own chunk: Gradio has written five files when the sixth comes
        for n in range(6):
            if n == 5:
                for _ in range(40):
                    if len(files_in(studio.folder) - before) == 5:
                        break
                    time.sleep(0.025)
                written_before_sixth.append(len(files_in(studio.folder) - before))
            yield (
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"f{n}.bin\"\r\n\r\n"
            ).encode() + os.urandom(100_000) + b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    before = files_in(studio.folder)
    answer = requests.post(
        studio.base + "/gradio_api/upload",
        data=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "X-Forwarded-For": "198.51.100.2"},
        timeout=30,
    )
    assert answer.status_code == 413
    assert written_before_sixth == [5]
    assert settled(studio.folder, before) == set()


def test_visitor_past_hourly_upload_budget_gets_429_and_another_visitor_still_uploads(studio, door):
    before = files_in(studio.folder)
    assert upload(studio, [1_500_000], "203.0.113.5").status_code == 200
    answer = upload(studio, [1_000_000], "203.0.113.5")
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) > 0
    assert len(files_in(studio.folder) - before) == 1  # the refused upload left nothing
    # A client-written X-Forwarded-For entry before the proxy's does not make a new visitor.
    assert upload(studio, [1_000_000], "10.9.9.9, 203.0.113.5").status_code == 429
    assert upload(studio, [1_000_000], "203.0.113.6").status_code == 200


def test_hourly_budget_is_counted_mid_stream_for_a_chunked_upload(studio, door):
    boundary = "door-test-boundary"

    def body():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.bin\"\r\n\r\n").encode()
        for _ in range(400):  # 25 MB, far past the 2 MB hour
            yield b"\x01" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    before = files_in(studio.folder)
    answer = requests.post(
        studio.base + "/gradio_api/upload",
        data=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "X-Forwarded-For": "203.0.113.20"},
        timeout=30,
    )
    assert answer.status_code == 429
    assert settled(studio.folder, before) == set()


def test_full_upload_folder_refuses_then_makes_room_from_expired_uploads(studio, door, monkeypatch):
    used = door.folder_bytes(rescan=True)
    monkeypatch.setattr(door, "limits", replace(SHARED, upload_folder_bytes=used + 1_500_000))
    assert upload(studio, [1_000_000], "192.0.2.1").status_code == 200
    answer = upload(studio, [1_000_000], "192.0.2.2")
    assert answer.status_code == 507
    studio.clock.now += 16 * 60  # what is there is now past its 15 minutes, and no run holds it
    assert upload(studio, [1_000_000], "192.0.2.3").status_code == 200


def test_sweeper_deletes_an_old_unheld_upload_and_keeps_a_held_one(studio, door):
    first = Path(upload(studio, [1000], "192.0.2.10").json()[0])
    second = Path(upload(studio, [1001], "192.0.2.11").json()[0])
    assert first.exists() and second.exists()
    assert door.sweep(lambda: {str(second)}) == 0  # not 15 minutes old yet
    studio.clock.now += 15 * 60 + 1
    door.sweep(lambda: {str(second)})
    assert not first.exists() and not first.parent.exists()
    assert second.exists()


def test_deep_link_is_refused_and_writes_nothing(studio, door, monkeypatch):
    session = "deep-link-session"
    join = requests.post(
        studio.base + "/gradio_api/queue/join",
        json={"data": ["my secret key"], "fn_index": echo_index(studio), "session_hash": session},
        timeout=10,
    )
    assert join.status_code == 200  # the session now has values a deep link would write out
    before = files_in(studio.folder)
    for shared in (True, False):  # a laptop refuses them too
        monkeypatch.setattr(door, "limits", replace(SHARED, shared=shared))
        answer = requests.get(studio.base + "/gradio_api/deep_link", params={"session_hash": session}, timeout=10)
        assert answer.status_code == 404
    assert files_in(studio.folder) == before
    assert not (studio.folder / "deep_links").exists()


def test_laptop_door_passes_uploads_through(studio, door, monkeypatch):
    monkeypatch.setattr(door, "limits", replace(SHARED, shared=False))
    answer = upload(studio, [1000] * 6, "198.51.100.50")
    assert answer.status_code == 200 and len(answer.json()) == 6


def test_two_megabyte_body_is_refused_by_its_length(studio, door):
    answer = requests.post(
        studio.base + "/gradio_api/queue/join", data=b"{" + b" " * 2 * MB + b"}", timeout=10,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.json()["detail"].endswith("at most 1 MB.")


def test_chunked_200_mb_body_is_stopped_early_and_memory_stays_flat(studio, door):
    sent = 0

    def body():
        nonlocal sent
        for _ in range(200 * 16):  # 200 MB in 64 KB chunks, no Content-Length
            sent += 65536
            yield b"x" * 65536

    start = rss_mb()
    answer = requests.post(studio.base + "/gradio_api/queue/join", data=body(), timeout=30)
    assert answer.status_code == 413
    assert sent < 50 * MB, "the server read on instead of stopping"
    assert rss_mb() - start < 50


def test_text_over_its_box_limit_is_refused_for_200_sessions_and_memory_stays_flat(studio, door):
    fn_index = echo_index(studio)
    text = "a" * 900_000
    start = rss_mb()
    with requests.Session() as http:
        for n in range(200):
            body = json.dumps({"data": [text], "fn_index": fn_index, "session_hash": f"s{n}"})
            answer = http.post(studio.base + "/gradio_api/queue/join", data=body, timeout=10)
            assert answer.status_code == 413
            assert "at most 20 characters" in answer.json()["detail"]
    assert rss_mb() - start < 50
    assert "s199" not in studio.demo.state_holder  # Gradio never saw the session


def test_text_within_its_limit_is_echoed(studio, door):
    ok = requests.post(
        studio.base + "/gradio_api/queue/join",
        json={"data": ["hello"], "fn_index": echo_index(studio), "session_hash": "fine"},
        timeout=10,
    )
    assert ok.status_code == 200 and "event_id" in ok.json()
    call = requests.post(studio.base + "/gradio_api/call/echo", json={"data": ["b" * 21]}, timeout=10)
    assert call.status_code == 413


def test_text_limits_come_from_each_textbox_max_length(studio):
    events = events_of(studio.demo)
    assert events[echo_index(studio)].rules[0].most == 20
    assert events["api:echo"].rules[0].most == 20


@pytest.mark.parametrize("spelling", ["{n}", "{n}.0", "0{n}"])
def test_a_long_text_is_refused_however_the_event_is_spelled(studio, door, spelling):
    fn_index = spelling.format(n=echo_index(studio))
    body = {"data": ["c" * 100_000], "fn_index": fn_index if spelling != "{n}.0" else float(fn_index),
            "session_hash": "spelled"}
    answer = requests.post(studio.base + "/gradio_api/queue/join", json=body, timeout=10)
    assert answer.status_code == 413
    assert "at most 20 characters" in answer.json()["detail"]


def test_session_limits_bound_gradio_sessions():
    limits = session_limits()
    assert limits["launch"]["state_session_capacity"] <= 1000
    keep = limits["blocks"]["delete_cache"]
    assert keep[1] <= 3600 and keep[0] <= keep[1]


def echo_index(studio) -> int:
    return next(i for i, fn in studio.demo.fns.items() if fn.api_name == "echo")


def test_refused_upload_poison_breaks_the_parser_wherever_it_is_cut():
    """Whatever byte an upload is cut at, the bytes the door sends next make Gradio's parser fail
    (and so delete what it wrote) rather than keep a truncated file."""
    boundary = b"xyzBOUNDARYzyx"
    part = (
        b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.bin\"\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + bytes(range(256)) * 4 + b"\r\n"
    )
    body = part * 3 + b"--" + boundary + b"--\r\n"
    rng = random.Random(7)
    cuts = list(range(0, len(body) - len(boundary) - 8)) + [rng.randrange(len(body)) for _ in range(50)]
    for cut in cuts:
        count = PartCount(boundary, DoorLimits(shared=True, files_per_upload=1000))
        sizes = [1, 7, 64]
        offset = 0
        while offset < cut:
            step = min(rng.choice(sizes), cut - offset)
            count.feed(body[offset : offset + step])
            offset += step
        if count.finished:
            continue
        follower = MultipartParser(boundary, {})
        follower.write(body[:cut])
        with pytest.raises(Exception):
            follower.write(count.poison())


# --- an address this app gave out for its own file (issue 30) ----------------------------------


def video_call(tmp_path):
    from skyreels_demo.web.event_inputs import FILE_INPUT_BYTES, Event, Rule

    served = tmp_path / "runs"
    event = Event("continue", (Rule("file", FILE_INPUT_BYTES, label="video"),), (0,), ("video",), frozenset({"video"}))
    return EventInputs({"api:continue": event}, roots=[served]), served


def test_the_apps_own_file_address_is_read_as_the_path_it_names(tmp_path):
    inputs, served = video_call(tmp_path)
    record = {"path": f"http://127.0.0.1:7860/gradio_api/file={served}/my%20take.mp4", "meta": {"_type": "gradio.FileData"}}
    rewritten: list[str] = []
    assert inputs.check("call", "continue", {"data": [record]}, hosts=["127.0.0.1:7860"], rewritten=rewritten) is None
    assert record["path"] == f"{served}/my take.mp4" and rewritten == [record["path"]]


def test_an_address_of_another_host_or_outside_the_apps_folders_is_refused_unopened(tmp_path):
    inputs, served = video_call(tmp_path)
    elsewhere = {"path": f"http://127.0.0.9:7860/gradio_api/file={served}/take.mp4"}
    refused = inputs.check("call", "continue", {"data": [elsewhere]}, hosts=["127.0.0.1:7860"])
    assert refused.status == 422 and refused.name == "video" and "not one this app gave out" in refused.sentence
    assert elsewhere["path"].startswith("http://127.0.0.9")  # left as it was, never fetched
    outside = {"path": "http://127.0.0.1:7860/gradio_api/file=/etc/hostname"}
    refused = inputs.check("call", "continue", {"data": [outside]}, hosts=["127.0.0.1:7860"])
    assert refused.status == 403 and refused.sentence.startswith("That file was not uploaded to this app")
    climbing = {"path": f"http://127.0.0.1:7860/gradio_api/file={served}/../../etc/hostname"}
    assert inputs.check("call", "continue", {"data": [climbing]}, hosts=["127.0.0.1:7860"]).status == 403
