"""The offline preview answers the seed and the prompt: another seed or another prompt makes
another camera move, the same seed and prompt make the same clip, byte for byte, even on another
machine's fresh backend. Seen as a visitor sees it: the launched app with no key, through
gradio_client, its videos decoded frame by frame."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from gradio_client import Client, handle_file

from skyreels_demo.local_api.moves import KINDS, asked_move, camera_move

from .conftest import CHELSEA, LaunchedApp

PROMPT = "A tabby cat slowly blinks, twitches its ears and turns to look past the camera"


def frames_of(path: str | Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24").astype(np.int16) for frame in container.decode(video=0)]


def offline_app(data: Path) -> LaunchedApp:
    # No key anywhere (clean_env drops the developer's): every run is the offline preview.
    return LaunchedApp(data, SKYREELS_PREVIEW_TIMING="0.2,0.4")


def made(client: Client, seed: int, prompt: str = PROMPT) -> tuple[bytes, list[np.ndarray], str]:
    status, video, summary = client.predict(prompt, handle_file(CHELSEA), seed, api_name="/generate")
    assert f"Seed {seed}" in summary and "Offline preview" in summary, summary
    return Path(video).read_bytes(), frames_of(video), summary


def test_offline_seeds_1_and_2_make_different_videos_and_seed_1_twice_the_same(tmp_path):
    with offline_app(tmp_path / "first") as app:
        client = Client(app.url, verbose=False)
        one, one_frames, _ = made(client, 1)
        two, two_frames, _ = made(client, 2)
        one_again, _, _ = made(client, 1)
        other_prompt, other_frames, _ = made(client, 1, "A tabby cat yawns and the camera pans left")

    # Same seed and prompt: the very same file.
    assert one_again == one
    # Another seed: another clip, and visibly so. Each starts on the whole picture (an
    # image-to-video model's first frame is its picture), then the camera goes elsewhere.
    assert two != one
    assert np.abs(one_frames[0] - two_frames[0]).mean() < 2
    assert np.abs(one_frames[-1] - two_frames[-1]).mean() > 8
    # Another prompt with the same seed: another clip too.
    assert other_prompt != one and np.abs(one_frames[-1] - other_frames[-1]).mean() > 8

    # Not a cache: a fresh app on a fresh data directory renders seed 1 again, byte for byte.
    with offline_app(tmp_path / "second") as fresh:
        again, _, _ = made(Client(fresh.url, verbose=False), 1)
    assert again == one


def test_variations_offline_are_different_clips(tmp_path):
    with offline_app(tmp_path / "data") as app:
        grid, lines = Client(app.url, verbose=False).predict(
            PROMPT, handle_file(CHELSEA), 2, 40, api_name="/generate_variations"
        )
    videos = [item["video"]["video"] if isinstance(item["video"], dict) else item["video"] for item in grid]
    assert len(videos) == 2 and lines.count("✓") == 2
    first, second = (frames_of(video) for video in videos)
    assert np.abs(first[-1] - second[-1]).mean() > 8, "two variations should not be the same clip"


def test_a_move_is_chosen_by_seed_and_prompt_and_a_named_move_is_honoured():
    moves = {camera_move(seed, PROMPT) for seed in range(40)}
    assert len(moves) == 40  # forty seeds, forty framings
    assert {move.kind for move in moves} == set(KINDS)
    assert camera_move(7, PROMPT) == camera_move(7, PROMPT)
    assert camera_move(7, PROMPT) != camera_move(7, PROMPT + " in the rain")
    for prompt, kind in [
        ("FPS-24, the camera slowly pushes in on her face", "push in"),
        ("a slow dolly in as he smiles", "push in"),
        ("the camera pans left across the harbour", "pan left"),
        ("camera pans slowly to the right", "pan right"),
        ("she looks up as the camera tilts up", "tilt up"),
        ("the camera tilts down to the cup", "tilt down"),
    ]:
        assert asked_move(prompt) == kind
        assert {camera_move(seed, prompt).kind for seed in range(8)} == {kind}
    assert asked_move("she moves in the wind") is None


@pytest.mark.parametrize("seed", range(12))
def test_every_move_starts_on_the_whole_picture_and_never_leaves_it(seed):
    move = camera_move(seed, PROMPT)
    size = (1104, 626)
    assert move.window(size, 0.0) == pytest.approx((0, 0, *size), abs=1e-6)
    for step in range(11):
        left, top, right, bottom = move.window(size, step / 10)
        assert -1e-6 <= left < right <= size[0] + 1e-6 and -1e-6 <= top < bottom <= size[1] + 1e-6
    left, top, right, bottom = move.window(size, 1.0)
    assert size[0] / (right - left) == pytest.approx(move.zoom)  # it gets where it was going
