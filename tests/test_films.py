"""Longer than four seconds: a shot continued from a video's last frame, and films of shots cut
into one, made, stopped, resumed and refused against the built-in backend."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from skyreels_demo.errors import BadInput, QuotaExceeded
from skyreels_demo.studio.cut import cut_film
from skyreels_demo.studio.films import carry_on, make_film
from skyreels_demo.studio.frames import continue_run, frame_of
from skyreels_demo.local_api import LocalBackend, TaskTiming
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.status import FilmStatus, RunStatus
from skyreels_demo.studio.studio import Studio
from skyreels_demo.studio.visitors import Requester

from .conftest import ROOT, clean_env, open_store, renders, run_cli, settings_for, video_facts, wait_for

FRAMES = SKYREELS_V1.frame_count
SHOTS = ["a woman turns to the window", "she smiles at the light", "the camera drifts to the sky"]


def frame_pts(path: str | Path) -> list[int]:
    with av.open(str(path)) as container:
        return [frame.pts for frame in container.decode(container.streams.video[0])]


def uploaded_pictures(backend: LocalBackend) -> list[Image.Image]:
    """Every picture the backend was handed, in the order it received them."""
    folder = backend.storage.uploads_dir
    files = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return [Image.open(p).convert("RGB") for p in files if p.is_file()]


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two pictures, 0 to 255."""
    b = b.resize(a.size)
    return float(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean())


@pytest.fixture
def tracking_backend(request):
    """The local backend; it renders each shot for a test marked `renders` (it looks at the
    frames), else every shot is its stock clip, continued from all the same."""
    with LocalBackend(timing=TaskTiming(0.1, 0.3), render=renders(request)) as server:
        yield server


@pytest.fixture
def studio(tracking_backend, tmp_path):
    studio = Studio(settings_for(tracking_backend, tmp_path / "data"), SKYREELS_V1)
    yield studio
    studio.close()


@pytest.mark.renders
def test_a_continued_shot_starts_from_the_last_frame_of_the_video_before(studio, tracking_backend, photo_path):
    first = list(studio.generate(RunRequest("a man looks up", str(photo_path), 1)))[-1]
    events = list(continue_run(studio, RunRequest("he waves at the camera", None, 2), first.run.task_id))
    second = events[-1].run
    assert second.continued_from == first.run.id and second.status == RunStatus.DONE
    last = frame_of(first.video_path)
    sent = uploaded_pictures(tracking_backend)[-1]
    assert sent.size == SKYREELS_V1.frame_for(*last.size)
    assert difference(last, sent) < 4  # the same picture, within JPEG error
    assert tracking_backend.counts["submit"] == 2


@pytest.mark.renders
def test_a_frame_the_visitor_picks_is_the_one_continued(studio, photo_path):
    first = list(studio.generate(RunRequest("a man looks up", str(photo_path), 1)))[-1]
    picked = frame_of(first.video_path, 10)
    assert difference(picked, frame_of(first.video_path)) > 1  # the camera moved in between
    assert difference(picked, frame_of(first.video_path, 10)) == 0


@pytest.mark.parametrize(
    "make, sentence",
    [
        (lambda tmp: tmp / "missing.mp4", "There is no video at that path"),
        (lambda tmp: _write(tmp / "text.mp4", b"not a video at all"), "not an MP4 video that can be read"),
        (lambda tmp: _png(tmp / "picture.mp4"), "not an MP4 video"),
    ],
    ids=["missing", "junk", "a-picture"],
)
def test_a_video_that_cannot_be_continued_is_refused_with_a_sentence(make, sentence, tmp_path):
    with pytest.raises(BadInput, match=sentence):
        frame_of(make(tmp_path))


def test_a_frame_past_the_end_is_refused_with_the_range(studio, photo_path):
    first = list(studio.generate(RunRequest("a man looks up", str(photo_path), 1)))[-1]
    with pytest.raises(BadInput, match=f"pick a frame from 0 to {FRAMES - 1}"):
        frame_of(first.video_path, FRAMES)


def test_a_three_shot_film_is_cut_into_one_video_with_every_join_frame_exact(studio, tracking_backend, photo_path):
    updates = list(make_film(studio, RunRequest("", str(photo_path)), [(p, 10 + i) for i, p in enumerate(SHOTS)]))
    film = updates[-1].film
    assert film.status == FilmStatus.DONE and updates[-1].video_path == Path(film.film_path)
    facts = video_facts(film.film_path)
    assert facts["frames"] == 3 * FRAMES - 2  # each join's repeated frame dropped
    assert facts["fps"] == SKYREELS_V1.fps and facts["pix_fmt"] == "yuv420p" and facts["codec"] == "h264"
    pts = frame_pts(film.film_path)
    steps = {b - a for a, b in zip(pts, pts[1:])}
    assert len(steps) == 1  # evenly spaced: no jump at a join
    assert tracking_backend.counts["submit"] == 3
    shots = studio.store.shots_of(film.id)
    assert [run.shot for run in shots] == [0, 1, 2] and [run.seed for run in shots] == [10, 11, 12]
    assert shots[1].continued_from == shots[0].id and shots[2].continued_from == shots[1].id
    # The timeline saw every shot arrive, in order.
    arrived = [u.shot for u in updates if u.video_path is not None and u.shot is not None]
    assert arrived == [0, 1, 2]


def test_a_failed_shot_is_made_again_without_redoing_the_others(studio, tracking_backend, photo_path):
    tracking_backend.faults.fail_next_task(5000, "Internal error")
    updates = list(make_film(studio, RunRequest("", str(photo_path)), SHOTS[:2]))
    film = updates[-1].film
    assert film.status == FilmStatus.FAILED and updates[-1].shot == 0 and updates[-1].error is not None
    # Made again with a new seed: shot 1 again, then shot 2, then the cut.
    updates = list(carry_on(studio, film, again=0, seed=77))
    film = updates[-1].film
    assert film.status == FilmStatus.DONE and video_facts(film.film_path)["frames"] == 2 * FRAMES - 1
    assert film.shots[0]["seed"] == 77
    assert tracking_backend.counts["submit"] == 3  # the failed try, and two shots


def test_a_film_that_would_pass_the_visitor_s_cap_is_refused_before_its_first_shot(tracking_backend, tmp_path, photo_path):
    studio = Studio(settings_for(tracking_backend, tmp_path / "data", shared=True, visitor_runs_per_hour=2), SKYREELS_V1)
    try:
        with pytest.raises(QuotaExceeded, match="This film needs 3 videos, but only 2 more fit"):
            list(make_film(studio, RunRequest("", str(photo_path), requester=Requester("ip:203.0.113.9")), SHOTS))
    finally:
        studio.close()
    assert tracking_backend.counts["submit"] == 0


@pytest.mark.parametrize(
    "shots, sentence",
    [
        (["only one"], "A film has 2 to 6 shots; this one has 1"),
        ([f"shot {n}" for n in range(7)], "this one has 7"),
        (["a first shot", "   "], "Shot 2 has no prompt"),
        (["a first shot", "x" * 3000], "Shot 2: The prompt is 3000 characters long"),
    ],
    ids=["one", "seven", "empty", "too-long"],
)
def test_a_film_that_cannot_be_made_is_refused_before_anything_is_sent(studio, tracking_backend, photo_path, shots, sentence):
    with pytest.raises(BadInput, match=sentence):
        list(make_film(studio, RunRequest("", str(photo_path)), shots))
    assert sum(tracking_backend.counts.values()) == 0
    assert studio.store.films() == []


def test_continuing_a_failed_run_is_refused(studio, tracking_backend, photo_path):
    tracking_backend.faults.fail_next_task(5000, "Internal error")
    with pytest.raises(Exception):
        list(studio.generate(RunRequest("a man looks up", str(photo_path), 1)))
    [failed] = studio.store.recent()
    with pytest.raises(BadInput, match="That run failed"):
        list(continue_run(studio, RunRequest("he waves", None, 2), failed.id))


def test_a_film_killed_after_its_second_submit_is_finished_by_resume(tmp_path, photo_path):
    data = tmp_path / "data"
    # Slow tasks, so the process is killed while shot 2 is being made.
    with LocalBackend(timing=TaskTiming(0.2, 2.0), data_dir=tmp_path / "api", render=False) as api:
        env = clean_env(
            WAVESPEED_API_KEY="test-key-not-secret", WAVESPEED_BASE_URL=api.base_url,
            SKYREELS_DATA_DIR=str(data), SKYREELS_POLL="0.1",
        )
        args = [sys.executable, "-m", "skyreels_demo", "film", "--image", str(photo_path), "--yes", "--json"]
        for prompt in SHOTS:
            args += ["--shot", prompt]
        maker = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # Killed once shot 2's task id is recorded (a kill while its submit is in flight
            # leaves it unconfirmed instead, and the film waits for a person).
            store = data / "runs.sqlite3"
            wait_for(lambda: store.exists() and len([r for r in open_store(data).recent() if r.task_id]) >= 2, timeout=60)
        finally:
            maker.send_signal(signal.SIGKILL)
            maker.wait(timeout=10)
        assert api.counts["submit"] == 2
        resumed = run_cli("resume", env=env, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        assert api.counts["submit"] == 3  # shot 2 finished, not sent again; shot 3 made
        listed = json.loads(run_cli("films", "--json", env=env).stdout)
    [film] = listed
    assert film["status"] == "done" and film["shots_done"] == 3 == film["shots_total"]
    assert video_facts(film["film_path"])["frames"] == 3 * FRAMES - 2


def test_the_command_line_makes_a_film_and_says_what_it_is(tmp_path, photo_path):
    with LocalBackend(timing=TaskTiming(0.1, 0.3), render=False) as api:
        env = clean_env(
            WAVESPEED_API_KEY="test-key-not-secret", WAVESPEED_BASE_URL=api.base_url,
            SKYREELS_DATA_DIR=str(tmp_path / "data"), SKYREELS_POLL="0.1",
        )
        made = run_cli("film", "--image", str(photo_path), "--shot", SHOTS[0], "--shot", SHOTS[1], "--seed", "5", "--yes", "--json", env=env)
        assert made.returncode == 0, made.stderr
        result = json.loads(made.stdout.splitlines()[-1])
        assert result["frames"] == 2 * FRAMES - 1 == video_facts(result["film_path"])["frames"]
        assert result["duration_s"] == pytest.approx(result["frames"] / SKYREELS_V1.fps)
        assert [shot["seed"] for shot in result["shots"]] == [5, 6]
        assert all(Path(shot["video_path"]).exists() and shot["task_id"] for shot in result["shots"])
        cont = run_cli("continue", result["shots"][-1]["task_id"], "--prompt", "she walks away", "--seed", "9", "--json", env=env)
        assert cont.returncode == 0, cont.stderr
        continued = json.loads(cont.stdout.splitlines()[-1])
        assert continued["continued_from"] == result["shots"][-1]["task_id"] and continued["seed"] == 9
        # Above the spending threshold, with nobody to ask, nothing is sent.
        env["SKYREELS_CONFIRM_ABOVE_USD"] = "0.1"
        before = api.counts["submit"]
        asked = run_cli("film", "--image", str(photo_path), "--shot", "one", "--shot", "two", env=env)
        assert asked.returncode == 2 and "--yes" in asked.stderr and api.counts["submit"] == before


def test_cutting_keeps_every_frame_but_the_joins(tmp_path):
    clips = []
    for n in range(2):
        path = tmp_path / f"clip{n}.mp4"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=24)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for i in range(10):
                frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (n * 100 + i * 5) % 255, np.uint8), format="rgb24")
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        clips.append(path)
    cut = cut_film(clips, tmp_path / "film.mp4", 24)
    assert cut.frames == 19 == video_facts(tmp_path / "film.mp4")["frames"]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _png(path: Path) -> Path:
    Image.new("RGB", (64, 64), (10, 20, 30)).save(path, "PNG")
    return path


# --- the page and its API ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def film_app(tmp_path_factory):
    from .conftest import LaunchedApp

    root = tmp_path_factory.mktemp("film-app")
    # The stock clip for every run (SKYREELS_PREVIEW_RENDERS=0): these tests follow shots and films
    # through the page and the API; the frames they start from are checked above, rendered.
    with LaunchedApp(root / "data", SKYREELS_PREVIEW_TIMING="0.2,0.4", SKYREELS_PREVIEW_RENDERS="0") as app:
        yield app


def test_the_api_continues_a_shot_and_makes_a_film(film_app, photo_path):
    from gradio_client import Client, handle_file

    from .conftest import ASTRONAUT

    client = Client(film_app.url, verbose=False)
    _, first, _ = client.predict("a woman smiles", handle_file(ASTRONAUT), 3, api_name="/generate")
    first_path = first["video"] if isinstance(first, dict) else first
    status, video, summary = client.predict(
        handle_file(first_path), "she turns to the window", 4, api_name="/continue_shot"
    )
    path = video["video"] if isinstance(video, dict) else video
    assert video_facts(path)["frames"] == FRAMES and "Seed 4" in summary
    film, lines = client.predict(handle_file(ASTRONAUT), "a woman smiles\nshe turns away", 8, api_name="/make_film")
    film_path = film["video"] if isinstance(film, dict) else film
    assert video_facts(film_path)["frames"] == 2 * FRAMES - 1
    assert "seed 8" in lines and "seed 9" in lines and "The film is cut" in lines


@pytest.mark.browser
def test_the_film_tab_fills_its_timeline_then_plays_the_film(film_app, browser, tmp_path):
    from playwright.sync_api import expect

    from .conftest import write_storyboard

    # Made once at a laptop's size; the same film is then looked at on a phone's screen.
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(film_app.url)
    # Each edit of the storyboard is drawn (its price, its rows, how each shot starts) by one
    # request to the app, and a film in the making sends none: no event fires another.
    asked = []
    page.on("request", lambda request: asked.append(json.loads(request.post_data or "{}").get("event_data"))
            if "/run/predict" in request.url else None)
    write_storyboard(page)
    expect(page.locator("#film-price")).to_contain_text("2 shots")
    asked.clear()
    page.get_by_label("Shot 3", exact=True).fill("she waves")
    expect(page.locator("#film-price")).to_contain_text("3 shots")
    expect(page.get_by_label("Shot 4", exact=True)).to_be_visible()
    expect(page.get_by_label("Shot 3 starts")).to_be_visible()
    assert asked.count("she waves") == 1
    page.get_by_label("Shot 3", exact=True).fill("")
    expect(page.locator("#film-price")).to_contain_text("2 shots")
    expect(page.get_by_label("Shot 4", exact=True)).to_be_hidden()
    asked.clear()
    page.get_by_role("button", name="Make the film").click()
    expect(page.locator("#film-status")).to_contain_text("Shot 1", timeout=30_000)
    expect(page.locator("#film-timeline img, #film-timeline video").first).to_be_visible(timeout=60_000)
    film = page.locator("#film-video video")
    expect(film).to_be_visible(timeout=90_000)
    expect(page.locator("#film-status")).to_contain_text("The film is cut")
    assert asked == []
    # Its length is known once the browser has read the film's metadata.
    wait_for(lambda: (page.evaluate("() => document.querySelector('#film-video video').duration") or 0) > 7.5, timeout=30)
    shots = ROOT / "tests" / "screenshots"  # git-ignored: for a person to look at
    shots.mkdir(exist_ok=True)
    for name, viewport in (("desktop", {"width": 1366, "height": 768}), ("phone", {"width": 390, "height": 844})):
        page.set_viewport_size(viewport)
        film.scroll_into_view_if_needed()
        expect(film).to_be_in_viewport()
        expect(page.locator("#film-timeline img, #film-timeline video").first).to_be_visible()
        page.screenshot(path=str(shots / f"film-{name}.png"), full_page=False)
    context.close()


@pytest.mark.browser
def test_continue_this_shot_makes_the_next_take_from_the_last_frame_in_the_page(film_app, browser):
    import re

    from playwright.sync_api import expect

    from .conftest import ASTRONAUT, browser_page, make_run_in_browser

    with browser_page(browser, film_app.url) as page:
        make_run_in_browser(page, "a woman smiles at the camera", ASTRONAUT)
        page.get_by_role("button", name="Continue this shot").click()
        box = page.locator("#prompt textarea")
        # The last frame is cut from the video and prepared on the server, through Gradio's
        # queue: seconds on a loaded machine (it passed 5 s once in three full runs).
        expect(box).to_have_attribute("placeholder", re.compile("Continuing from the last frame"), timeout=30_000)
        expect(page.get_by_text("Upload size")).to_be_visible(timeout=30_000)
        box.fill("she turns to look out of the window")
        page.get_by_role("button", name="Generate", exact=True).click()
        wait_for(
            lambda: any(r.continued_from for r in open_store(Path(film_app.data_dir)).recent() if r.status == "done"),
            timeout=60,
        )
    runs = open_store(Path(film_app.data_dir)).recent()
    continued = next(r for r in runs if r.continued_from)
    source = next(r for r in runs if r.id == continued.continued_from)
    assert source.prompt.endswith("a woman smiles at the camera")
    assert continued.prompt.endswith("she turns to look out of the window")


# --- a preview's frame starts clean: the next clip carries one label, never a second ------------


def _preview_studio(backend: LocalBackend, data_dir: Path) -> Studio:
    """No key at all: every run is the offline preview, rendered by `backend`."""
    from skyreels_demo.config import Settings

    settings = Settings(data_dir=data_dir, poll="0.1", submits_per_minute=600.0)
    return Studio(settings, SKYREELS_V1, start_preview=lambda: backend.base_url)


def _label_corner(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where the preview draws its label (bottom right), with a margin around it."""
    from skyreels_demo.local_api.render import _mark

    left, top = _mark(*size)[1]
    return left - 8, top - 8, size[0], size[1]


def _worst_block(a: Image.Image, b: Image.Image, skip: tuple[int, int, int, int] | None = None, block: int = 32) -> float:
    """The largest mean difference of any 32x32 block of two pictures (0 to 255), leaving out `skip`."""
    diff = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b.resize(a.size), dtype=np.int16)).mean(axis=2)
    if skip is not None:
        left, top, right, bottom = skip
        diff[top:bottom, left:right] = 0
    h, w = diff.shape
    return max(float(diff[y:y + block, x:x + block].mean()) for y in range(0, h, block) for x in range(0, w, block))


def _corner(picture: Image.Image) -> np.ndarray:
    return np.asarray(picture.crop(_label_corner(picture.size)), dtype=np.int16)


@pytest.mark.renders
def test_a_shot_continued_from_a_preview_starts_from_its_frame_without_the_label(tracking_backend, tmp_path, photo_path):
    from skyreels_demo.local_api.moves import camera_move
    from skyreels_demo.local_api.render import preview_frame

    studio = _preview_studio(tracking_backend, tmp_path / "data")
    try:
        first = list(studio.generate(RunRequest("a man looks up", str(photo_path), 1)))[-1].run
        # A push in: a label burned into the picture would grow and drift under the new one.
        second = list(continue_run(studio, RunRequest("he waves as the camera pushes in", None, 2), first.task_id))[-1].run
    finally:
        studio.close()
    assert first.mode == "preview" and second.continued_from == first.id and second.status == RunStatus.DONE
    labelled = frame_of(first.video_path)
    sent = uploaded_pictures(tracking_backend)[-1]
    corner = _label_corner(labelled.size)
    # The picture sent on is the last frame everywhere but the label's corner...
    assert _worst_block(labelled, sent, skip=corner) < 6
    # ...where the label is gone: the picture under it, as rendered without it.
    clean = preview_frame(Path(first.image_path).read_bytes(), SKYREELS_V1, camera_move(first.seed, first.prompt))
    assert np.abs(_corner(sent) - _corner(clean)).mean() < 4
    assert np.abs(_corner(sent) - _corner(labelled)).mean() > 12

    # So the new clip carries its own label once: each frame is the clean picture's move with one
    # label on it, where a labelled start would have put a second, growing copy under it.
    import io

    from skyreels_demo.local_api.render import _mark

    mark, mark_at = _mark(*labelled.size)

    def with_label(picture: Image.Image) -> Image.Image:
        picture = picture.copy()
        picture.paste(mark, mark_at, mark)
        return picture

    buffer = io.BytesIO()
    labelled.save(buffer, "JPEG", quality=95)
    move, made_from = camera_move(second.seed, second.prompt), Path(second.image_path).read_bytes()
    worst_seen, to_one_label, to_two_labels = 0.0, [], []
    for index in range(0, FRAMES, 8):
        seen = frame_of(second.video_path, index)
        expected = with_label(preview_frame(made_from, SKYREELS_V1, move, index))
        doubled = with_label(preview_frame(buffer.getvalue(), SKYREELS_V1, move, index))
        worst_seen = max(worst_seen, _worst_block(expected, seen, skip=_label_corner(seen.size)))
        to_one_label.append(float(np.abs(_corner(seen) - _corner(expected)).mean()))
        to_two_labels.append(float(np.abs(_corner(seen) - _corner(doubled)).mean()))
    assert worst_seen < 8
    # In the corner, the clip is the picture with one label (H.264's loss on its letters apart),
    # far from what a labelled start makes: a second, growing copy under the new one.
    assert sum(to_one_label) < 0.6 * sum(to_two_labels), (to_one_label, to_two_labels)


@pytest.mark.renders
def test_a_films_next_shot_starts_from_the_shot_before_without_its_label(tracking_backend, tmp_path, photo_path):
    studio = _preview_studio(tracking_backend, tmp_path / "data")
    try:
        film = list(make_film(studio, RunRequest("", str(photo_path)), [("a woman turns", 5), ("she smiles", 6)]))[-1].film
        shots = studio.store.shots_of(film.id)
    finally:
        studio.close()
    assert film.status == FilmStatus.DONE and [run.mode for run in shots] == ["preview", "preview"]
    labelled = frame_of(shots[0].video_path)
    second_start = Image.open(shots[1].image_path).convert("RGB")
    assert _worst_block(labelled, second_start, skip=_label_corner(labelled.size)) < 6
    assert np.abs(_corner(second_start) - _corner(labelled)).mean() > 12  # no label in the shot's picture


def test_with_the_previews_renders_off_every_run_is_one_stock_clip_a_shot_still_continues_from(tmp_path, photo_path):
    """SKYREELS_PREVIEW_RENDERS=0 (for tests that never look inside a video): each run with no
    key gets the same small clip, rendered once, and its last frame starts the next shot."""
    from skyreels_demo.config import Settings
    from skyreels_demo.studio.preview import OfflinePreview

    settings = Settings.from_env({
        "SKYREELS_PREVIEW_RENDERS": "0", "SKYREELS_DATA_DIR": str(tmp_path / "data"), "SKYREELS_PREVIEW_TIMING": "0.1,0.3",
        "SKYREELS_POLL": "0.1", "SKYREELS_CHECK_SCALE": "0.1", "SKYREELS_SUBMITS_PER_MINUTE": "600",
    })
    preview = OfflinePreview(settings, SKYREELS_V1)
    studio = Studio(settings, SKYREELS_V1, start_preview=preview)
    try:
        first = list(studio.generate(RunRequest("a woman smiles", str(photo_path), 1)))[-1].run
        second = list(continue_run(studio, RunRequest("she waves", None, 2), first.task_id))[-1].run
    finally:
        studio.close()
        preview.stop()
    assert first.status == second.status == RunStatus.DONE and second.continued_from == first.id
    assert Path(first.video_path).read_bytes() == Path(second.video_path).read_bytes()
    assert video_facts(first.video_path)["frames"] == FRAMES
    assert [path.name for path in (settings.preview_dir / "renders").iterdir()] == ["placeholder.mp4"]
