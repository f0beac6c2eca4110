"""A film into an editor: a real three-shot film made against the built-in backend, exported as
one zip, and every file in it read back the way an editor's tools would read it."""

from __future__ import annotations

import dataclasses
import json
import shutil
import zipfile
from pathlib import Path

import opentimelineio as otio
import pytest

from skyreels_demo.errors import BadInput
from skyreels_demo.local_api import LocalBackend, TaskTiming
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.status import FilmStatus
from skyreels_demo.store.records import KeySource
from skyreels_demo.studio.film_export import cut_ranges, export_film, film_for_editor
from skyreels_demo.studio.films import make_film
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.studio.studio import Studio

from .conftest import jpeg_bytes, photo, settings_for, video_facts

FPS, FRAMES = SKYREELS_V1.fps, SKYREELS_V1.frame_count
SHOTS = [("a woman turns to the window", 10), ("she smiles at the light", 11), ("the camera drifts to the sky", 12)]
CUT_FRAMES = 3 * FRAMES - 2  # each join's repeated frame dropped: 289
MEMBERS = {"film.mp4", "shot-1.mp4", "shot-2.mp4", "shot-3.mp4", "film.otio", "film.edl", "film.xml", "film.json"}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A three-shot film, made once for the module: (studio, film)."""
    root = tmp_path_factory.mktemp("film-export")
    picture = root / "photo.jpg"
    picture.write_bytes(jpeg_bytes(photo()))
    with LocalBackend(timing=TaskTiming(0.1, 0.3)) as backend:
        studio = Studio(settings_for(backend, root / "data"), SKYREELS_V1)
        try:
            updates = list(make_film(studio, RunRequest("", str(picture)), SHOTS))
            film = updates[-1].film
            assert film.status == FilmStatus.DONE
            yield studio, film
        finally:
            studio.close()


@pytest.fixture(scope="module")
def exported(made, tmp_path_factory):
    """The film's export zip, written once for the module, and its members unpacked beside it."""
    studio, film = made
    out = tmp_path_factory.mktemp("export") / "film.zip"
    assert export_film(film_for_editor(studio.store, film, studio.model), out, within=studio.settings.data_dir) == out
    unpacked = out.parent / "unpacked"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(unpacked)
    return out, unpacked


def test_the_export_is_one_zip_of_the_cut_the_takes_and_the_timelines(exported):
    out, _ = exported
    with zipfile.ZipFile(out) as zf:
        assert set(zf.namelist()) == MEMBERS
        assert zf.testzip() is None
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_the_cut_in_the_zip_is_the_film_s_own_cut_with_every_frame_but_the_joins(made, exported):
    _, film = made
    _, unpacked = exported
    facts = video_facts(unpacked / "film.mp4")
    assert facts["frames"] == CUT_FRAMES and facts["fps"] == FPS and facts["codec"] == "h264"
    assert (unpacked / "film.mp4").read_bytes() == Path(film.film_path).read_bytes()  # not encoded twice


def test_a_cut_that_is_not_these_takes_cut_is_cut_again(made, tmp_path):
    studio, film = made
    values = film_for_editor(studio.store, film, studio.model)
    stale = dataclasses.replace(values, cut=values.shots[0].video)  # a video, but not the film's cut
    out = export_film(stale, tmp_path / "film.zip", within=studio.settings.data_dir)
    with zipfile.ZipFile(out) as zf:
        zf.extract("film.mp4", tmp_path)
    assert video_facts(tmp_path / "film.mp4")["frames"] == CUT_FRAMES


def test_each_take_in_the_zip_is_the_saved_video_byte_for_byte(made, exported):
    studio, film = made
    _, unpacked = exported
    takes = studio.store.shots_of(film.id)
    assert [run.shot for run in takes] == [0, 1, 2]
    for number, run in enumerate(takes, start=1):
        assert (unpacked / f"shot-{number}.mp4").read_bytes() == Path(run.video_path).read_bytes()
        assert video_facts(unpacked / f"shot-{number}.mp4")["frames"] == FRAMES


def test_the_otio_timeline_has_the_three_shots_and_lasts_as_long_as_the_cut(exported):
    out, unpacked = exported
    timeline = otio.adapters.read_from_file(str(unpacked / "film.otio"))
    clips = list(timeline.find_clips())
    assert len(timeline.video_tracks()) == 1 and len(clips) == 3
    assert timeline.duration() == otio.opentime.RationalTime(CUT_FRAMES, FPS)
    assert timeline.duration().to_frames() == video_facts(unpacked / "film.mp4")["frames"]
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
    for number, clip in enumerate(clips, start=1):
        media = clip.media_reference
        assert isinstance(media, otio.schema.ExternalReference)
        assert media.target_url == f"shot-{number}.mp4" and media.target_url in names  # relative, beside it
        assert media.available_range.duration.to_frames() == FRAMES
        # The cut's trim: the first shot whole, each later one from its second frame.
        start = 0 if number == 1 else 1
        assert clip.source_range == otio.opentime.TimeRange(
            otio.opentime.RationalTime(start, FPS), otio.opentime.RationalTime(FRAMES - start, FPS)
        )
        assert clip.metadata["skyreels"]["seed"] == SHOTS[number - 1][1]


def test_the_edl_lists_the_same_three_events(exported):
    _, unpacked = exported
    text = (unpacked / "film.edl").read_text()
    events = [line.split() for line in text.splitlines() if line[:3].isdigit()]
    assert [e[0] for e in events] == ["001", "002", "003"]
    assert [e[1] for e in events] == ["SHOT1", "SHOT2", "SHOT3"]
    assert events[-1][-1] == "00:00:12:01"  # record out: 289 frames at 24 fps
    timeline = otio.adapters.read_from_string(text, "cmx_3600", rate=FPS)
    clips = list(timeline.find_clips())
    assert len(clips) == 3 and timeline.duration().to_frames() == CUT_FRAMES
    assert [clip.media_reference.target_url for clip in clips] == ["shot-1.mp4", "shot-2.mp4", "shot-3.mp4"]


def test_the_final_cut_xml_reads_back_with_the_three_shots(exported):
    _, unpacked = exported
    timeline = otio.adapters.read_from_file(str(unpacked / "film.xml"), adapter_name="fcp_xml")
    clips = list(timeline.find_clips())
    assert len(clips) == 3 and timeline.duration().to_frames() == CUT_FRAMES
    assert [Path(clip.media_reference.target_url).name for clip in clips] == ["shot-1.mp4", "shot-2.mp4", "shot-3.mp4"]
    assert "<width>960</width>" in (unpacked / "film.xml").read_text()  # the sequence's frame size


def test_film_json_says_what_made_each_shot_and_where_it_falls_in_the_cut(made, exported):
    studio, film = made
    _, unpacked = exported
    record = json.loads((unpacked / "film.json").read_text())
    assert record["frames"] == CUT_FRAMES and record["fps"] == FPS and record["film_id"] == film.id
    runs = studio.store.shots_of(film.id)
    assert len(record["shots"]) == 3
    at = 0
    for shot, run, (prompt, seed) in zip(record["shots"], runs, SHOTS):
        assert (shot["prompt"], shot["seed"], shot["take"], shot["task_id"]) == (prompt, seed, 1, run.task_id)
        assert shot["cut"]["start"] == at and shot["cut"]["end"] - shot["cut"]["start"] == shot["cut"]["frames"]
        at = shot["cut"]["end"]
    assert at == CUT_FRAMES


def test_cut_ranges_trim_as_the_cut_does():
    ranges = cut_ranges([FRAMES] * 6)
    assert [r.source_start for r in ranges] == [0, 1, 1, 1, 1, 1]
    assert ranges[-1].cut_end == 6 * FRAMES - 5
    assert [r.cut_start for r in ranges[1:]] == [r.cut_end for r in ranges[:-1]]


def test_a_missing_shot_video_is_refused_with_a_sentence_and_nothing_is_written(made, tmp_path):
    studio, film = made
    values = film_for_editor(studio.store, film, studio.model)
    gone = studio.settings.data_dir / "runs" / "gone.mp4"
    shots = list(values.shots)
    shots[1] = dataclasses.replace(shots[1], video=gone)
    out = tmp_path / "out" / "film.zip"
    with pytest.raises(BadInput, match=r"^Shot 2's video is missing, so the film cannot be exported"):
        export_film(dataclasses.replace(values, shots=tuple(shots)), out, within=studio.settings.data_dir)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []  # no zip, no temp file


@pytest.mark.parametrize("how", ["a-copy-outside", "a-link-inside-to-outside"])
def test_a_video_outside_the_data_dir_is_not_read(made, tmp_path, how):
    studio, film = made
    values = film_for_editor(studio.store, film, studio.model)
    outside = tmp_path / "elsewhere.mp4"
    shutil.copyfile(values.shots[0].video, outside)
    video = outside
    if how == "a-link-inside-to-outside":
        video = studio.settings.data_dir / "runs" / "link.mp4"
        video.symlink_to(outside)
    shots = (dataclasses.replace(values.shots[0], video=video), *values.shots[1:])
    out = tmp_path / "film.zip"
    try:
        with pytest.raises(BadInput, match=r"^Shot 1's video is not one this app saved"):
            export_film(dataclasses.replace(values, shots=shots), out, within=studio.settings.data_dir)
    finally:
        if how == "a-link-inside-to-outside":
            video.unlink()
    assert not out.exists()


def test_a_name_without_zip_is_refused(made, tmp_path):
    studio, film = made
    with pytest.raises(BadInput, match="with .zip at the end"):
        export_film(film_for_editor(studio.store, film, studio.model), tmp_path / "film.mp4", within=studio.settings.data_dir)


def test_a_film_whose_shots_are_not_all_made_is_refused_before_any_video_is_read(made):
    studio, _ = made
    unmade = studio.store.create_film(
        model=studio.model.name, shots=[{"prompt": p, "seed": s} for p, s in SHOTS], key_source=KeySource.PREVIEW, image_path=None
    )
    with pytest.raises(BadInput, match=r"^Shot 1 has no finished take yet: finish the film, then export it\.$"):
        film_for_editor(studio.store, unmade, studio.model)
