"""One disk budget, one sweeper, and one room per visitor, as a person would see them: the video
saved last still plays however full the disk; a film on a made-up key keeps nothing; a take's
zip is made once however often it is downloaded; two visitors continuing their own clips get
their own frames, and neither can continue or share the other's run; and the sweeper prunes
every kind of file the app writes, oldest first, keeping what must be kept.

The page's handlers are driven in process as the page calls them (a browser's private History
id, a Gradio request), against the built-in backend over loopback; the film on a made-up key
goes through a launched shared app with gradio_client, as the attack did."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from skyreels_demo.studio import takes
from skyreels_demo.config import Settings
from skyreels_demo.studio.frames import frame_of, starting_frame
from skyreels_demo.local_api import LocalBackend
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.web.page_input import NOT_YOURS
from skyreels_demo.store.retention import disk_use, prune
from skyreels_demo.store.records import KeySource
from skyreels_demo.store.runs import RunStore
from skyreels_demo.status import FilmStatus, RunStatus
from skyreels_demo.web.page import StudioApp

from .conftest import ASTRONAUT, CHELSEA, FAST, LaunchedApp, settings_for, video_facts

A, B = "a" * 32, "b" * 32  # two browsers' private History ids
OWNER_KEY = "owner-key-not-secret"


def page_request(session: str) -> gr.Request:
    """The request Gradio hands a page handler: the browser's session, its address, its host."""
    return gr.Request(
        headers={"host": "127.0.0.1:7860"},
        client=SimpleNamespace(host="127.0.0.1"),
        session_hash=session,
        query_params={},
        url="http://127.0.0.1:7860/",
    )


def drain(updates) -> list:
    """Every output a streaming handler yields, as the page receives them."""

    async def collect():
        return [item async for item in updates]

    return asyncio.run(collect())


def make_run(app: StudioApp, visitor: str, prompt: str, image: str = ASTRONAUT, seed: int = 1):
    """Generate, as the page's button does; the run it made."""
    outputs = drain(app.runs.generate_in_page(prompt, image, seed, True, "crop", "", visitor, page_request(visitor)))
    status, video, _summary = outputs[-1]
    assert video, status
    return app.studio.store.by_task(Path(video).stem)


@pytest.fixture
def shared_app(backend, tmp_path):
    app = StudioApp(settings_for(backend, tmp_path / "data", shared=True, visitor_runs_per_hour=50))
    yield app
    app.studio.close()


def listed(app: StudioApp, visitor: str) -> list[str]:
    """The run ids History lists for this browser, and checks every listed picture is there."""
    items, ids = app.history.history(visitor, page_request(visitor))
    assert all(Path(picture).is_file() for picture, _caption in items)
    return ids


# --- the newest video survives a full budget ---------------------------------------------------


def test_the_video_saved_last_survives_a_full_budget_and_every_run_stays_in_history(backend, tmp_path):
    # A budget far smaller than one video: the disk is full from the first run on.
    app = StudioApp(settings_for(backend, tmp_path / "data", shared=True, disk_budget_mb=0.01, visitor_runs_per_hour=50))
    try:
        runs = [make_run(app, A, f"a woman smiles, take {n}", seed=n) for n in (1, 2, 3)]
        newest = runs[-1]
        # The first two were saved two hours ago, as far as the sweeper can tell.
        for run in runs[:2]:
            app.studio.store.update(run.id, finished_at=time.time() - 2 * 3600)
        for _ in range(2):  # every pass, not only the first
            prune(app.settings, app.studio.store)
        assert video_facts(newest.video_path)["frames"] == SKYREELS_V1.frame_count  # still plays
        assert not any(app.studio.store.get(run.id).has_video for run in runs[:2])
        # Every run is still listed in History, the pruned ones with their picture or a placeholder.
        assert set(listed(app, A)) == {run.id for run in runs}
        items, ids = app.history.history(A, page_request(A))
        captions = dict(zip(ids, (caption for _, caption in items)))
        # Listed as made takes: their prompt and seed, no state word (pruned or not).
        assert all(captions[run.id].startswith(f"a woman smiles, take {run.seed} · seed {run.seed} · ") for run in runs)
        # The disk is still over its budget: what is left is less than an hour old.
        assert disk_use(app.settings) > app.settings.disk_budget_mb * 1_000_000
    finally:
        app.studio.close()


# --- a refused key keeps nothing ---------------------------------------------------------------


@pytest.fixture(scope="module")
def owner_backend():
    """Stands in for WaveSpeed: only the owner's key is accepted."""
    with LocalBackend(api_key=OWNER_KEY, timing=FAST) as server:
        yield server


def written_files(data: Path) -> list[Path]:
    """Files the app wrote in its data directory, but for its records and the test's log."""
    return sorted(
        p for p in data.rglob("*")
        if p.is_file() and not p.name.startswith(("runs.sqlite3", "browser-state.secret", "app.log"))
    )


def test_films_and_runs_on_a_made_up_key_keep_nothing_on_disk(owner_backend, tmp_path):
    data = tmp_path / "data"
    env = dict(WAVESPEED_BASE_URL=owner_backend.base_url, WAVESPEED_API_KEY=OWNER_KEY, SKYREELS_SHARED="1")
    with LaunchedApp(data, **env) as app:
        client = Client(app.url, verbose=False)
        for seed in (1, 2, 3):
            with pytest.raises(AppError, match="(?i)key"):
                client.predict(
                    handle_file(ASTRONAUT), "a woman smiles\nshe turns to the window", seed, f"made-up-key-{seed}",
                    api_name="/make_film",
                )
        with pytest.raises(AppError, match="(?i)key"):
            client.predict("a cat blinks", handle_file(CHELSEA), 4, True, "crop", "made-up-key-4", "", api_name="/generate")
    assert written_files(data) == []
    store = RunStore(data / "runs.sqlite3")
    films = store.films()
    assert len(films) == 3 and all(f.status == FilmStatus.FAILED and f.image_path is None for f in films)
    assert {run.status for run in store.recent()} == {RunStatus.REFUSED}


def test_a_run_refused_at_its_submit_for_its_key_keeps_no_picture(owner_backend, tmp_path):
    # Sent inline, the picture is not uploaded first: the key is refused at the submit.
    settings = settings_for(owner_backend, tmp_path / "data", api_key=OWNER_KEY, shared=True, image_transport="inline")
    app = StudioApp(settings)
    try:
        outputs = drain(app.runs.generate_in_page("a cat blinks", CHELSEA, 5, True, "crop", "made-up-key", A, page_request(A)))
        assert "key" in outputs[-1][0].lower() and outputs[-1][1] is None
        assert written_files(settings.data_dir) == []
        [run] = app.studio.store.recent()
        assert run.status == RunStatus.REFUSED and run.image_path is None
        assert listed(app, A) == []  # nothing to show, nothing kept
    finally:
        app.studio.close()


# --- a take's zip is made once ------------------------------------------------------------------


def test_downloading_a_take_again_and_again_makes_one_zip(shared_app):
    app = shared_app
    run = make_run(app, A, "a woman smiles at the camera")
    paths = {app.takes.download(run.id, A, page_request(A))[0]["value"] for _ in range(10)}
    [path] = paths
    zips = [p for p in app.settings.takes_dir.rglob("*") if p.is_file()]
    assert zips == [Path(path)] and Path(path).name.startswith("skyreels-take-")
    assert takes.read_take(path, SKYREELS_V1).prompt == "a woman smiles at the camera"
    made_at = Path(path).stat().st_mtime_ns
    app.takes.download(run.id, A, page_request(A))
    assert Path(path).stat().st_mtime_ns == made_at  # not written again
    # It counts in the one budget; pruned, it is made again at the next click, at the same name.
    assert disk_use(app.settings) >= Path(path).stat().st_size + Path(run.video_path).stat().st_size
    Path(path).unlink()
    assert app.takes.download(run.id, A, page_request(A))[0]["value"] == path and Path(path).is_file()
    # Another browser cannot download it: it is told so, beside the button.
    zip_file, said = app.takes.download(run.id, B, page_request(B))
    assert zip_file["value"] is None and NOT_YOURS in said


# --- one visitor, one room -----------------------------------------------------------------------


def last_frame(video: str | Path) -> Image.Image:
    return frame_of(video)


def same_picture(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and a.tobytes() == b.tobytes()


@pytest.mark.renders  # looks at the video
def test_two_visitors_continuing_their_own_clips_each_get_their_own_frame(shared_app, tmp_path):
    app = shared_app
    mine, theirs = make_run(app, A, "a woman smiles", ASTRONAUT), make_run(app, B, "a cat blinks", CHELSEA, seed=2)
    # Their own takes, continued from the page: each frame is named by its own run.
    frame_a, _, _ = app.runs.frame_to_continue(mine.video_path, -1, A, page_request(A))
    frame_b, _, _ = app.runs.frame_to_continue(theirs.video_path, -1, B, page_request(B))
    assert frame_a != frame_b
    # (An offline preview's last frame, without its label: films.starting_frame.)
    assert same_picture(Image.open(frame_a).convert("RGB"), starting_frame(app.studio, mine, mine.video_path))
    assert same_picture(Image.open(frame_b).convert("RGB"), starting_frame(app.studio, theirs, theirs.video_path))
    # Clips from elsewhere (each visitor's own MP4): once one shared name, now each their own.
    clip_a, clip_b = tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4"
    for clip, run in ((clip_a, mine), (clip_b, theirs)):
        clip.parent.mkdir()
        clip.write_bytes(Path(run.video_path).read_bytes())
    from_clip_a, _, _ = app.runs.frame_to_continue(str(clip_a), -1, A, page_request(A))
    before = Path(from_clip_a).read_bytes()
    from_clip_b, _, _ = app.runs.frame_to_continue(str(clip_b), -1, B, page_request(B))
    assert from_clip_a != from_clip_b and Path(from_clip_a).read_bytes() == before  # not swapped
    assert same_picture(Image.open(from_clip_b).convert("RGB"), last_frame(theirs.video_path))
    # Each continues from their own frame; the new run records which of their runs it continued.
    next_a = make_run(app, A, "she turns to the window", frame_a, seed=3)
    next_b = make_run(app, B, "the cat looks away", frame_b, seed=4)
    assert (next_a.continued_from, next_b.continued_from) == (mine.id, theirs.id)
    # A frame named by another visitor's run says nothing about it for this one.
    stolen = make_run(app, B, "the cat looks away", frame_a, seed=5)
    assert stolen.continued_from is None


def test_a_visitor_can_neither_continue_nor_share_another_visitors_run(shared_app):
    app = shared_app
    theirs = make_run(app, A, "a woman smiles")
    frames_before = sorted(app.settings.frames_dir.glob("*"))
    # Each refusal is said beside the button; the picture and prompt are left as they are.
    for video, frame in ((theirs.video_path, -1), ({"video": {"path": theirs.video_path}}, 10)):
        image, prompt, said = app.runs.frame_to_continue(video, frame, B, page_request(B))
        assert NOT_YOURS in said and image == prompt == gr.update()
    assert sorted(app.settings.frames_dir.glob("*")) == frames_before  # nothing read, nothing written
    link, said = app.takes.share(theirs.id, B, page_request(B))
    assert NOT_YOURS in said and link == gr.update()
    *_, said = app.takes.keep(theirs.id, B, "", False, [], page_request(B))
    assert NOT_YOURS in said and not app.studio.store.get(theirs.id).kept
    # The API has no History: a caller continuing a take from the page is refused too.
    with pytest.raises(gr.Error, match=NOT_YOURS):
        drain(app.runs.continue_shot(theirs.video_path, "she turns", 3, True, "crop", "", page_request("api")))
    assert app.studio.store.live_share(theirs.id) is None
    assert [run.id for run in app.studio.store.recent()] == [theirs.id]  # nothing was made
    # Its owner still can.
    assert app.takes.share(theirs.id, A, page_request(A))[0]["value"].startswith("http://127.0.0.1:7860/?take=")


# --- the sweeper knows every kind of file -------------------------------------------------------


def _file(path: Path, size: int, at: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    os.utime(path, (at, at))
    return path


def _run(store: RunStore, prompt: str, **fields):
    run = store.create(model=SKYREELS_V1.name, prompt=prompt, seed=1, mode="api", api_host="h", visitor=A)
    return store.update(run.id, **fields)


def test_the_sweeper_prunes_films_frames_zips_reports_and_preview_files_over_budget(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", disk_budget_mb=1.0)
    store = RunStore(settings.runs_db)
    now = time.time() + 3 * 3600  # three hours from now, as far as the sweeper knows
    old = now - 2 * 3600
    done = dict(status=RunStatus.DONE, finished_at=old)
    # What a person kept, what is still being made, and a video saved a minute ago: all kept.
    kept = _run(store, "kept", kept=1, video_path=str(_file(settings.videos_dir / "k.mp4", 300_000, old)),
                image_path=str(_file(settings.images_dir / "k.jpg", 50_000, old)), **done)
    kept_zip = _file(settings.takes_dir / kept.id / "skyreels-take-k.zip", 350_000, old)
    flying = _run(store, "in flight", status=RunStatus.PROCESSING, task_id="t-flying",
                  image_path=str(_file(settings.images_dir / "f.jpg", 50_000, old)))
    fresh = _run(store, "fresh", video_path=str(_file(settings.videos_dir / "n.mp4", 300_000, now - 60)),
                 status=RunStatus.DONE, finished_at=now - 60)
    making = store.create_film(model=SKYREELS_V1.name, shots=[{"prompt": "x", "seed": 1}] * 2,
                               key_source=KeySource.OWNER, image_path=str(_file(settings.images_dir / "m.jpg", 50_000, old)))
    shot = _run(store, "shot 1", film_id=making.id, shot=0, video_path=str(_file(settings.videos_dir / "s.mp4", 300_000, old)), **done)
    # What may go: an old take's files, a cut film, frames, a zip, a sweep's report, the preview's
    # files, and a frame an older version kept beside the pictures.
    other = _run(store, "other", video_path=str(_file(settings.videos_dir / "o.mp4", 300_000, old)),
                 image_path=str(_file(settings.images_dir / "o.jpg", 50_000, old)), **done)
    cut = store.create_film(model=SKYREELS_V1.name, shots=[{"prompt": "x", "seed": 1}] * 2, key_source=KeySource.OWNER,
                            image_path=None)
    store.update_film(cut.id, status=FilmStatus.DONE, film_path=str(_file(settings.films_dir / f"{cut.id}.mp4", 600_000, old)))
    loose = [
        _file(settings.frames_dir / f"{other.id}-last.png", 200_000, old),
        _file(settings.takes_dir / other.id / "skyreels-take-o.zip", 350_000, old),
        _file(settings.sweeps_dir / "sweep-1" / "report.html", 20_000, old),
        _file(settings.sweeps_dir / "sweep-1" / "takes" / "skyreels-take-o.zip", 350_000, old),
        _file(settings.preview_dir / "renders" / ("0" * 64 + ".mp4"), 300_000, old),
        _file(settings.preview_dir / "uploads" / ("1" * 32 + ".png"), 100_000, old),
        _file(settings.images_dir / "continue-clip-last.png", 200_000, old),
    ]

    pruned = prune(settings, store, now=now)

    for path in (kept.video_path, kept.image_path, kept_zip, flying.image_path, fresh.video_path,
                 making.image_path, shot.video_path):
        assert Path(path).is_file(), path
    for path in (other.video_path, other.image_path, store.film(cut.id).film_path, *loose):
        assert not Path(path).exists(), path
    assert not (settings.sweeps_dir / "sweep-1").exists() and not (settings.takes_dir / other.id).exists()
    # Every record stays: History still lists each run, the films list each film.
    assert {run.id for run in store.recent()} == {kept.id, flying.id, fresh.id, shot.id, other.id}
    assert {film.id for film in store.films()} == {making.id, cut.id}
    assert pruned.kept_bytes == disk_use(settings) and pruned.files == 2 + 1 + 6  # sweep-1 is one report


def test_the_preview_still_makes_a_picture_whose_render_the_sweeper_deleted(tmp_path):
    # No key: the offline preview. Its render of a picture is reused by the next run of that
    # picture; once swept, it is made again.
    settings = Settings(data_dir=tmp_path / "data", poll="0.1", preview_timing=(0.1, 0.3), disk_budget_mb=0.001)
    app = StudioApp(settings)
    try:
        first = make_run(app, A, "a woman smiles")
        renders = settings.preview_dir / "renders"
        assert any(renders.iterdir())
        pruned = prune(settings, app.studio.store, now=time.time() + 2 * 3600)
        assert pruned.files and not any(renders.iterdir()) and not Path(first.video_path).exists()
        again = make_run(app, A, "a woman smiles", seed=2)
        assert video_facts(again.video_path)["frames"] == SKYREELS_V1.frame_count
        assert set(listed(app, A)) == {first.id, again.id}
    finally:
        app.preview.stop()
        app.studio.close()
