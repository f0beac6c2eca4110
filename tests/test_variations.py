"""Several seeds at once: `stream_variations`, the one way the page, the API and MCP make them,
read on a long-lived event loop as Gradio's, against the real local backend on loopback, as the
offline preview and as the API behind a key."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from skyreels_demo.config import Settings
from skyreels_demo.errors import BadInput, QuotaExceeded, Stopped, TaskFailed
from skyreels_demo.studio.events import Submitted
from skyreels_demo.local_api import LocalBackend, TaskTiming
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.studio.studio import Studio
from skyreels_demo.studio.variations import VariationUpdate, stream_variations, variation_seeds

from .conftest import settings_for, video_facts, wait_for
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.studio.visitors import Requester

PROMPT = "a woman turns to the camera and smiles"


def preview_studio(backend: LocalBackend, data_dir: Path, **settings) -> Studio:
    return Studio(Settings(data_dir=data_dir, poll="0.1", check_scale=0.1, **settings), SKYREELS_V1, start_preview=lambda: backend.base_url)


@pytest.fixture(scope="module")
def loop():
    """An event loop that outlives each read of the updates, as Gradio's serving loop does."""
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, name="test-loop", daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join(10)


def make_variations(loop, studio: Studio, request: RunRequest, count, until=None) -> list[VariationUpdate]:
    """Every update a listener reads; `until(update)` returning True leaves early, as a closed
    page does (the stream is closed, as Gradio closes it)."""

    async def read() -> list[VariationUpdate]:
        seen = []
        stream = stream_variations(studio, request, count)
        try:
            async for update in stream:
                seen.append(update)
                if until is not None and until(update):
                    break
        finally:
            await stream.aclose()
        return seen

    return asyncio.run_coroutine_threadsafe(read(), loop).result(timeout=120)


def last_of_each(updates: list[VariationUpdate]) -> dict[int, VariationUpdate]:
    ends: dict[int, VariationUpdate] = {}
    for update in updates:
        ends[update.number] = update
    return ends


@pytest.mark.parametrize("keyed", [False, True], ids=["preview", "keyed"])
def test_three_variations_give_three_videos_with_three_distinct_seeds(keyed, loop, backend, tmp_path, photo_path):
    data = tmp_path / "data"
    studio = Studio(settings_for(backend, data), SKYREELS_V1) if keyed else preview_studio(backend, data)
    try:
        updates = list(make_variations(loop, studio, RunRequest(PROMPT, str(photo_path)), 3))
    finally:
        studio.close()

    assert [u.number for u in updates[:3]] == [1, 2, 3] and all(u.event is None for u in updates[:3])
    ends = last_of_each(updates)
    assert sorted(ends) == [1, 2, 3]
    seeds = {end.seed for end in ends.values()}
    assert len(seeds) == 3 and all(0 <= seed <= SKYREELS_V1.seed_max for seed in seeds)
    for end in ends.values():
        assert end.error is None and end.finished
        assert f"seed {end.seed}" in end.message
        assert video_facts(end.video_path)["frames"] == 97
    assert len({end.video_path for end in ends.values()}) == 3
    # Each is its own recorded run with its own seed, all from the one prepared image.
    runs = studio.store.recent()
    assert sorted(run.seed for run in runs) == sorted(seeds)
    assert {run.status for run in runs} == {"done"} and len({run.image_sha256 for run in runs}) == 1
    assert {run.mode for run in runs} == {"api" if keyed else "preview"}
    assert backend.counts["submit"] == 3


def test_a_chosen_seed_gives_the_seeds_after_it_wrapping_at_the_top():
    assert variation_seeds(41, 3, SKYREELS_V1) == [41, 42, 43]
    assert variation_seeds("7", 2, SKYREELS_V1) == [7, 8]
    top = SKYREELS_V1.seed_max
    assert variation_seeds(top, 3, SKYREELS_V1) == [top, 0, 1]
    randoms = variation_seeds(-1, 4, SKYREELS_V1)
    assert len(set(randoms)) == 4 and all(0 <= seed <= top for seed in randoms)


def test_a_chosen_seed_reaches_every_variation(loop, studio, photo_path):
    ends = last_of_each(list(make_variations(loop, studio, RunRequest(PROMPT, str(photo_path), 1234), 2)))
    assert {n: end.seed for n, end in ends.items()} == {1: 1234, 2: 1235}
    assert sorted(run.seed for run in studio.store.recent()) == [1234, 1235]


def test_stop_ends_every_variation_and_the_paid_tasks_stay_recorded(loop, tmp_path, photo_path):
    with LocalBackend(timing=TaskTiming(queue_s=0.2, processing_s=120)) as slow:
        # Three tasks in flight at once: an account above Bronze's two.
        studio = Studio(settings_for(slow, tmp_path / "data", max_concurrent_tasks=3), SKYREELS_V1)
        stop = threading.Event()
        try:
            started = time.monotonic()
            submitted = set()

            def stop_once_all_are_submitted(update: VariationUpdate) -> bool:
                if isinstance(update.event, Submitted):
                    submitted.add(update.number)
                if len(submitted) == 3:
                    stop.set()
                return False

            updates = make_variations(loop, studio, RunRequest(PROMPT, str(photo_path), stop=stop), 3, stop_once_all_are_submitted)
            took = time.monotonic() - started
        finally:
            studio.close()
    ends = last_of_each(updates)
    assert sorted(ends) == [1, 2, 3]
    assert all(isinstance(end.error, Stopped) and end.video_path is None for end in ends.values())
    assert all("still runs on WaveSpeed" in end.message for end in ends.values())
    assert took < 30  # far from the tasks' two minutes
    assert len(studio.store.unfinished()) == 3  # paid for: the follower or resume finishes them


def test_a_cap_refusal_is_reported_for_that_variation_and_the_others_go_on(loop, backend, tmp_path, photo_path):
    studio = preview_studio(backend, tmp_path / "data", shared=True, preview_runs_per_hour=3)
    try:
        updates = list(make_variations(loop, studio, RunRequest(PROMPT, str(photo_path), requester=Requester("ip:203.0.113.9")), 4))
    finally:
        studio.close()
    ends = last_of_each(updates)
    refused = [end for end in ends.values() if end.error is not None]
    made = [end for end in ends.values() if end.video_path is not None]
    assert len(refused) == 1 and len(made) == 3
    assert isinstance(refused[0].error, QuotaExceeded)
    assert "You have made 3 offline previews in the last hour" in refused[0].message
    assert backend.counts["submit"] == 3


def test_one_failed_task_does_not_stop_the_others(loop, studio, backend, photo_path):
    backend.faults.fail_next_task(5000, "Internal error")
    ends = last_of_each(list(make_variations(loop, studio, RunRequest(PROMPT, str(photo_path)), 3)))
    failed = [end for end in ends.values() if end.error is not None]
    assert len(failed) == 1 and isinstance(failed[0].error, TaskFailed)
    assert "The video was not made" in failed[0].message
    assert sum(end.video_path is not None for end in ends.values()) == 2


def test_more_variations_than_task_slots_wait_their_turn(loop, backend, tmp_path, photo_path):
    studio = Studio(settings_for(backend, tmp_path / "data", max_concurrent_tasks=2), SKYREELS_V1)
    try:
        updates = list(make_variations(loop, studio, RunRequest(PROMPT, str(photo_path)), 4))
    finally:
        studio.close()
    # Two wait in line behind the first two, and are told so ("1 ahead of you", "You are next").
    assert any("ahead of you" in update.message or "You are next" in update.message for update in updates)
    assert sum(end.video_path is not None for end in last_of_each(updates).values()) == 4


@pytest.mark.parametrize(
    "count, prompt, image, sentence",
    [
        (5, PROMPT, "photo", "Choose from 2 to 4 variations"),
        (1, PROMPT, "photo", "Choose from 2 to 4 variations"),
        (3, "   ", "photo", "Write a prompt first"),
        (3, PROMPT, None, "Add an image first"),
    ],
)
def test_bad_input_is_refused_before_anything_starts(loop, count, prompt, image, sentence, studio, backend, photo_path):
    with pytest.raises(BadInput, match=sentence):
        (make_variations(loop, studio, RunRequest(prompt, str(photo_path) if image else None), count))
    assert sum(backend.counts.values()) == 0
    assert studio.store.recent(model=None) == []


def test_a_listener_who_goes_away_stops_every_wait(loop, tmp_path, photo_path):
    with LocalBackend(timing=TaskTiming(queue_s=0.2, processing_s=120)) as slow:
        # Three tasks in flight at once: an account above Bronze's two.
        studio = Studio(settings_for(slow, tmp_path / "data", max_concurrent_tasks=3), SKYREELS_V1)
        stop = threading.Event()
        try:
            submitted = set()

            def leave_once_both_are_submitted(update: VariationUpdate) -> bool:
                if isinstance(update.event, Submitted):
                    submitted.add(update.number)
                return len(submitted) == 2

            make_variations(loop, studio, RunRequest(PROMPT, str(photo_path), stop=stop), 2, leave_once_both_are_submitted)
            assert stop.is_set()
            # Nobody follows them here any more; they are recorded for the follower and resume.
            wait_for(lambda: not studio.watched(), timeout=10)
            assert len(studio.store.unfinished()) == 2
        finally:
            studio.close()
