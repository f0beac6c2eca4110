"""A prompt written from the picture: `suggest_prompt` against the real local backend on loopback,
as the offline preview and as the API behind a key."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from skyreels_demo.config import Settings
from skyreels_demo.errors import AuthError, BadInput, QuotaExceeded, ServiceError, TaskFailed
from skyreels_demo.local_api import LocalBackend
from skyreels_demo.models import VISION_LLM
from skyreels_demo.studio.prompts import MAX_IDEA_CHARS, answer_text, suggest_prompt
from skyreels_demo.studio.studio import Studio

from .conftest import FAST, settings_for, wait_for
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.studio.visitors import Requester

VISITOR_KEY = "wsk-visitor-prompts-0123456789SECRET"
PREVIEW_MARK = "[Offline preview suggestion]"


def preview_studio(backend: LocalBackend, data_dir: Path, **settings) -> Studio:
    """A studio with no key at all: its runs go to `backend` as the offline preview."""
    return Studio(Settings(data_dir=data_dir, poll="0.1", check_scale=0.1, **settings), SKYREELS_V1, start_preview=lambda: backend.base_url)


@pytest.fixture
def preview(backend, tmp_path):
    studio = preview_studio(backend, tmp_path / "data")
    yield studio
    studio.close()


def llm_runs(studio: Studio):
    return [run for run in studio.store.recent(model=None) if run.model == VISION_LLM.name]


def test_an_offline_suggestion_is_built_from_the_idea_and_marked_as_a_preview(preview, backend, photo_path):
    suggestion = suggest_prompt(preview, RunRequest("  she laughs\n and turns  ", str(photo_path)))

    assert suggestion.mode == "preview" and suggestion.is_preview
    assert suggestion.text.startswith(PREVIEW_MARK)
    assert "she laughs and turns" in suggestion.text
    # A prompt, nothing else: no advice to delete before it goes to the model (the page says
    # it is a placeholder), and no guess at who is in the picture.
    assert "key" not in suggestion.text and "connect" not in suggestion.text
    assert not {"person", "man", "woman"} & set(suggestion.text.lower().replace(",", " ").split())
    assert not suggestion.text.upper().startswith("FPS-24")
    assert backend.counts["put"] == 1 and backend.counts["llm"] == 1  # the image went up once
    [run] = llm_runs(preview)
    assert run.status == "done" and run.mode == "preview" and run.task_id


def test_without_an_idea_the_offline_suggestion_describes_the_picture_neutrally(preview):
    from .conftest import CHELSEA

    suggestion = suggest_prompt(preview, RunRequest("", CHELSEA))  # a cat: not "a person"
    assert suggestion.text.startswith(PREVIEW_MARK)
    words = set(suggestion.text.lower().replace(",", " ").replace(";", " ").split())
    assert not {"person", "man", "woman", "people", "key"} & words
    assert "the subject of the picture" in suggestion.text.lower()
    assert "warm" in words and "wide" in words  # the cat photo's light and shape, measured


def test_a_keyed_suggestion_goes_to_the_api(studio, backend, photo_path):
    suggestion = suggest_prompt(studio, RunRequest("slow dolly in", str(photo_path)))

    assert suggestion.mode == "api" and not suggestion.is_preview
    assert "slow dolly in" in suggestion.text
    assert backend.counts["llm"] == 1
    [run] = llm_runs(studio)
    assert run.mode == "api" and run.key_source == "owner" and run.status == "done"


def test_a_suggestion_is_not_a_video_in_history_expectations_or_resume(studio, photo_path):
    suggest_prompt(studio, RunRequest("she waves", str(photo_path)))
    [run] = llm_runs(studio)

    assert studio.store.recent(model=studio.model.name) == []  # History lists SkyReels videos only
    assert studio.store.unfinished(model=studio.model.name) == []
    assert studio.expectation().samples == 0  # nothing learned about videos from it
    with pytest.raises(BadInput, match="wrote a prompt"):
        list(studio.resume(run.task_id))


def test_an_idea_over_200_characters_is_refused_before_anything_is_sent(preview, backend, photo_path):
    idea = "she laughs " * 20
    with pytest.raises(BadInput, match=f"keep it to {MAX_IDEA_CHARS} or fewer"):
        suggest_prompt(preview, RunRequest(idea, str(photo_path)))
    assert sum(backend.counts.values()) == 0
    assert llm_runs(preview) == []


def test_no_image_is_refused_before_anything_is_sent(preview, backend):
    with pytest.raises(BadInput, match="Add an image first"):
        suggest_prompt(preview, RunRequest("she laughs", None))
    assert sum(backend.counts.values()) == 0 and llm_runs(preview) == []


def test_suggestions_count_against_the_preview_cap_like_videos(backend, tmp_path, photo_path):
    studio = preview_studio(backend, tmp_path / "data", shared=True, preview_runs_per_hour=2)
    try:
        suggest_prompt(studio, RunRequest("", str(photo_path), requester=Requester("ip:192.0.2.7")))
        suggest_prompt(studio, RunRequest("", str(photo_path), requester=Requester("ip:192.0.2.7")))
        with pytest.raises(QuotaExceeded, match="You have made 2 offline previews in the last hour"):
            suggest_prompt(studio, RunRequest("", str(photo_path), requester=Requester("ip:192.0.2.7")))
        # The same cap refuses a video now: the two suggestions used it up.
        with pytest.raises(QuotaExceeded):
            list(studio.generate(RunRequest("a man waves", str(photo_path), 3, requester=Requester("ip:192.0.2.7"))))
        # Another visitor still has their own allowance.
        assert suggest_prompt(studio, RunRequest("", str(photo_path), requester=Requester("ip:192.0.2.8"))).text
    finally:
        studio.close()
    assert backend.counts["llm"] == 3


def test_a_suggestion_on_the_owners_key_uses_up_a_video_of_the_hourly_cap(backend, tmp_path, photo_path):
    studio = Studio(settings_for(backend, tmp_path / "data", shared=True, visitor_runs_per_hour=2), SKYREELS_V1)
    try:
        suggest_prompt(studio, RunRequest("", str(photo_path), requester=Requester("ip:198.51.100.4")))
        list(studio.generate(RunRequest("a man waves", str(photo_path), 3, requester=Requester("ip:198.51.100.4"))))
        with pytest.raises(QuotaExceeded, match="You have made 2 videos in the last hour"):
            suggest_prompt(studio, RunRequest("", str(photo_path), requester=Requester("ip:198.51.100.4")))
    finally:
        studio.close()
    assert backend.counts["llm"] == 1


def test_a_wrong_key_gets_its_sentence_and_the_right_one_is_used_but_not_kept(tmp_path, photo_path):
    with LocalBackend(api_key=VISITOR_KEY, timing=FAST) as api:
        studio = Studio(Settings(base_url=api.base_url, data_dir=tmp_path / "data", poll="0.1", check_scale=0.1), SKYREELS_V1)
        try:
            with pytest.raises(AuthError, match="The WaveSpeed API key was refused"):
                suggest_prompt(studio, RunRequest("she laughs", str(photo_path), api_key="wsk-not-this-one"))
            suggestion = suggest_prompt(studio, RunRequest("she laughs", str(photo_path), api_key=VISITOR_KEY))
            assert suggestion.mode == "api" and "she laughs" in suggestion.text
            refused, done = sorted(llm_runs(studio), key=lambda run: run.created_at)
        finally:
            studio.close()
    assert refused.status == "refused" and "API key was refused" in refused.error_message
    assert done.status == "done" and done.key_source == "visitor"
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert VISITOR_KEY.encode() not in path.read_bytes(), path


def test_an_answer_sync_mode_did_not_finish_is_followed_to_the_end(studio, backend, photo_path):
    backend.faults.unfinished_answers()
    suggestion = suggest_prompt(studio, RunRequest("she laughs", str(photo_path)))
    assert "she laughs" in suggestion.text
    assert backend.counts["result"] >= 1  # it asked again, and got the answer
    assert llm_runs(studio)[0].status == "done"


def test_a_failed_call_says_the_prompt_could_not_be_written(studio, backend, photo_path):
    backend.faults.fail_next_answer(5000, "The model is overloaded")
    with pytest.raises(TaskFailed, match=r"The prompt could not be written \(The model is overloaded\)"):
        suggest_prompt(studio, RunRequest("she laughs", str(photo_path)))
    [run] = llm_runs(studio)
    assert run.status == "failed"  # sent, so it counts


def test_a_picture_the_api_cannot_fetch_is_reported_as_such(studio):
    with pytest.raises(TaskFailed, match="could not download the picture"):
        suggest_prompt(studio, RunRequest("she laughs", "http://images.example.invalid/portrait.jpg"))


def test_a_call_whose_answer_was_lost_is_not_sent_again(studio, backend, photo_path):
    backend.faults.server_errors("llm", (500,))
    with pytest.raises(ServiceError, match="WaveSpeed may have made this prompt; it is not known"):
        suggest_prompt(studio, RunRequest("", str(photo_path)))
    assert backend.counts["llm"] == 1  # a paid call whose answer was lost is never repeated
    [run] = llm_runs(studio)
    assert run.status == "unconfirmed"  # it may have been paid for: it counts against the caps


@pytest.mark.parametrize(
    "data, text",
    [
        ({"outputs": ["FPS-24, A woman turns to the camera and smiles."]}, "A woman turns to the camera and smiles."),
        ({"outputs": ['Prompt: "A man walks\n toward the sea."']}, "A man walks toward the sea."),
        ({"outputs": "A cat blinks."}, "A cat blinks."),
        ({"outputs": [{"content": "A dog runs."}]}, "A dog runs."),
        ({"outputs": ["", "A child laughs."]}, "A child laughs."),
    ],
)
def test_the_written_prompt_is_read_leniently_and_tidied(data, text):
    assert answer_text(data, SKYREELS_V1) == text


def test_an_answer_without_text_gets_a_sentence():
    with pytest.raises(ServiceError, match="answered without any text"):
        answer_text({"outputs": []}, SKYREELS_V1)



def test_the_backend_answers_the_vision_llm_in_its_envelope(backend, photo_path):
    """The route as WaveSpeed documents it: sync mode answers at once, otherwise the result
    route has the text; a body without a prompt is refused."""

    headers = {"Authorization": "Bearer anything"}
    url = backend.base_url + VISION_LLM.path
    refused = requests.post(url, json={"images": []}, headers=headers, timeout=10)
    assert refused.status_code == 400 and refused.json()["code"] == 1400

    question = {"prompt": "Write the SkyReels V1 prompt for this picture.", "enable_sync_mode": True}
    data = requests.post(url, json=question, headers=headers, timeout=10).json()["data"]
    assert data["status"] == "completed" and data["outputs"][0].startswith(PREVIEW_MARK)

    later = requests.post(url, json={**question, "enable_sync_mode": False}, headers=headers, timeout=10)
    first = later.json()["data"]
    assert first["status"] == "processing" and first["outputs"] == []

    def answered():
        answer = requests.get(first["urls"]["get"], headers=headers, timeout=10).json()["data"]
        return answer if answer["status"] == "completed" else None

    result = wait_for(answered, timeout=5)
    assert result["outputs"] == data["outputs"]
