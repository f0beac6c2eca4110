"""A director's film against the built-in backend: several takes of each shot, the pick carrying
the story on, a changed mind re-making only what follows, a cut to a picture, and the command
line's `film --takes`, `films pick` and `films export`."""

from __future__ import annotations

import json
import zipfile

import opentimelineio as otio
import pytest
from PIL import Image

from skyreels_demo.errors import BadInput, QuotaExceeded
from skyreels_demo.local_api import LocalBackend, TaskTiming
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.status import FilmStatus
from skyreels_demo.studio.film_takes import film_state
from skyreels_demo.studio.films import carry_on, make_film, pick, plans_of, remake_price
from skyreels_demo.studio.frames import frame_of
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.studio.studio import Studio
from skyreels_demo.studio.visitors import Requester

from .conftest import clean_env, jpeg_bytes, photo, renders, run_cli, settings_for, video_facts
from .test_films import difference, uploaded_pictures

FRAMES = SKYREELS_V1.frame_count
SHOTS = ["a woman turns to the window", "she smiles at the light", "the camera drifts to the sky"]


@pytest.fixture
def backend(request):
    """The local backend; it renders each take for a test marked `renders` (it compares the
    takes' frames), else every take is its stock clip, continued from all the same."""
    with LocalBackend(timing=TaskTiming(0.1, 0.3), render=renders(request)) as server:
        yield server


@pytest.fixture
def studio(backend, tmp_path):
    studio = Studio(settings_for(backend, tmp_path / "data"), SKYREELS_V1)
    yield studio
    studio.close()


def states_of(studio: Studio, film):
    film = studio.store.film(film.id)
    return film, film_state(plans_of(film), studio.store.shots_of(film.id), studio.model)


def test_three_shots_of_two_takes_make_six_videos_pick_one_each_and_cut_289_frames(studio, backend, photo_path):
    updates = list(make_film(studio, RunRequest("", str(photo_path)), [(p, 10 + 2 * i) for i, p in enumerate(SHOTS)], takes=2))
    film, states = states_of(studio, updates[-1].film)
    assert film.status == FilmStatus.DONE and backend.counts["submit"] == 6
    assert video_facts(film.film_path)["frames"] == 3 * FRAMES - 2 == 289
    for state in states:
        assert len(state.done) == 2 and state.picked is not None and not state.stale
        assert [take.seed for take in state.takes] == [state.plan.seed, state.plan.seed + 1]
    # Each shot's two takes start from the same frame: the pick before's last.
    for before, after in zip(states, states[1:]):
        assert {take.continued_from for take in after.takes} == {before.picked.id}
    # Both takes of a shot arrived on the timeline, named by take.
    assert {(u.shot, u.take) for u in updates if u.event is not None and u.take} >= {(s, t) for s in range(3) for t in (1, 2)}


@pytest.mark.renders
def test_picking_another_take_marks_what_follows_and_a_remake_sends_only_the_next_shot_s_takes(studio, backend, photo_path):
    updates = list(make_film(studio, RunRequest("", str(photo_path)), [(p, 20 + 2 * i) for i, p in enumerate(SHOTS)], takes=2))
    film, before = states_of(studio, updates[-1].film)
    other = 2 if before[1].take_number == 1 else 1
    film = pick(studio, film, 1, other)
    film, states = states_of(studio, film)
    assert film.status == FilmStatus.CHANGED and [s.stale for s in states] == [False, False, True]
    assert states[1].picked.id == before[1].takes[other - 1].id
    assert remake_price(studio, film, 2)[0] == 2  # shot 3's two takes, nothing else
    assert backend.counts["submit"] == 6  # picking sent nothing
    pictures_before = len(uploaded_pictures(backend))

    updates = list(carry_on(studio, film, remake=True))
    film, after = states_of(studio, updates[-1].film)
    assert film.status == FilmStatus.DONE and backend.counts["submit"] == 8  # only shot 3's takes
    assert not any(s.stale for s in after)
    assert {take.continued_from for take in after[2].takes} == {states[1].picked.id}
    # Their first frame is the new pick's last frame.
    last = frame_of(states[1].picked.video_path)
    sent = uploaded_pictures(backend)[pictures_before:]
    assert sent and all(difference(last, picture) < 4 for picture in sent)
    old = frame_of(before[1].picked.video_path)
    assert difference(old, sent[0]) > difference(last, sent[0])
    assert video_facts(film.film_path)["frames"] == 289
    # The old takes stay in History.
    assert len(studio.store.shots_of(film.id)) == 8


def test_picking_back_the_take_that_was_followed_sends_nothing_and_cuts_again(studio, backend, photo_path):
    updates = list(make_film(studio, RunRequest("", str(photo_path)), SHOTS[:2], takes=2))
    film, states = states_of(studio, updates[-1].film)
    first = states[0].take_number
    film = pick(studio, film, 0, 2 if first == 1 else 1)
    assert film.status == FilmStatus.CHANGED
    film = pick(studio, film, 0, first)
    assert film.status == FilmStatus.DONE and backend.counts["submit"] == 4
    assert video_facts(film.film_path)["frames"] == 2 * FRAMES - 1


def test_making_a_shot_again_with_a_new_seed_keeps_its_old_takes_and_marks_the_rest(studio, backend, photo_path):
    updates = list(make_film(studio, RunRequest("", str(photo_path)), SHOTS, takes=1))
    film = updates[-1].film
    updates = list(carry_on(studio, film, again=1, seed=500, prompt="she laughs at the light"))
    film, states = states_of(studio, updates[-1].film)
    assert film.status == FilmStatus.CHANGED and updates[-1].follows_old and updates[-1].shot == 2
    assert backend.counts["submit"] == 4  # shot 2 once more; shot 3 waits to be asked
    assert states[1].picked.seed == 500 and states[1].plan.prompt == "she laughs at the light"
    assert len(states[1].older) == 1 and states[2].stale


def test_a_cut_shot_starts_from_its_own_picture_and_keeps_its_first_frame(studio, backend, photo_path, tmp_path):
    own = tmp_path / "own.jpg"
    own.write_bytes(jpeg_bytes(photo(1000, 700, seed=9)))
    shots = [SHOTS[0], {"prompt": "a new room", "seed": 3, "start": "own", "image": str(own)}]
    updates = list(make_film(studio, RunRequest("", str(photo_path)), shots))
    film, states = states_of(studio, updates[-1].film)
    assert film.status == FilmStatus.DONE and states[1].source is None
    assert states[1].picked.continued_from is None
    sent = uploaded_pictures(backend)[-1]
    mine = Image.open(states[1].plan.image).convert("RGB")
    assert difference(mine, sent) < 4 and difference(frame_of(states[0].picked.video_path), sent) > 10
    assert video_facts(film.film_path)["frames"] == 2 * FRAMES  # no join frame dropped at a cut


def test_takes_count_against_the_caps_before_anything_is_sent(backend, tmp_path, photo_path):
    studio = Studio(settings_for(backend, tmp_path / "data", shared=True, visitor_runs_per_hour=5), SKYREELS_V1)
    try:
        with pytest.raises(QuotaExceeded, match="This film needs 6 videos, but only 5 more fit"):
            list(make_film(studio, RunRequest("", str(photo_path), requester=Requester("hf:someone", signed_in=False)), SHOTS, takes=2))
        with pytest.raises(BadInput, match="A shot has 1 to 4 takes, not 5"):
            list(make_film(studio, RunRequest("", str(photo_path)), SHOTS, takes=5))
    finally:
        studio.close()
    assert backend.counts["submit"] == 0


def test_the_command_line_makes_picks_remakes_and_exports_a_film_with_takes(backend, tmp_path, photo_path):
    env = clean_env(WAVESPEED_API_KEY="test-key-not-secret", WAVESPEED_BASE_URL=backend.base_url,
                    SKYREELS_DATA_DIR=str(tmp_path / "data"), SKYREELS_POLL="0.1", SKYREELS_CHECK_SCALE="0.1")
    made = run_cli("film", "--image", str(photo_path), "--shot", SHOTS[0], "--shot", SHOTS[1], "--shot", SHOTS[2],
                   "--takes", "2", "--seed", "40", "--yes", "--json", env=env, timeout=240)
    assert made.returncode == 0, made.stderr
    result = json.loads(made.stdout.splitlines()[-1])
    assert result["frames"] == 289 and backend.counts["submit"] == 6
    assert [shot["takes"] for shot in result["shots"]] == [[40, 41], [41, 42], [42, 43]]
    shot2 = result["shots"][1]
    other = 2 if shot2["take"] == 1 else 1
    picked = run_cli("films", "pick", result["film_id"], "--shot", "2", "--take", str(other), env=env)
    assert picked.returncode == 0 and "Shot 3 on follows an old frame" in picked.stderr and backend.counts["submit"] == 6
    listed = json.loads(run_cli("films", "--json", env=env).stdout)
    assert listed[0]["status"] == "changed" and listed[0]["follows_old_frame_from"] == 3
    remade = run_cli("films", "pick", result["film_id"], "--shot", "2", "--take", str(other), "--remake", "--yes", "--json",
                     env=env, timeout=240)
    assert remade.returncode == 0, remade.stderr
    after = json.loads(remade.stdout.splitlines()[-1])
    assert after["status"] == "done" and after["shots"][1]["take"] == other and backend.counts["submit"] == 8
    out = tmp_path / "film.zip"
    exported = run_cli("films", "export", result["film_id"], "--out", str(out), env=env)
    assert exported.returncode == 0, exported.stderr
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        timeline = otio.adapters.read_from_string(archive.read("film.otio").decode(), "otio_json")
        record = json.loads(archive.read("film.json"))
    clips = list(timeline.find_clips())
    assert len(clips) == 3 and {clip.media_reference.target_url for clip in clips} <= names
    assert [shot["task_id"] for shot in record["shots"]] == [shot["task_id"] for shot in after["shots"]]
    assert record["shots"][1]["take"] == other
