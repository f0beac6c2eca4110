"""Longer than one take: a shot continued from a video's frame, and films of shots cut into one.

A continued shot is an ordinary run whose image is a frame (by default the last) of an earlier
video, decoded with PyAV and prepared like any picture, under the same caps and price. A film
is a record of its own (store/films.py) naming 2 to 6 shots in order; each shot is an ordinary run
(`Studio.generate`) whose image is the previous shot's last frame, recorded with the film's id
and its place. When every shot is done the film is cut: one H.264 MP4 at the model's frame rate,
each join's repeated frame dropped (n shots of 97 frames make 97n - (n - 1)).

`carry_on` is the one path a film takes, first time or not: it skips the shots already made,
finishes a shot whose task was submitted before (never submitting it twice), makes the rest,
and cuts. So `resume` after a crash, and "make this shot again" after a failure, are both
`carry_on`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import av
from PIL import Image

from skyreels_demo import images
from skyreels_demo.studio.caps import limits_for, room_left
from skyreels_demo.errors import BadInput, QuotaExceeded, Stopped, StudioError
from skyreels_demo.studio.events import Done, Event
from skyreels_demo.studio.run_request import RunRequest, check_prompt, choose_seed, image_source
from skyreels_demo.store.records import Film, Mode, Run
from skyreels_demo.status import FilmStatus, RunStatus
from skyreels_demo.studio.studio import Studio
from skyreels_demo.studio.visitors import LOCAL, Requester

log = logging.getLogger(__name__)

MIN_SHOTS, MAX_SHOTS = 2, 6
# A film's clips are the app's own MP4s; anything much larger is not one.
MAX_CLIP_BYTES = 200 * 1024 * 1024


# --- a frame of a video ----------------------------------------------------------------------


def frame_of(video: str | os.PathLike, index: int | None = None) -> Image.Image:
    """Frame `index` (from 0; None: the last) of an MP4, as a picture; `BadInput` if there is none."""
    path = Path(video)
    if not path.is_file():
        raise BadInput("There is no video at that path: choose a clip this app made, or any MP4.")
    if path.stat().st_size > MAX_CLIP_BYTES:
        raise BadInput(f"That video is larger than {MAX_CLIP_BYTES // 2**20} MB: choose a short clip.")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
        raise BadInput(f"The frame must be a whole number from 0, not {index!r}.")
    wanted, count = None, 0
    try:
        with av.open(str(path)) as container:
            if container.format.name.split(",")[0] not in ("mov", "mp4", "m4a", "3gp", "3g2", "mj2"):
                raise BadInput("That file is not an MP4 video: choose a clip this app made, or any MP4.")
            if not container.streams.video:
                raise BadInput("That MP4 has no video in it: choose a clip this app made.")
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                if index is None or count == index:
                    wanted = frame.to_image()
                count += 1
                if index is not None and count > index:
                    break
    except BadInput:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        log.info("could not decode %s: %s", path.name, exc)
        raise BadInput("That file is not an MP4 video that can be read: choose a clip this app made, or any MP4.") from None
    if wanted is None:
        if count == 0:
            raise BadInput("That video has no frames to continue from: choose another clip.")
        raise BadInput(f"That video has {count} frames (0 to {count - 1}): pick a frame from 0 to {count - 1}.")
    return wanted.convert("RGB")


def starting_frame(studio: Studio, run: Run | None, video: str | os.PathLike, index: int | None = None) -> Image.Image:
    """Frame `index` (None: the last) of `video`, the picture a shot continued from it starts on.

    When the video is the offline preview of `run`'s picture, the frame comes without the
    preview's corner label (rendered again from the kept picture, the run's seed and prompt),
    so the next clip carries its own label once, not a second, moving copy of the first.
    """
    seen = frame_of(video, index)
    if run is None or not run.image_path:
        return seen
    try:
        picture = Path(run.image_path).read_bytes()
    except OSError:
        return seen  # pruned: the frame as it is
    # The backend's own drawing (imported here: a run on a key never needs it).
    from skyreels_demo.local_api.render import camera_move, clean_frame

    clean = clean_frame(picture, studio.model, camera_move(run.seed, run.prompt), seen, index)
    return seen if clean is None else clean


def run_of_video(studio: Studio, video: str | os.PathLike) -> Run | None:
    """The recorded run whose saved video this is, if it is one of this app's."""
    path = Path(video)
    try:
        if path.resolve().parent != studio.settings.videos_dir.resolve():
            return None
    except OSError:
        return None
    task_id = path.stem
    return studio.store.by_task(task_id) if re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", task_id) else None


def continue_shot(
    studio: Studio, request: RunRequest, video: str | os.PathLike, *, frame: int | None = None
) -> Iterator[Event]:
    """A new run from a frame (the last by default) of `video`, with `request`'s prompt and seed.

    `request.image` is ignored: the frame is the image. The run records which run it continued
    when the video is one this app made.
    """
    source = run_of_video(studio, video)
    if source is not None and not source.has_video:
        raise BadInput("That take has no saved video to continue from: finish it first, or choose another.")
    picture = starting_frame(studio, source, video, frame)
    continued = request.but(image=picture, continued_from=source.id if source else None)
    yield from studio.generate(continued)


def continue_run(studio: Studio, request: RunRequest, run_or_task: str, *, frame: int | None = None) -> Iterator[Event]:
    """`continue_shot` from a recorded run, named by its run id or task id."""
    run = studio.store.by_task(run_or_task)
    if run is None:
        try:
            run = studio.store.get(run_or_task)
        except KeyError:
            raise BadInput(f"No recorded run has the id {run_or_task}: list them with `runs`.") from None
    if run.status == RunStatus.FAILED:
        raise BadInput("That run failed, so there is no video to continue from: make it again first.")
    if not run.has_video:
        raise BadInput("That run has no saved video yet: `resume` it first, then continue it.")
    yield from continue_shot(studio, request, run.video_path, frame=frame)


# --- films -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilmUpdate:
    """What a film is doing now: a shot's latest event, a shot's end, or the film's end."""

    film: Film
    shot: int | None = None  # from 0; None for the film as a whole
    event: Event | None = None
    video_path: Path | None = None  # a shot's saved video, or the cut film
    error: StudioError | None = None

    @property
    def message(self) -> str:
        where = f"Shot {self.shot + 1} of {len(self.film.shots)}: " if self.shot is not None else ""
        if self.error is not None:
            return where + self.error.sentence
        if self.event is not None:
            return where + self.event.message
        if self.shot is None and self.video_path is not None:
            return f"The film is cut: {len(self.film.shots)} shots in one video."
        if self.video_path is not None:
            return where + f"saved ({self.video_path})"
        return where + "waiting to start…"


def check_shots(shots: Sequence[Any], studio: Studio) -> list[dict]:
    """The shots as they will be made: prompts checked, seeds made concrete (so a resumed film
    makes the same shots). `shots` are (prompt, seed) pairs or prompts."""
    pairs = [tuple(shot) if isinstance(shot, (tuple, list)) and len(shot) == 2 else (shot, -1) for shot in shots]
    if not MIN_SHOTS <= len(pairs) <= MAX_SHOTS:
        raise BadInput(f"A film has {MIN_SHOTS} to {MAX_SHOTS} shots; this one has {len(pairs)}.")
    checked = []
    for number, (prompt, seed) in enumerate(pairs, start=1):
        if not isinstance(prompt, str) or not prompt.strip():
            raise BadInput(f"Shot {number} has no prompt: describe what happens in it, or remove it.")
        try:
            text = check_prompt(prompt, studio.model)
        except BadInput as exc:
            raise BadInput(f"Shot {number}: {exc.sentence}") from None
        checked.append({"prompt": text, "seed": choose_seed(seed, studio.model)})
    return checked


def film_price(studio: Studio, shots: int) -> str:
    """What a film costs before anything is spent, in words."""
    if studio.access.default_mode == Mode.PREVIEW:
        return f"{shots} shots · offline preview: free, made on this machine."
    price = studio.prices.owner(studio.model)  # WaveSpeed's, for the owner's key (pricing.py)
    return f"{shots} shots · about ${shots * price:.2f} ({shots} videos at ${price:.2f})."


def make_film(studio: Studio, request: RunRequest, shots: Sequence[Any]) -> Iterator[FilmUpdate]:
    """A new film from `request.image` and 2 to 6 shots, made in turn and cut into one video.

    Everything is checked (the image, every prompt, the caps for every shot) before the first
    shot is sent. Then as `carry_on`.
    """
    planned = check_shots(shots, studio)
    start = image_source(request.image, request.fit, studio.model, allow_loopback=studio.settings.allow_loopback_images)
    if not isinstance(start, images.PreparedImage):
        raise BadInput("A film starts from a picture file: upload it rather than giving its address.")
    backend = studio.access.backend_for(request.api_key)
    try:
        room = room_left(studio.store, limits_for(studio.settings, backend, request.requester))
    finally:
        if backend.is_visitors:
            backend.client.close()
    if room is not None and room < len(planned):
        raise QuotaExceeded(
            f"This film needs {len(planned)} videos, but only {room} more fit in your allowance right "
            f"now: make a film of {room} shot{'s' if room != 1 else ''}, paste your own WaveSpeed key, or wait a while."
            if room >= MIN_SHOTS
            else f"This film needs {len(planned)} videos, but only {room} more fit in your allowance right now: "
            "paste your own WaveSpeed key, or wait a while."
        )
    # The starting picture is kept by its first shot, once uploaded: a film refused at that
    # upload (a made-up key, say) keeps nothing on disk.
    film = studio.store.create_film(
        model=studio.model.name,
        shots=planned,
        key_source=backend.key_source,
        image_path=None,
        fit=request.fit,
        fps_prefix=request.fps_prefix,
        visitor=request.visitor,
        requester=request.requester.key,
    )
    log.info("film %s: %d shots", film.id, len(planned))
    yield from carry_on(studio, film, request, start=start)


def carry_on(
    studio: Studio,
    film: Film,
    request: RunRequest | None = None,
    *,
    again: int | None = None,
    seed: int | float | str | None = None,
    start: images.PreparedImage | None = None,
) -> Iterator[FilmUpdate]:
    """Take a film to its cut: skip the shots already made, finish one whose task was submitted
    before (never sending it twice), make the rest in turn, then cut.

    `request` carries who asks, their key and the stop switch (by default: the owner's key or
    the preview, as `resume` runs). `again`: a shot to make again (a failed one, or one whose
    take was not liked), with `seed` (None: the same seed); the shots after it follow from it.
    `start`: a new film's starting picture, not kept yet (its first shot keeps it).
    """
    request = request or RunRequest("", None, requester=_requester_of(film))
    planned = film.shots
    if again is not None:
        if not 0 <= again < len(planned):
            raise BadInput(f"This film has shots 1 to {len(planned)}: there is no shot {again + 1}.")
        if seed is not None:
            planned[again]["seed"] = choose_seed(seed, studio.model)
        film = studio.store.update_film(film.id, shots_json=_dumps(planned))
    film = studio.store.update_film(film.id, status=FilmStatus.MAKING, error_message=None)
    made: list[Run] = []
    for index, shot in enumerate(planned):
        latest = _latest_try(studio, film.id, index)
        redo = again is not None and index >= again
        if latest is not None and not redo and latest.status == RunStatus.DONE and latest.has_video:
            made.append(latest)
            yield FilmUpdate(film, index, video_path=Path(latest.video_path))
            continue
        try:
            if latest is not None and not redo and latest.is_unfinished_task:
                # Submitted before (a crash, a closed tab): finish it, never submit it again.
                with studio.watching(latest.id):
                    run = studio.finisher.finish(latest, stop=request.stop)
                if run.status != RunStatus.DONE:
                    raise StudioError(run.error_message or "This shot did not make a video: make it again.")
            elif latest is not None and not redo and latest.status == RunStatus.UNCONFIRMED:
                raise StudioError(
                    "WaveSpeed may have made this shot; it is not known: check your WaveSpeed history, "
                    "then make the shot again if it is not there."
                )
            else:
                try:
                    run = yield from _make_shot(studio, film, index, shot, request, made[-1] if made else None, start)
                finally:
                    if index == 0:
                        film = _starting_picture_kept(studio, film)
        except StudioError as exc:
            status = FilmStatus.STOPPED if isinstance(exc, Stopped) else FilmStatus.FAILED
            film = studio.store.update_film(film.id, status=status, error_message=exc.sentence)
            yield FilmUpdate(film, index, error=exc)
            return
        made.append(run)
        yield FilmUpdate(film, index, video_path=Path(run.video_path))
    dest = studio.settings.films_dir / f"{film.id}.mp4"
    cut = cut_film([Path(run.video_path) for run in made], dest, studio.model.fps)
    log.info("film %s cut: %d frames (%s) in %.2f s", film.id, cut.frames, cut.method, cut.seconds)
    film = studio.store.update_film(film.id, status=FilmStatus.DONE, film_path=str(dest), error_message=None)
    yield FilmUpdate(film, None, video_path=dest)


def _make_shot(
    studio: Studio, film: Film, index: int, shot: dict, request: RunRequest, before: Run | None,
    start: images.PreparedImage | None = None,
):
    """One shot as an ordinary run; yields its updates, returns its run."""
    if before is None:
        if start is not None:
            image: Any = start
        elif film.image_path and Path(film.image_path).is_file():
            image = film.image_path
        else:
            raise StudioError("The film's starting picture is no longer kept: start the film again.")
        continued = None
    else:
        image, continued = starting_frame(studio, before, before.video_path), before.id
    shot_request = request.but(
        prompt=shot["prompt"],
        seed=shot["seed"],
        image=image,
        fit=film.fit,
        fps_prefix=bool(film.fps_prefix),
        film_id=film.id,
        shot=index,
        continued_from=continued,
        visitor=film.visitor,
    )
    done: Done | None = None
    for event in studio.generate(shot_request):
        yield FilmUpdate(film, index, event=event)
        if isinstance(event, Done):
            done = event
    assert done is not None
    return done.run


def _starting_picture_kept(studio: Studio, film: Film) -> Film:
    """The film names the picture its first shot kept (once uploaded), for shots made again."""
    first = _latest_try(studio, film.id, 0)
    if first is None or not first.image_path or first.image_path == film.image_path:
        return film
    if not Path(first.image_path).is_file():
        return film
    return studio.store.update_film(film.id, image_path=first.image_path)


def _latest_try(studio: Studio, film_id: str, index: int) -> Run | None:
    tries = [run for run in studio.store.shots_of(film_id) if run.shot == index]
    return tries[-1] if tries else None


def _requester_of(film: Film) -> Requester:
    return Requester(film.requester or LOCAL, signed_in=film.requester.startswith("hf:"))


def _dumps(shots: list[dict]) -> str:
    return json.dumps(shots)


def carry_on_all(studio: Studio) -> Iterator[tuple[Film, FilmUpdate]]:
    """Every film a process left unfinished (`resume`), carried on; the key that pays must be here."""
    for film in studio.store.films(status=FilmStatus.MAKING, limit=1000):
        if film.model != studio.model.name:
            continue
        last = None
        for update in carry_on(studio, film):
            last = update
        if last is not None:
            yield film, last


# --- the cut ---------------------------------------------------------------------------------


def frames_in(video: str | os.PathLike) -> int:
    """How many frames a video has, as decoded."""
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


@dataclass(frozen=True)
class Cut:
    frames: int
    method: str  # "one fast re-encode": dropping a clip's first frame breaks its keyframe
    seconds: float


def cut_film(clips: Sequence[Path], dest: Path, fps: int) -> Cut:
    """The clips in order as one H.264 MP4 at `fps`, each join's repeated first frame dropped.

    The first frame of every clip after the first is the previous clip's last frame (it is the
    picture the shot was made from), so it is dropped. That frame is each clip's keyframe, so a
    stream copy cannot drop it: the film is encoded once, fast, with evenly spaced timestamps.
    """
    started = time.perf_counter()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.stem}.", suffix=".tmp.mp4")
    os.close(fd)
    tmp = Path(tmp_name)
    written = 0
    try:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "faststart"}) as out:
            stream = None
            for number, clip in enumerate(clips):
                with av.open(str(clip)) as source:
                    for position, frame in enumerate(source.decode(source.streams.video[0])):
                        if number > 0 and position == 0:
                            continue  # the join's repeated frame
                        if stream is None:
                            stream = out.add_stream("libx264", rate=fps)
                            stream.width, stream.height = frame.width, frame.height
                            stream.pix_fmt = "yuv420p"
                            stream.codec_context.gop_size = 2 * fps
                            stream.options = {"preset": "veryfast", "crf": "20", "profile": "high"}
                        if (frame.width, frame.height) != (stream.width, stream.height):
                            frame = frame.reformat(width=stream.width, height=stream.height)
                        # A fresh frame: the source's own timestamps and time base stay behind.
                        picture = av.VideoFrame.from_ndarray(frame.to_ndarray(format="yuv420p"), format="yuv420p")
                        picture.pts = written  # one tick of 1/fps a frame: evenly spaced
                        for packet in stream.encode(picture):
                            out.mux(packet)
                        written += 1
            if stream is not None:
                for packet in stream.encode(None):
                    out.mux(packet)
        if written == 0:
            raise StudioError("The film's shots have no frames to cut: make them again.")
        tmp.chmod(0o644)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Cut(written, "one fast re-encode", time.perf_counter() - started)
