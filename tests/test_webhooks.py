"""Push, not poll: signed webhooks from the (built-in) API wake a run at once, forged or
replayed calls change nothing, and a lost one still ends in the video."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from gradio_client import Client

from skyreels_demo.local_api import LocalBackend, TaskTiming
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.studio.hub import WebhookHub
from skyreels_demo.wavespeed.webhooks import MAX_BODY_BYTES, Refused, signature, verify

from .conftest import LaunchedApp, clean_env, free_port, video_facts
from .test_app import generate

SECRET = "whsec_c2VjcmV0LW5vdC1iYXNlNjQtZGVjb2RlZA"
VISITOR_KEY = "wsk-visitor-key-for-webhooks"


def signed(body: bytes, *, secret: str = SECRET, at: float | None = None, webhook_id: str = "msg_1") -> dict:
    stamp = str(int(time.time() if at is None else at))
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v3,{signature(secret, webhook_id, stamp, body)}",
    }


# 30,000 levels of lists, under the 64 KB body limit: json.loads alone would recurse out (a 500).
NESTED = b'{"id": "task-1", "x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
BODY = json.dumps({"id": "task-1", "status": "completed", "outputs": ["http://127.0.0.1:1/x.mp4"]}).encode()


def test_a_call_signed_with_the_secret_is_accepted():
    assert verify(SECRET, signed(BODY), BODY)["id"] == "task-1"
    # The key is the secret's text after whsec_, as it is: not base64-decoded.
    import hashlib
    import hmac

    stamp = signed(BODY)["webhook-timestamp"]
    by_hand = hmac.new(SECRET[len("whsec_"):].encode(), f"msg_1.{stamp}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signed(BODY)["webhook-signature"] == f"v3,{by_hand}"


@pytest.mark.parametrize(
    "headers, body, status",
    [
        (lambda: signed(BODY, secret="whsec_someone-else"), BODY, 401),  # forged
        (lambda: signed(BODY, at=time.time() - 301), BODY, 401),  # stale
        (lambda: signed(BODY, at=time.time() + 301), BODY, 401),  # from the future
        (lambda: {**signed(BODY), "webhook-signature": "v1,abc"}, BODY, 401),  # another scheme
        (lambda: {"webhook-id": "msg_1"}, BODY, 400),  # headers missing
        (lambda: signed(b"x" * (MAX_BODY_BYTES + 1)), b"x" * (MAX_BODY_BYTES + 1), 400),  # oversized
        (lambda: signed(b"not json"), b"not json", 400),
        (lambda: signed(NESTED), NESTED, 400),  # validly signed, but nested to break the parser
    ],
    ids=["forged", "stale", "future", "other-scheme", "no-headers", "oversized", "not-json", "nested"],
)
def test_a_call_that_is_not_wavespeed_s_is_refused(headers, body, status):
    with pytest.raises(Refused) as refused:
        verify(SECRET, headers(), body)
    assert refused.value.status == status


def test_a_replayed_call_wakes_nothing_and_an_unknown_run_is_refused():
    class Keyed:  # a client that already knows its secret, standing in for the API's answer
        base_url = "http://127.0.0.1:1"

        def webhook_secret(self) -> str:
            return SECRET

    hub = WebhookHub(public_url="https://studio.example")
    waiting = hub.expect(Keyed(), preview=False, owner=True)
    hub.submitted(waiting, "task-1")
    assert hub.url(waiting, preview=False) == f"https://studio.example/webhooks/wavespeed/{waiting.token}"
    headers = signed(BODY, webhook_id="msg_once")
    assert hub.receive(waiting.token, headers, BODY) == "ok" and waiting.pushed.is_set()
    waiting.pushed.clear()
    assert hub.receive(waiting.token, headers, BODY) == "already seen"
    assert not waiting.pushed.is_set()
    with pytest.raises(Refused):
        hub.receive("not-a-token", signed(BODY), BODY)
    other = json.dumps({"id": "task-2", "status": "completed"}).encode()
    with pytest.raises(Refused):
        hub.receive(waiting.token, signed(other, webhook_id="msg_2"), other)


# The pushed app's tasks, and its safety net's gap on the tests' faster clock (conftest.clean_env):
# 1.5 s, where WaveSpeed's own clock has 15 s.
TASK_S = 3.3
TESTS_SCALE = clean_env()["SKYREELS_CHECK_SCALE"]
SAFETY_S = SKYREELS_V1.checks.scaled(float(TESTS_SCALE)).push_safety_s


@pytest.fixture
def pushed_app(tmp_path, request):
    """The app with a public address (here on loopback) and an API that delivers webhooks; on
    the tests' faster clock for its checks unless the test asks for WaveSpeed's own ("1")."""
    scale = getattr(request, "param", TESTS_SCALE)
    port = free_port()
    with LocalBackend(timing=TaskTiming(0.3, TASK_S - 0.3), api_key=None, render=False) as api:
        app = LaunchedApp(
            tmp_path / "data",
            tmp_path / "app.log",
            port=port,
            WAVESPEED_API_KEY="owner-key-not-secret",
            WAVESPEED_BASE_URL=api.base_url,
            SKYREELS_PUBLIC_URL=f"http://127.0.0.1:{port}",
            SKYREELS_CHECK_SCALE=scale,
        )
        app.data_dir = tmp_path / "data"
        try:
            yield app, api
        finally:
            app.stop()


# WaveSpeed's clock: its safety net's first check (15 s) far after the task's end.
@pytest.mark.parametrize("pushed_app", ["1"], indirect=True, ids=["wavespeed-clock"])
def test_with_webhooks_a_run_polls_only_to_confirm_and_shows_the_video_at_once(pushed_app):
    app, api = pushed_app
    client = Client(app.url, verbose=False)
    status, video, summary = generate(client, "a woman smiles").result()
    seen_at = time.time()
    assert video_facts(video)["frames"] == 97
    assert api.counts["result"] == 1  # no polling before the end: one GET to confirm the webhook
    delivery = api.pusher.delivered[-1]
    assert delivery["answer"] == 200
    # In hand soon after the webhook: the one confirming GET above is what shows the webhook, not
    # a check, ended the wait; the time has a loaded machine's margin (1.17 s seen in a series
    # run on two busy cores), and bench/bench_follow.py measures it.
    assert seen_at - delivery["at"] < 3.0, seen_at - delivery["at"]


def test_a_forged_webhook_changes_nothing_and_a_lost_one_still_ends_in_the_video(pushed_app):
    app, api = pushed_app
    for fault, prompt in (("bad_signature", "a man waves"), ("lost", "a child jumps")):
        api.pusher.arm(fault)
        checks = api.counts["result"]
        status, video, summary = generate(Client(app.url, verbose=False), prompt).result()
        if fault == "bad_signature":
            assert api.pusher.delivered[-1]["answer"] == 401  # refused; the run went on
        assert video_facts(video)["frames"] == 97
        late = time.time() - api.task(api.created_task_ids[-1]).completed_at
        # Caught by the safety net, later but surely: within its gap of the end (and a loaded
        # machine's margin), its checks that gap apart, not the rule's 0.5 s.
        assert late < SAFETY_S + 1.5, late
        assert api.counts["result"] - checks <= TASK_S / SAFETY_S + 2, api.counts["result"] - checks


def test_a_duplicated_or_delayed_webhook_does_no_harm(pushed_app):
    app, api = pushed_app
    api.pusher.arm("duplicated")
    generate(Client(app.url, verbose=False), "a dog runs").result()
    answers = [d["answer"] for d in api.pusher.delivered[-2:]]
    assert answers == [200, 200] and api.tasks_created == 1  # the copy was ignored, not a new run
    api.pusher.arm("delayed", seconds=1.0)
    status, video, summary = generate(Client(app.url, verbose=False), "a cat blinks").result()
    assert video_facts(video)["frames"] == 97


def test_a_visitor_key_s_webhook_secret_is_never_written(tmp_path):
    port = free_port()
    with LocalBackend(timing=TaskTiming(0.3, 1.0), api_key=VISITOR_KEY, render=False) as api:
        app = LaunchedApp(
            tmp_path / "data", tmp_path / "app.log", port=port,
            WAVESPEED_BASE_URL=api.base_url, SKYREELS_PUBLIC_URL=f"http://127.0.0.1:{port}",
        )
        try:
            status, video, summary = generate(Client(app.url, verbose=False), "a man nods", key=VISITOR_KEY).result()
            assert Path(video).exists() and api.counts["secret"] == 1 and api.counts["result"] == 1
        finally:
            app.stop()
        secret = api.pusher.secret
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in (tmp_path / "app.log").read_text()
