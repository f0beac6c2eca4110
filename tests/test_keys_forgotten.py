"""A pasted key is used and forgotten: never kept in Gradio's session state, and gone from the
app's memory (its log mask included) once its run or check has ended; the log is still masked
while a key is in use."""

from __future__ import annotations

import gc
import logging
import subprocess
import sys
import types
import uuid
from pathlib import Path

import gradio as gr
import pytest

from skyreels_demo.studio import keys
from skyreels_demo.studio.keys import MASK, in_use, mask, remember

from .conftest import ASTRONAUT, ROOT, clean_env, free_port, launch_here, wait_until_serving


# --- the log mask holds a visitor's key only while it is in use -----------------------------


def test_a_visitors_key_is_masked_while_in_use_and_forgotten_after():
    key = f"fake-visitor-{uuid.uuid4().hex}"
    line = f"calling with {key} now"
    with in_use(key):
        assert mask(line) == f"calling with {MASK} now"
        with in_use(f"  {key}\n"):  # the same key, as pasted, by a second run at once
            assert mask(line) == f"calling with {MASK} now"
        assert mask(line) == f"calling with {MASK} now"  # the first run still uses it
    assert mask(line) == line  # nothing uses it: the mask no longer holds it
    assert key not in keys._held


def test_checking_a_keys_shape_keeps_nothing():
    key = f"fake-visitor-{uuid.uuid4().hex}"
    assert keys.checked_key(key) == key
    assert key not in keys._held


def test_the_owners_key_is_masked_for_good_even_after_a_visitor_pasted_it():
    owner = f"fake-owner-{uuid.uuid4().hex}"
    remember(owner)
    with in_use(owner):
        pass
    assert mask(owner) == MASK


def test_a_key_in_a_log_line_is_masked_while_its_run_uses_it(caplog):
    key = f"fake-visitor-{uuid.uuid4().hex}"
    logger = logging.getLogger("skyreels_demo.test_keys")
    caplog.set_level(logging.INFO, logger="skyreels_demo.test_keys")
    keys.install_key_mask(logging.getLogger())  # as the app does at start, on every handler
    with in_use(key):
        logger.info("a failure quoting %s", key)
    assert key not in caplog.text and MASK in caplog.text


# --- the app: after a run and a key check, the key is nowhere in its memory ---------------------

CLIENT = r"""
import json, sys, uuid
import requests
from gradio_client import Client, handle_file

url, image, token, check_index = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = Client(url, verbose=False)
status, video, summary = client.predict(
    "a woman smiles", handle_file(image), 5, True, "crop", "fake-visitor-run-" + token, api_name="/generate"
)
assert "Seed 5" in summary, summary
text = client.predict(handle_file(image), "she laughs", "fake-visitor-suggest-" + token, api_name="/suggest_prompt")
assert text, text

# The page's key check, as the browser sends it: a private event, joined by its fn_index.
session = uuid.uuid4().hex[:11]
body = {"data": ["fake-visitor-check-" + token], "fn_index": check_index, "session_hash": session,
        "event_data": None, "trigger_id": None}
assert requests.post(url + "gradio_api/queue/join", json=body, timeout=30).status_code == 200
with requests.get(url + "gradio_api/queue/data", params={"session_hash": session}, stream=True, timeout=60) as events:
    for line in events.iter_lines():
        message = json.loads(line[5:]) if line.startswith(b"data:") else {}
        if message.get("msg") == "process_completed":
            assert "This key works" in json.dumps(message["output"]), message
            break

# One more event, with no key, from another session (so that it overwrites nothing in this
# one's): Gradio's queue loops keep the last event they handled (its inputs) in a local
# variable until the next one; this one takes the key's place there.
try:
    Client(url, verbose=False).predict("   ", handle_file(image), 5, api_name="/generate")
except Exception as exc:
    assert "Write a prompt first" in str(exc), exc
print("ok")
"""


@pytest.fixture
def wavespeed_stand_in(tmp_path):
    """The built-in backend as WaveSpeed's stand-in, in a process of its own: what it is sent
    (the visitor's key, in every request) is in its memory, not the app's."""
    port = free_port()
    log = open(tmp_path / "local-api.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "skyreels_demo", "local-api", "--port", str(port),
         "--queue-seconds", "0.2", "--processing-seconds", "0.4"],
        cwd=ROOT, env=clean_env(), stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url + "/", process, tmp_path / "local-api.log", timeout=60)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def test_a_pasted_key_is_kept_in_no_session_and_nowhere_in_memory_after_its_run_or_check(
    wavespeed_stand_in, tmp_path
):
    """How this looks, and why: the app runs in this test's process (StudioApp, its Blocks
    launched on loopback as the app is) so that its memory can be read as Python objects, and
    everything else runs in processes of their own (the WaveSpeed stand-in, and a gradio_client
    visitor that makes a run, asks for a suggestion and has a key checked as the page does), so
    that the only copies here are the app's. Dumping the process's raw memory would also count
    freed bytes nobody can reach; walking every live object (gc, including the keys of untracked
    dicts) finds exactly what the app still holds: first Gradio's session state
    (`blocks.state_holder`), then everything else. Frames of this test are skipped (they hold
    the keys to look for). The visitor's last call carries no key, because Gradio's queue loops
    keep the last event they handled until the next one arrives (at most one event, replaced by
    the next visitor's; Gradio's own, left as it is)."""
    from skyreels_demo.config import Settings
    from skyreels_demo.web.components import KeyBox
    from skyreels_demo.web.page import StudioApp

    settings = Settings(
        api_key=None, base_url=wavespeed_stand_in, data_dir=tmp_path / "data", poll="0.1",
        submits_per_minute=600.0, shared=True,
    )
    app = StudioApp(settings)
    blocks = app.build()
    # Every key box on the page is one Gradio keeps nothing of.
    boxes = [b for b in blocks.blocks.values() if getattr(b, "type", None) == "password"]
    assert len(boxes) == 2 and all(isinstance(box, KeyBox) for box in boxes)
    keys.install_key_mask()
    launch_here(blocks, settings)
    try:
        check_index = next(i for i, fn in blocks.fns.items() if getattr(fn.fn, "__name__", "") == "check_key")
        token = uuid.uuid4().hex
        visitor = subprocess.run(
            [sys.executable, "-c", CLIENT, blocks.local_url, ASTRONAUT, token, str(check_index)],
            cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=240,
        )
        assert visitor.stdout.strip().endswith("ok"), visitor.stdout[-2000:] + visitor.stderr[-3000:]
        sessions = blocks.state_holder.session_data
        assert len(sessions) >= 3  # the API clients' sessions and the page's key-check session
        gc.collect()
        # (Each key is made afresh where it is looked for: a list of them would be a holder.)
        for kind in ("run", "suggest", "check"):
            found = holders_of(f"fake-visitor-{kind}-{token}", within=list(sessions.values()))
            assert found == [], f"the {kind} key is kept in Gradio's session state: {found}"
        assert app.studio.access._visitors == {}  # no run needs a visitor's client any more
        for kind in ("run", "suggest", "check"):
            assert mask(f"fake-visitor-{kind}-{token}") == f"fake-visitor-{kind}-{token}"  # the mask forgot it
            found = holders_of(f"fake-visitor-{kind}-{token}")
            assert found == [], f"the {kind} key is still held: {found}"
    finally:
        blocks.close()
        app.studio.close()


def holders_of(text: str, within: list | None = None) -> list[str]:
    """What refers to a str or bytes holding `text`: every live object the garbage collector
    tracks (or those reachable from `within`), and the untracked containers they hold, dict keys
    included (a dict of str keys does not report its keys as referents). Frames of this test
    module are skipped: they hold the text to look for."""
    needle = text.encode()
    here = str(Path(__file__))
    start = list(within) if within is not None else gc.get_objects()
    seen: set[int] = {id(start)}
    found: list[str] = []
    stack = list(start)
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, types.FrameType) and item.f_code.co_filename == here:
            continue
        if within is not None and isinstance(item, _NOT_SESSION):
            continue  # code and the page's Blocks: what every session shares, not what it keeps
        referents = gc.get_referents(item)
        if isinstance(item, dict):
            referents = [*referents, *item.keys()]
        for ref in referents:
            if isinstance(ref, str):
                if text in ref:
                    found.append(_described(item))
            elif isinstance(ref, (bytes, bytearray)):
                if needle in ref:
                    found.append(_described(item))
            elif within is not None or not gc.is_tracked(ref):
                stack.append(ref)
    return found


_NOT_SESSION = (types.ModuleType, types.FunctionType, types.MethodType, types.BuiltinFunctionType, type, gr.Blocks)


def _described(item: object) -> str:
    if isinstance(item, dict):
        return f"dict with keys {list(item)[:6]}"
    return type(item).__name__
