"""A frame of a video as the picture a shot starts on: reading it, and a shot continued from it.

A continued shot is an ordinary run whose image is a frame (by default the last) of an earlier
video, decoded with PyAV and prepared like any picture, under the same caps and price. A film's
shots after the first start the same way (film_shots.py); the share card's poster reads a frame
too. Apart from films.py because a frame needs no film: one shot can be continued on its own.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Iterator

import av
from PIL import Image

from skyreels_demo.errors import BadInput
from skyreels_demo.status import RunStatus
from skyreels_demo.store.records import Run
from skyreels_demo.studio.events import Event
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.studio.studio import Studio

log = logging.getLogger(__name__)

# A film's clips are the app's own MP4s; anything much larger is not one.
MAX_CLIP_BYTES = 200 * 1024 * 1024


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


def frames_in(video: str | os.PathLike) -> int:
    """How many frames a video has, as decoded."""
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


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
    from skyreels_demo.local_api.moves import camera_move
    from skyreels_demo.local_api.render import clean_frame

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
