"""Every way an image reaches WaveSpeed, as the official SDK, the docs and Hugging Face's provider
do it, with the built-in backend counting what it received; and the balance behind a key."""

from __future__ import annotations

import base64
import json

import pytest
import requests

import skyreels_demo.wavespeed.uploads as uploads_module
from skyreels_demo.studio.account import BalanceWatch, check_key
from skyreels_demo.errors import UploadFailed
from skyreels_demo.local_api import LocalBackend
from skyreels_demo.studio.studio import Studio

from .conftest import FAST, clean_env, jpeg_bytes, photo, run_cli, settings_for, video_facts, wait_for
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.studio.run_request import RunRequest

ASKED = ("ticket", "put", "upload", "submit")


@pytest.fixture(autouse=True)
def forget_ways():
    """Each test starts as a fresh process would: no way up remembered."""
    uploads_module.way_that_worked.clear()
    yield
    uploads_module.way_that_worked.clear()


def run_once(backend: LocalBackend, tmp_path, **overrides):
    studio = Studio(settings_for(backend, tmp_path / "data", **overrides), SKYREELS_V1)
    try:
        events = list(studio.generate(RunRequest("a woman smiles", jpeg_bytes(photo()), 5)))
    finally:
        studio.close()
    return events[-1], studio.store.recent()[0]


def asked(backend: LocalBackend) -> dict[str, int]:
    return {kind: backend.counts[kind] for kind in ASKED}


def test_the_sdk_s_ticket_and_put_carry_the_image_without_our_key(tmp_path):
    with LocalBackend(timing=FAST) as backend:
        done, run = run_once(backend, tmp_path)
        # One PUT, accepted: the storage route refuses any that carries Authorization.
        assert asked(backend) == {"ticket": 1, "put": 1, "upload": 0, "submit": 1}
        assert run.image_url.startswith(backend.base_url + "/files/uploads/")  # the download URL
        assert video_facts(done.video_path)["frames"] == 97


def test_storage_refuses_a_put_that_carries_a_key(backend):
    ticket = requests.post(
        backend.base_url + "/api/v3/media/uploads",
        json={"filename": "a.jpg", "size": 3, "content_type": "image/jpeg"},
        headers={"Authorization": "Bearer k"}, timeout=10,
    ).json()["data"]["upload"]
    keyed = requests.put(ticket["url"], data=b"abc", headers={**ticket["headers"], "Authorization": "Bearer k"}, timeout=10)
    assert keyed.status_code == 400


def test_the_binary_route_only_after_the_ticket_route_s_404_and_then_straight_to_it(tmp_path):
    with LocalBackend(timing=FAST, retired=("ticket",)) as backend:
        done, run = run_once(backend, tmp_path)
        assert asked(backend) == {"ticket": 1, "put": 0, "upload": 1, "submit": 1}
        assert video_facts(done.video_path)["frames"] == 97
        run_once(backend, tmp_path)  # the next run remembers the way that worked
        assert asked(backend) == {"ticket": 1, "put": 0, "upload": 2, "submit": 2}


def test_inline_only_after_both_upload_routes_are_gone(tmp_path):
    with LocalBackend(timing=FAST, retired=("ticket", "upload")) as backend:
        done, run = run_once(backend, tmp_path)
        assert asked(backend) == {"ticket": 1, "put": 0, "upload": 1, "submit": 1}
        assert backend.tasks_created == 1  # never a second submit
        assert run.image_url == f"inline:{run.image_sha256}"  # the store keeps a name, not the bytes
        assert video_facts(done.video_path)["frames"] == 97


def test_the_inline_setting_sends_no_upload_at_all(tmp_path):
    with LocalBackend(timing=FAST) as backend:
        done, run = run_once(backend, tmp_path, image_transport="inline")
        assert asked(backend) == {"ticket": 0, "put": 0, "upload": 0, "submit": 1}


def test_the_upload_setting_never_goes_inline(tmp_path):
    with LocalBackend(timing=FAST, retired=("ticket", "upload")) as backend:
        with pytest.raises(UploadFailed):
            run_once(backend, tmp_path, image_transport="upload")
        assert backend.counts["submit"] == 0  # refused before any money was spent


def test_a_bad_inline_image_is_refused_by_the_backend(backend):
    body = {"prompt": "p", "image": "data:image/png;base64," + base64.b64encode(b"not a picture").decode()}
    answer = requests.post(
        backend.base_url + "/api/v3/wavespeed-ai/SkyReels-V1", json=body,
        headers={"Authorization": "Bearer k"}, timeout=10,
    )
    assert answer.status_code == 400 and "not a picture" in answer.json()["message"]
    assert backend.tasks_created == 0


def test_a_ticket_s_put_is_single_use_and_size_checked(backend):
    headers = {"Authorization": "Bearer k"}
    ticket = requests.post(
        backend.base_url + "/api/v3/media/uploads",
        json={"filename": "a.jpg", "size": 10, "content_type": "image/jpeg"}, headers=headers, timeout=10,
    ).json()["data"]
    put = ticket["upload"]
    assert requests.put(put["url"], data=b"x" * 11, headers=put["headers"], timeout=10).status_code == 400
    # A wrong size used the ticket up; a guessed token is refused too.
    assert requests.put(put["url"], data=b"x" * 10, headers=put["headers"], timeout=10).status_code == 403
    guessed = put["url"].rsplit("/", 1)[0] + "/not-a-token"
    assert requests.put(guessed, data=b"x" * 10, timeout=10).status_code == 403


def test_balance_on_the_command_line_with_the_older_route_as_fallback(tmp_path):
    for retired in ((), ("balance",)):
        with LocalBackend(timing=FAST, retired=retired, balance=3.4) as backend:
            env = clean_env(WAVESPEED_API_KEY="k", WAVESPEED_BASE_URL=backend.base_url, SKYREELS_DATA_DIR=str(tmp_path))
            result = run_cli("balance", "--json", env=env, timeout=60)
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout) == {"balance": 3.4, "currency": "USD"}
            assert backend.counts["old_balance"] == (1 if retired else 0)
    no_key = run_cli("balance", env=clean_env(SKYREELS_DATA_DIR=str(tmp_path)), timeout=60)
    assert no_key.returncode == 2 and "No WAVESPEED_API_KEY" in no_key.stderr


def test_a_key_is_checked_before_it_is_used(tmp_path):
    with LocalBackend(api_key="the-right-key", balance=3.4) as backend:
        settings = settings_for(backend, tmp_path)
        good = check_key(settings, "the-right-key", SKYREELS_V1)
        assert good.ok and good.videos == 17
        assert good.sentence == "This key works: $3.40 of credit, about 17 videos at $0.20 each."
        bad = check_key(settings, "a-wrong-key", SKYREELS_V1)
        assert not bad.ok and "key was refused" in bad.sentence
        assert backend.counts["submit"] == 0 and backend.counts["ticket"] == 0


def test_the_low_balance_watch_checks_then_stops_and_can_be_joined(tmp_path, caplog):
    with LocalBackend(balance=0.1) as backend:
        watch = BalanceWatch(settings_for(backend, tmp_path), SKYREELS_V1, every_s=3600)
        watch.start()
        wait_for(lambda: backend.counts["balance"] >= 1, timeout=30)
        watch.stop()
        watch.join(timeout=10)  # raised TypeError while `_stop` shadowed Thread._stop
        assert not watch.is_alive()
    assert "credit is low: $0.10" in caplog.text


def test_a_sweep_says_what_it_costs_and_asks_before_spending(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a woman smiles\na man waves\n")
    picture = tmp_path / "photo.jpg"
    picture.write_bytes(jpeg_bytes(photo()))
    with LocalBackend(timing=FAST, render=False) as backend:
        env = clean_env(WAVESPEED_API_KEY="k", WAVESPEED_BASE_URL=backend.base_url,
                        SKYREELS_DATA_DIR=str(tmp_path / "data"), SKYREELS_CONFIRM_ABOVE_USD="0.5")
        args = ("sweep", "--image", str(picture), "--prompts", str(prompts), "--seeds", "1,2")
        refused = run_cli(*args, env=env, timeout=120)  # no one to ask: not started
        assert refused.returncode == 2 and "4 new videos, about $0.80" in refused.stderr
        assert backend.tasks_created == 0
        agreed = run_cli(*args, "--yes", env=env, timeout=180)
        assert agreed.returncode == 0, agreed.stderr
        assert backend.tasks_created == 4
        again = run_cli(*args, env=env, timeout=120)  # nothing new: nothing to pay, nothing asked
        assert again.returncode == 0 and "0 new videos, about $0.00" in again.stderr
        assert backend.tasks_created == 4
