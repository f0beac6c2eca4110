"""A film into an editor: one zip with the cut, each picked take, and its timeline three ways.

The zip holds, side by side (no folder, so every relative path in it resolves):

- `film.mp4`: the cut of exactly these takes: the film's own cut when it is newer than every
  take and has the frames the timeline says, else cut again from them (films.cut_film);
- `shot-1.mp4`, `shot-2.mp4`, ...: each picked take as it was saved;
- `film.otio`: an OpenTimelineIO timeline, the shots as clips on one video track, each clip's
  media an ExternalReference to its `shot-N.mp4` beside it, ranges in frames at the model's rate;
- `film.edl` (CMX 3600) and `film.xml` (Final Cut Pro 7 / Premiere XML): the same timeline
  through OpenTimelineIO's adapters;
- `film.json`: each shot's prompt, seed, take number, task id and frames in the cut.

The trim is the cut's: every shot after the first starts on the previous shot's last frame, so
its clip starts one frame in (source frame 1) and the timeline's length is the cut's frame count.

`export_film` takes plain values (`FilmForEditor` of `ShotForEditor`), not store records, and
reads only the videos it is given, each inside the directory it is told (the data directory).
`film_for_editor` builds those values from a film's record as the store keeps it today.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import av

from skyreels_demo.errors import BadInput, StudioError
from skyreels_demo.models import ModelSpec
from skyreels_demo.status import FilmStatus
from skyreels_demo.store.records import Film
from skyreels_demo.store.runs import RunStore
from skyreels_demo.studio.cut import cut_film
from skyreels_demo.studio.film_takes import film_state
from skyreels_demo.studio.films import MAX_SHOTS, MIN_SHOTS, plans_of
from skyreels_demo.studio.frames import MAX_CLIP_BYTES, frames_in

log = logging.getLogger(__name__)

FILM_FORMAT = "skyreels-studio-film"
FILM_VERSION = 1
CUT, TIMELINE, EDL, XML, RECORD = "film.mp4", "film.otio", "film.edl", "film.xml", "film.json"
# CMX 3600 reel names are at most 8 characters: "SHOT1" to "SHOT6" fit, and say what they are.
REEL = "SHOT{number}"


def take_file(number: int) -> str:
    """The zip member of shot `number` (from 1)."""
    return f"shot-{number}.mp4"


@dataclass(frozen=True)
class ShotForEditor:
    """One shot of a film as an editor gets it: its picked take and what made it."""

    prompt: str  # as the person wrote it
    seed: int
    take: int  # which take of this shot, from 1
    task_id: str | None
    video: Path  # the take's saved MP4
    continues: bool = True  # starts from the previous shot's last frame (False: a cut); ignored for the first


@dataclass(frozen=True)
class FilmForEditor:
    """A film's shots in order, at the model's frame rate."""

    shots: tuple[ShotForEditor, ...]
    fps: int
    title: str = "SkyReels film"
    model: str = ""
    film_id: str | None = None
    # The film as already cut from these takes, if it was: used when it is still their cut, so an
    # export costs no second encode.
    cut: Path | None = None


@dataclass(frozen=True)
class ClipRange:
    """Where a shot's take sits: the frames used from it, and where they fall in the cut."""

    source_start: int  # first frame used from the take (1 after a join: the repeated frame is dropped)
    frames: int  # frames used from the take
    cut_start: int  # first frame in the cut, from 0
    take_frames: int  # frames the take has

    @property
    def cut_end(self) -> int:
        """One past the last frame in the cut."""
        return self.cut_start + self.frames


def cut_ranges(frame_counts: Sequence[int], continues: Sequence[bool] | None = None) -> list[ClipRange]:
    """Each take's range in the cut, as cut.cut_film trims: a take that continues the one before
    loses its first frame (the previous take's last frame, which it was made from); a take after
    a cut keeps it."""
    continues = list(continues) if continues is not None else [n > 0 for n in range(len(frame_counts))]
    ranges, at = [], 0
    for number, count in enumerate(frame_counts):
        start = 1 if number > 0 and continues[number] else 0
        used = max(count - start, 0)
        ranges.append(ClipRange(start, used, at, count))
        at += used
    return ranges


@dataclass(frozen=True)
class _Take:
    shot: ShotForEditor
    path: Path  # resolved, inside the allowed directory
    frames: int
    size: tuple[int, int]


def export_film(film: FilmForEditor, out: Path | str, *, within: Path | str) -> Path:
    """Write `film` as one zip at `out` for an editor (atomically: a temp file, then a rename).

    Reads only the shots' videos, each of which must lie inside `within` (the app's data
    directory); refused with one sentence (`BadInput`) when a video is missing, outside it, or
    not a video. Returns `out`.
    """
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise BadInput(f"Name the film's export file with .zip at the end, not {out.name}.")
    if not MIN_SHOTS <= len(film.shots) <= MAX_SHOTS:
        raise BadInput(f"A film has {MIN_SHOTS} to {MAX_SHOTS} shots to export; this one has {len(film.shots)}.")
    if film.fps <= 0:
        raise BadInput("The film's frame rate is unknown, so its timeline cannot be written.")
    try:
        root = Path(within).resolve(strict=True)
    except (OSError, RuntimeError):
        raise BadInput("The app's data directory is missing, so there are no videos to export.") from None
    takes = [_checked_take(number, shot, root) for number, shot in enumerate(film.shots, start=1)]
    continues = [take.shot.continues for take in takes]
    ranges = cut_ranges([take.frames for take in takes], continues)
    total = sum(r.frames for r in ranges)
    timeline = _timeline(film, takes, ranges)

    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}.") as work:
        folder = Path(work)
        cut_path = _ready_cut(film.cut, takes, total, root)
        recut = cut_path is None
        if cut_path is None:
            cut_path = folder / CUT
            cut = cut_film([take.path for take in takes], cut_path, film.fps, continues)
            if cut.frames != total:  # the timeline and the cut disagree: nothing half-true is written
                raise StudioError(f"The cut has {cut.frames} frames but its timeline {total}: export the film again.")
        _write_timeline(timeline, folder)
        record = json.dumps(_record(film, takes, ranges), indent=2, ensure_ascii=False)
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".part")
        os.close(fd)
        partial = Path(name)
        try:
            with zipfile.ZipFile(partial, "w") as zf:
                # The MP4s are compressed already, so stored as they are; the text is deflated.
                zf.write(cut_path, CUT, zipfile.ZIP_STORED)
                for number, take in enumerate(takes, start=1):
                    zf.write(take.path, take_file(number), zipfile.ZIP_STORED)
                for member in (TIMELINE, EDL, XML):
                    zf.write(folder / member, member, zipfile.ZIP_DEFLATED)
                zf.writestr(RECORD, record, zipfile.ZIP_DEFLATED)
            partial.chmod(0o644)  # served like the videos
            partial.replace(out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    log.info("film %s exported: %d shots, %d frames (%s), in %.2f s", film.film_id or film.title, len(takes), total,
             "cut again" if recut else "its own cut", time.perf_counter() - started)
    return out


def _checked_take(number: int, shot: ShotForEditor, root: Path) -> _Take:
    """Shot `number`'s video, checked: a file inside `root` (resolved), of bounded size, with frames."""
    try:
        path = Path(shot.video).resolve(strict=True)  # a link is followed to where it really points
    except (OSError, RuntimeError):
        raise BadInput(f"Shot {number}'s video is missing, so the film cannot be exported: make that shot again.") from None
    if not path.is_relative_to(root):
        raise BadInput(f"Shot {number}'s video is not one this app saved, so it is not exported.")
    if not path.is_file():
        raise BadInput(f"Shot {number}'s video is missing, so the film cannot be exported: make that shot again.")
    if path.stat().st_size > MAX_CLIP_BYTES:
        raise BadInput(f"Shot {number}'s video is larger than {MAX_CLIP_BYTES // 2**20} MB, so it is not one of this app's clips.")
    try:
        frames = frames_in(path)
        with av.open(str(path)) as container:
            context = container.streams.video[0].codec_context
            size = (context.width, context.height)
    except (av.error.FFmpegError, IndexError, ValueError, OSError) as exc:
        log.info("shot %d's video %s cannot be read: %s", number, path.name, exc)
        raise BadInput(f"Shot {number}'s video cannot be read as an MP4: make that shot again.") from None
    if frames < 2:  # a take after a join loses its first frame; one with nothing left is not a shot
        raise BadInput(f"Shot {number}'s video has {frames} frames, too few to cut: make that shot again.")
    return _Take(shot, path, frames, size)


def _ready_cut(cut: Path | None, takes: Sequence[_Take], total: int, root: Path) -> Path | None:
    """The film's own cut when it is still the cut of these takes (inside `root`, made after
    every one of them, with the timeline's frames); None when it must be cut again."""
    if cut is None:
        return None
    try:
        path = Path(cut).resolve(strict=True)
        if not path.is_relative_to(root) or not path.is_file():
            return None
        if path.stat().st_size > MAX_SHOTS * MAX_CLIP_BYTES:
            return None
        if path.stat().st_mtime_ns < max(take.path.stat().st_mtime_ns for take in takes):
            return None  # a take was made after the cut
        frames = frames_in(path)
    except (av.error.FFmpegError, IndexError, ValueError, OSError, RuntimeError) as exc:
        log.info("the film's cut %s cannot be reused: %s", cut, exc)
        return None
    return path if frames == total else None


def _timeline(film: FilmForEditor, takes: Sequence[_Take], ranges: Sequence[ClipRange]) -> Any:
    """The film as an OpenTimelineIO timeline: one video track, a clip per shot."""
    import opentimelineio as otio  # only an export needs it

    def frames(count: int) -> Any:
        return otio.opentime.RationalTime(count, film.fps)

    timeline = otio.schema.Timeline(name=film.title, global_start_time=frames(0))
    width, height = takes[0].size
    # What Premiere and Final Cut read as the sequence's frame size and rate.
    timeline.metadata["fcp_xml"] = {"media": {"video": {"format": {"samplecharacteristics": {
        "width": str(width), "height": str(height), "pixelaspectratio": "square",
        "rate": {"timebase": str(film.fps), "ntsc": "FALSE"},
    }}}}}
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for number, (take, where) in enumerate(zip(takes, ranges), start=1):
        media = otio.schema.ExternalReference(
            target_url=take_file(number),  # relative: the MP4 beside the timeline in the zip
            available_range=otio.opentime.TimeRange(frames(0), frames(take.frames)),
        )
        clip = otio.schema.Clip(
            name=f"Shot {number}",
            media_reference=media,
            source_range=otio.opentime.TimeRange(frames(where.source_start), frames(where.frames)),
        )
        clip.metadata["cmx_3600"] = {"reel": REEL.format(number=number)}
        clip.metadata["skyreels"] = _shot_facts(take.shot)
        track.append(clip)
    timeline.tracks.append(track)
    return timeline


def _write_timeline(timeline: Any, folder: Path) -> None:
    import opentimelineio as otio

    otio.adapters.write_to_file(timeline, str(folder / TIMELINE))
    otio.adapters.write_to_file(timeline, str(folder / EDL), adapter_name="cmx_3600")
    otio.adapters.write_to_file(timeline, str(folder / XML), adapter_name="fcp_xml")


def _shot_facts(shot: ShotForEditor) -> dict[str, Any]:
    return {"prompt": shot.prompt, "seed": shot.seed, "take": shot.take, "task_id": shot.task_id,
            "starts": "continuous" if shot.continues else "cut"}


def _record(film: FilmForEditor, takes: Sequence[_Take], ranges: Sequence[ClipRange]) -> dict[str, Any]:
    """What `film.json` says: the film, then each shot and where its frames fall in the cut."""
    return {
        "format": FILM_FORMAT,
        "version": FILM_VERSION,
        "title": film.title,
        "film_id": film.film_id,
        "model": film.model,
        "fps": film.fps,
        "frames": sum(r.frames for r in ranges),
        "video": CUT,
        "timelines": {"otio": TIMELINE, "cmx_3600": EDL, "fcp_xml": XML},
        "shots": [
            {
                "shot": number,
                **_shot_facts(take.shot),
                "video": take_file(number),
                "take_frames": take.frames,
                # Frames from 0; `end` is one past the last. The take's frames used start at
                # `source_start` (1 after a join: its first frame is the shot before's last).
                "source_start": where.source_start,
                "cut": {"start": where.cut_start, "end": where.cut_end, "frames": where.frames},
            }
            for number, (take, where) in enumerate(zip(takes, ranges), start=1)
        ],
    }


# --- from the store, as films are kept today -------------------------------------------------


def film_for_editor(store: RunStore, film: Film, model: ModelSpec) -> FilmForEditor:
    """A film's record as plain values: for each shot its picked take, numbered among its takes.

    Refused with a sentence when a shot has no finished take yet, or follows an old frame.
    """
    plans = plans_of(film)
    states = film_state(plans, store.shots_of(film.id), model)
    shots = []
    for state in states:
        picked = state.picked
        if picked is None or not picked.video_path:
            raise BadInput(f"Shot {state.index + 1} has no finished take yet: finish the film, then export it.")
        if state.stale:
            raise BadInput(
                f"Shot {state.index + 1} follows an old frame: re-make the film from there, or pick back "
                "the take it followed, then export it."
            )
        shots.append(ShotForEditor(
            prompt=state.plan.prompt,  # as typed (the run keeps it as sent, prefix and all)
            seed=picked.seed,
            take=state.take_number or 1,
            task_id=picked.task_id,
            video=Path(picked.video_path),
            continues=not state.plan.is_cut,
        ))
    return FilmForEditor(
        shots=tuple(shots),
        fps=model.fps,
        title=f"SkyReels {film.id}",  # "SkyReels film-…": the id names it in the app too
        model=film.model or model.name,
        film_id=film.id,
        cut=Path(film.film_path) if film.status == FilmStatus.DONE and film.film_path else None,
    )
