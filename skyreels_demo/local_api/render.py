"""The offline preview video: a slow camera move over the still, as a real H.264 MP4.

It stands in for SkyReels output when no API key is set, so it keeps the model's frame size,
frame count and frame rate (from the model's spec), and says in a corner that it is a preview.
`PreviewRenders` keeps one such video per distinct image in the backend's renders/ folder.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from skyreels_demo.models import ModelSpec

log = logging.getLogger(__name__)

MARK_TEXT = "OFFLINE PREVIEW · not SkyReels output"

# How far the camera pushes in over the clip, and how far it drifts (as a share of the room
# the zoom leaves on each side), so the move reads as deliberate but never shows an edge.
ZOOM_END = 1.12
PAN_DIRECTION = (0.55, -0.35)
# Source is kept a little larger than the frame so the zoomed-in end stays sharp.
SOURCE_MARGIN = 1.15
# One keyframe every two seconds: browsers can seek without bloating a clip of a few seconds.
GOP_SECONDS = 2


class NotAnImage(ValueError):
    """The bytes are not a picture Pillow can read."""


def render_preview(
    image_bytes: bytes,
    dest: Path,
    model: ModelSpec,
    *,
    frame: tuple[int, int] | None = None,
) -> Path:
    """Render `model`'s preview clip of `image_bytes` to `dest` (MP4, H.264, yuv420p): its frame
    count at its frame rate. `frame` is (width, height); by default the model's frame for the
    picture's aspect. The file appears at `dest` only when complete. Raises `NotAnImage` for
    bytes Pillow cannot read.
    """
    frames, fps = model.frame_count, model.fps
    if frames < 1 or fps < 1:
        raise ValueError("frames and fps must be positive")
    started = time.perf_counter()
    picture = _open_picture(image_bytes)
    # The model's own choice of frame (models.py), as WaveSpeed's server makes it.
    width, height = frame or model.frame_for(*picture.size)
    if width % 2 or height % 2:
        raise ValueError(f"frame {width}x{height} must have even sides for yuv420p")
    source = _cover(picture, (round(width * SOURCE_MARGIN), round(height * SOURCE_MARGIN)))
    mark, mark_at = _mark(width, height)

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.stem}.", suffix=".tmp.mp4")
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private; a served video must be readable like any other output.
    tmp.chmod(0o644)
    try:
        _encode(source, tmp, width, height, frames, fps, mark, mark_at)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info(
        "rendered preview %s (%dx%d, %d frames) in %.2f s",
        dest.name, width, height, frames, time.perf_counter() - started,
    )
    return dest


class PreviewRenders:
    """The previews in one folder: rendered once per distinct image, then shared by every task."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._jobs: dict[str, Future[Path]] = {}

    def render_once(self, image: bytes, model: ModelSpec) -> Path:
        """`model`'s preview for these image bytes; a second task with the same image waits for the first."""
        digest = hashlib.sha256(image + f"|{model.frames}|{model.fps}|{model.frame_count}".encode()).hexdigest()
        with self._lock:
            job = self._jobs.get(digest)
            mine = job is None
            if mine:
                job = self._jobs[digest] = Future()
        if not mine:
            made = job.result()
            try:
                os.utime(made)  # used again now: an app sweeping old files by their age keeps it
                return made
            except FileNotFoundError:  # swept since: made again
                with self._lock:
                    if self._jobs.get(digest) is job:
                        del self._jobs[digest]
                return self.render_once(image, model)
        dest = self.folder / f"{digest}.mp4"
        try:
            try:
                os.utime(dest)  # used again now: an app sweeping old files by their age keeps it
            except FileNotFoundError:
                render_preview(image, dest, model)
        except BaseException as exc:
            with self._lock:
                del self._jobs[digest]  # let a later task try again
            job.set_exception(exc)
            raise
        job.set_result(dest)
        return dest

    def placeholder(self, model: ModelSpec) -> Path:
        """One tiny valid MP4 that every task shares when rendering is off."""
        picture = Image.linear_gradient("L").resize((128, 72)).convert("RGB")
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        return render_preview(buffer.getvalue(), self.folder / "placeholder.mp4", model, frame=(128, 72))


def _open_picture(image_bytes: bytes) -> Image.Image:
    try:
        picture = Image.open(io.BytesIO(image_bytes))
        # Decoding a large JPEG at a reduced scale is much faster and loses nothing we keep.
        picture.draft("RGB", (1920, 1920))
        picture = ImageOps.exif_transpose(picture)
        if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
            # Transparent areas become white rather than whatever colour hides under alpha.
            rgba = picture.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            picture = Image.alpha_composite(white, rgba)
        return picture.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise NotAnImage(f"the bytes are not a readable picture ({exc})") from exc


def _cover(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Centre-crop to the aspect of `size` and scale to it, as the model does."""
    return ImageOps.fit(picture, size, method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def _ease(t: float) -> float:
    # Smoothstep: the camera starts and stops gently instead of jerking at the ends.
    return t * t * (3.0 - 2.0 * t)


def _window(source_size: tuple[int, int], t: float) -> tuple[float, float, float, float]:
    """The part of the source the camera sees at time t in [0, 1], as a float box."""
    sw, sh = source_size
    e = _ease(t)
    zoom = 1.0 + (ZOOM_END - 1.0) * e
    ww, wh = sw / zoom, sh / zoom
    cx = sw / 2 + PAN_DIRECTION[0] * (sw - ww) / 2 * e
    cy = sh / 2 + PAN_DIRECTION[1] * (sh - wh) / 2 * e
    return (cx - ww / 2, cy - wh / 2, cx + ww / 2, cy + wh / 2)


def _mark(width: int, height: int) -> tuple[Image.Image, tuple[int, int]]:
    """The corner label as an RGBA tile, and where it goes (bottom right)."""
    size = max(10, min(width, height) // 34)
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(MARK_TEXT)
    pad = max(3, size // 3)
    tile = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (0, 0, 0, 0))
    draw = ImageDraw.Draw(tile)
    draw.rounded_rectangle((0, 0, tile.width - 1, tile.height - 1), radius=pad, fill=(0, 0, 0, 110))
    draw.text((pad - left, pad - top), MARK_TEXT, font=font, fill=(255, 255, 255, 200))
    margin = max(6, size // 2)
    return tile, (width - tile.width - margin, height - tile.height - margin)


def _encode(
    source: Image.Image,
    path: Path,
    width: int,
    height: int,
    frames: int,
    fps: int,
    mark: Image.Image,
    mark_at: tuple[int, int],
) -> None:
    # faststart puts the index first so a browser can start playing before the download ends.
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = GOP_SECONDS * fps
        stream.codec_context.thread_count = 0
        stream.options = {"preset": "veryfast", "crf": "23", "profile": "high"}
        last = max(frames - 1, 1)
        for index in range(frames):
            picture = source.resize(
                (width, height), Image.Resampling.BILINEAR, box=_window(source.size, index / last)
            )
            picture.paste(mark, mark_at, mark)
            video_frame = av.VideoFrame.from_image(picture)
            video_frame.pts = index
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
