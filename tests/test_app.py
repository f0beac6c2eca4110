"""The launched app (`python app.py`), driven through gradio_client as a Space visitor would be."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from skyreels_demo.local_api import LocalBackend, TaskTiming

from .conftest import ASTRONAUT, LaunchedApp, open_store, video_facts

VISITOR_KEY = "wsk-visitor-0123456789abcdefSECRET"
IMAGE = ASTRONAUT


@pytest.fixture(scope="module")
def visitor_backend():
    """Stands in for WaveSpeed: accepts only the visitor's key."""
    with LocalBackend(api_key=VISITOR_KEY, timing=TaskTiming(0.3, 1.0)) as server:
        yield server


@pytest.fixture(scope="module")
def app(tmp_path_factory, visitor_backend):
    data = tmp_path_factory.mktemp("app-data")
    env = dict(WAVESPEED_BASE_URL=visitor_backend.base_url, SKYREELS_PREVIEW_TIMING="0.3,1.0")
    with LaunchedApp(data, **env) as launched:
        yield launched


def generate(client: Client, prompt: str, *, seed: int = 7, key: str = "", image: str = IMAGE):
    return client.submit(prompt, handle_file(image), seed, True, "crop", key, "", api_name="/generate")


def test_a_run_streams_its_stages_then_a_playable_video(app):
    client = Client(app.url, verbose=False)
    job = generate(client, "a woman smiles at the camera")
    statuses = []
    for status, video, summary in job:
        if not statuses or statuses[-1] != status:
            statuses.append(status)
    status, video, summary = job.outputs()[-1]
    assert len(statuses) >= 5  # prepared, uploading, submitted, waiting/making, downloading, done
    assert "Submitted with seed 7" in status and "Done" in status
    assert "Seed 7" in summary and "Offline preview" in summary
    facts = video_facts(video)
    assert facts["frames"] == 97 and facts["size"] == (720, 720) and facts["codec"] == "h264"


def test_an_empty_prompt_reaches_the_client_as_a_sentence(app):
    client = Client(app.url, verbose=False)
    with pytest.raises(AppError, match="Write a prompt first"):
        generate(client, "   ").result()


def test_a_corrupt_image_reaches_the_client_as_a_sentence(app, tmp_path):
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is not a picture")
    client = Client(app.url, verbose=False)
    with pytest.raises(AppError) as caught:
        generate(client, "a man waves", image=str(fake)).result()
    assert "not a picture this app can read" in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_a_visitors_key_is_used_but_never_shown_or_stored(app, visitor_backend):
    client = Client(app.url, verbose=False)
    job = generate(client, "a man waves at the camera", key=VISITOR_KEY)
    outputs = list(job)
    status, video, summary = job.outputs()[-1]
    # The run went to the API (which accepts only this key), not the offline preview.
    assert visitor_backend.tasks_created >= 1
    assert "Offline preview" not in summary
    assert video_facts(video)["frames"] == 97

    seen = [str(o) for o in outputs] + [str(job.outputs())]
    for path in ("", "config", "gradio_api/info", "gradio_api/openapi.json", "gradio_api/info?all_endpoints=true"):
        response = requests.get(app.url + path, timeout=10)
        seen.append(response.text)
    assert all(VISITOR_KEY not in text for text in seen)
    # Not in the run store, nor in anything the app wrote or logged.
    for path in Path(app.data_dir).rglob("*"):
        if path.is_file():
            assert VISITOR_KEY.encode() not in path.read_bytes(), path


def test_the_seed_used_for_a_random_run_is_recorded(app):
    client = Client(app.url, verbose=False)
    status, video, summary = generate(client, "a child laughs", seed=-1).result()
    seed = int(summary.split("**Seed ")[1].split("**")[0])
    assert 0 <= seed <= 2_147_483_647
    runs = [r for r in open_store(Path(app.data_dir)).recent() if r.seed == seed]
    assert runs and runs[0].status == "done"


def test_generate_needs_only_prompt_image_and_seed(app):
    client = Client(app.url, verbose=False)
    status, video, summary = client.predict("a kite rises", handle_file(IMAGE), 11, api_name="/generate")
    assert "Seed 11" in summary and video_facts(video)["frames"] == 97


def test_suggest_prompt_writes_a_marked_preview_prompt_from_the_picture(app):
    client = Client(app.url, verbose=False)
    text = client.predict(handle_file(IMAGE), "she laughs", "", api_name="/suggest_prompt")
    assert "offline preview" in text.lower() and "laughs" in text
    assert not text.upper().startswith("FPS-24")  # the app adds the prefix when it submits


def test_generate_variations_returns_three_videos_with_three_seeds(app):
    client = Client(app.url, verbose=False)
    grid, lines = client.predict("a woman smiles", handle_file(IMAGE), 3, 40, api_name="/generate_variations")
    seeds = sorted(int(item["caption"].split()[1]) for item in grid)
    assert seeds == [40, 41, 42]
    for item in grid:
        assert video_facts(item["video"]["video"] if isinstance(item["video"], dict) else item["video"])["frames"] == 97
    assert lines.count("✓") == 3
