"""The cut: a film's shots, in order, as one video.

Apart from films.py because cutting knows nothing of runs or records: clips in, one H.264 MP4
out, at the model's frame rate, each join's repeated frame dropped (n shots of 97 frames make
97n - (n - 1)). bench/bench_cut.py times it.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import av

from skyreels_demo.errors import StudioError


@dataclass(frozen=True)
class Cut:
    """What a cut made: its frames, how, and how long it took."""

    frames: int
    method: str  # "one fast re-encode": dropping a clip's first frame breaks its keyframe
    seconds: float


def cut_film(clips: Sequence[Path], dest: Path, fps: int, continues: Sequence[bool] | None = None) -> Cut:
    """The clips in order as one H.264 MP4 at `fps`, each join's repeated first frame dropped.

    The first frame of a clip that continues the one before is that clip's last frame (it is the
    picture the shot was made from), so it is dropped; a clip after a cut (`continues[i]` False:
    made from a picture of its own) keeps all its frames. That frame is each clip's keyframe, so
    a stream copy cannot drop it: the film is encoded once, fast, with evenly spaced timestamps.
    """
    continues = list(continues) if continues is not None else [number > 0 for number in range(len(clips))]
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
                        if number > 0 and continues[number] and position == 0:
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
