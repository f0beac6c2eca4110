"""A public Space on its owner's key: visitors are capped, their own key lifts the cap."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from skyreels_demo.local_api import LocalBackend, TaskTiming

from .conftest import video_facts
from .test_app import LaunchedApp, generate


@pytest.fixture(scope="module")
def owner_backend():
    with LocalBackend(timing=TaskTiming(0.2, 0.6)) as server:
        yield server


@pytest.fixture(scope="module")
def space(tmp_path_factory, owner_backend):
    data = tmp_path_factory.mktemp("space")
    launched = LaunchedApp(
        data,
        data / "app.log",
        WAVESPEED_BASE_URL=owner_backend.base_url,
        WAVESPEED_API_KEY="fake-owner-key",
        SPACE_ID="someone/skyreels-studio",
        SKYREELS_VISITOR_RUNS_PER_HOUR="1",
    )
    yield launched
    launched.stop()


def test_a_visitor_past_the_hourly_cap_is_told_to_bring_a_key_and_nothing_is_spent(space, owner_backend):
    visitor = Client(space.url, verbose=False)
    first = generate(visitor, "a woman smiles at the camera").result()
    assert video_facts(first[1])["frames"] == 97
    spent = owner_backend.tasks_created

    with pytest.raises(AppError, match="paste your own WaveSpeed key"):
        generate(visitor, "a woman laughs").result()
    assert owner_backend.tasks_created == spent  # refused before any money was spent

    # Another visitor still has their own allowance.
    other = Client(space.url, verbose=False)
    generate(other, "a man nods").result()
    assert owner_backend.tasks_created == spent + 1


def test_a_visitor_with_their_own_key_has_no_cap(space, owner_backend):
    visitor = Client(space.url, verbose=False)
    generate(visitor, "a child waves").result()
    for prompt in ("a child laughs", "a child jumps"):
        status, video, summary = generate(visitor, prompt, key="visitor-own-key").result()
        assert Path(video).exists()
