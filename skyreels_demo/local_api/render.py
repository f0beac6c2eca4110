"""The offline preview video: a slow camera move over the still, as a real H.264 MP4.

It stands in for SkyReels output when no API key is set, so it keeps the model's frame size,
frame count and frame rate (from the model's spec), and says in a corner that it is a preview.

The camera makes the move `moves.camera_move` chose for the task's seed and prompt.

`preview_frame` gives any frame of a clip without the corner label: a shot continued from a
preview's frame starts from a clean picture, and the label is drawn once, on its own clip.
`PreviewRenders` keeps one video per distinct image and move in the backend's renders/ folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Iterator

import av
from PIL import Image, ImageChops, ImageDraw, ImageFont, ImageOps, ImageStat, UnidentifiedImageError

from skyreels_demo.local_api.moves import STILL_PUSH, CameraMove
from skyreels_demo.models import ModelSpec

log = logging.getLogger(__name__)

MARK_TEXT = "OFFLINE PREVIEW · not SkyReels output"

# The source is kept a little larger than the frame, so a move's zoomed-in end stays sharp.
SOURCE_MARGIN = 1.15
# A frame decoded from the preview differs from the same frame rendered again by H.264's loss
# alone: about 1 on average (0 to 255). Another move over the picture differs by 8 or more.
MATCH_WITHIN = 4.0
# One keyframe every two seconds: browsers can seek without bloating a clip of a few seconds.
GOP_SECONDS = 2
# x264's veryfast, its sub-pixel search at its quickest (subme=1): a third less CPU for a clip
# about a tenth larger, which a preview can afford (bench/bench_preview_render.py).
X264_OPTIONS = {"preset": "veryfast", "crf": "23", "profile": "high", "x264-params": "subme=1"}

# The frames are drawn in the video's own colours, as H.264 players read them (yuv420p: BT.601,
# limited range): the picture is turned once into a full-size Y plane and half-size Cb and Cr
# planes, and each frame is three resizes handed to the encoder as they are, instead of an RGB
# resize and a conversion per frame (half the CPU of a render).
_Y_RANGE = [16 + round(v * 219 / 255) for v in range(256)]
_C_RANGE = [128 + round((v - 128) * 224 / 255) for v in range(256)]
Planes = tuple[Image.Image, Image.Image, Image.Image]  # Y; Cb and Cr at half the size
# The stock clip every task gets when rendering is off: small (a quarter of a second of a core,
# once per process), yet its last frame is a picture a shot may continue from (256 pixels on its
# shorter side: images.limits.MIN_SIDE).
PLACEHOLDER_FRAME = (456, 256)




class NotAnImage(ValueError):
    """The bytes are not a picture Pillow can read."""


def render_preview(
    image_bytes: bytes,
    dest: Path,
    model: ModelSpec,
    *,
    frame: tuple[int, int] | None = None,
    move: CameraMove = STILL_PUSH,
) -> Path:
    """Render `model`'s preview clip of `image_bytes` to `dest` (MP4, H.264, yuv420p): its frame
    count at its frame rate, the camera making `move`. `frame` is (width, height); by default
    the model's frame for the picture's aspect. The file appears at `dest` only when complete.
    Raises `NotAnImage` for bytes Pillow cannot read.
    """
    frames, fps = model.frame_count, model.fps
    if frames < 1 or fps < 1:
        raise ValueError("frames and fps must be positive")
    started = time.perf_counter()
    source, width, height = _source(image_bytes, model, frame)
    mark, mark_at = _mark(width, height)

    dest = Path(dest)
    with _whole_or_nothing(dest) as tmp:
        _encode(source, tmp, width, height, frames, fps, move, mark, mark_at)
    log.info(
        "rendered preview %s (%dx%d, %d frames, %s) in %.2f s",
        dest.name, width, height, frames, move.kind, time.perf_counter() - started,
    )
    return dest


def preview_frame(
    image_bytes: bytes, model: ModelSpec, move: CameraMove, index: int | None = None
) -> Image.Image:
    """Frame `index` (from 0; None: the last) of the preview `render_preview` makes of these
    bytes with `move`, without the corner label: the picture a shot continued from it starts on.
    Raises `NotAnImage` for bytes Pillow cannot read, ValueError for a frame the clip has not."""
    frames = model.frame_count
    index = frames - 1 if index is None else index
    if not 0 <= index < frames:
        raise ValueError(f"the preview has frames 0 to {frames - 1}, not {index}")
    source, width, height = _source(image_bytes, model, None)
    return _video_frame(_frame(source, width, height, move, index / max(frames - 1, 1))).to_image()


def clean_frame(
    image_bytes: bytes, model: ModelSpec, move: CameraMove, seen: Image.Image, index: int | None = None
) -> Image.Image | None:
    """`seen` (frame `index` of a clip, None: the last) without the corner label, when the clip
    is this preview of these bytes with `move`: everywhere but the label it must match the frame
    rendered again (within what H.264 changes). None when it does not, or the bytes are no
    picture: then the clip is something else (SkyReels output, another move), and `seen` stands.
    """
    try:
        clean = preview_frame(image_bytes, model, move, index)
    except (NotAnImage, ValueError):
        return None
    if clean.size != seen.size:
        return None
    difference = ImageChops.difference(clean, seen.convert("RGB"))
    left, top = _mark(*clean.size)[1]
    difference.paste((0, 0, 0), (left, top, clean.width, clean.height))  # the label's corner
    outside = clean.width * clean.height - (clean.width - left) * (clean.height - top)
    mean = sum(ImageStat.Stat(difference).sum) / 3 / outside
    return clean if mean < MATCH_WITHIN else None


class PreviewRenders:
    """The previews in one folder: rendered once per distinct image and move, then shared by
    every task that asks for the same."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._jobs: dict[str, Future[Path]] = {}  # renders under way: a second ask waits for the first

    def render_once(self, image: bytes, model: ModelSpec, move: CameraMove = STILL_PUSH) -> Path:
        """`model`'s preview of these image bytes with `move`; a task asking for one being made waits for it."""
        facts = f"|{model.frames}|{model.fps}|{model.frame_count}|{move.key}"
        digest = hashlib.sha256(image + facts.encode()).hexdigest()
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
                return self.render_once(image, model, move)
        dest = self.folder / f"{digest}.mp4"
        try:
            try:
                os.utime(dest)  # used again now: an app sweeping old files by their age keeps it
            except FileNotFoundError:
                render_preview(image, dest, model, move=move)
        except BaseException as exc:
            job.set_exception(exc)  # this task fails; a later one tries again
            raise
        else:
            job.set_result(dest)
        finally:
            # Once made, the file on disk is what is shared: nothing is kept here per render.
            with self._lock:
                if self._jobs.get(digest) is job:
                    del self._jobs[digest]
        return dest

    # The placeholder's bytes, made once per process and model, whatever folder asks.
    _placeholders: dict[tuple, bytes] = {}

    def placeholder(self, model: ModelSpec) -> Path:
        """One tiny valid MP4 that every task shares when rendering is off."""
        dest = self.folder / "placeholder.mp4"
        facts = (model.frame_count, model.fps)
        made = self._placeholders.get(facts)
        if made is None:
            picture = Image.linear_gradient("L").resize(PLACEHOLDER_FRAME).convert("RGB")
            buffer = io.BytesIO()
            picture.save(buffer, "PNG")
            made = render_preview(buffer.getvalue(), dest, model, frame=PLACEHOLDER_FRAME).read_bytes()
            self._placeholders[facts] = made
        else:  # whole or not at all: another backend on this folder may be serving it
            with _whole_or_nothing(dest) as tmp:
                tmp.write_bytes(made)
        return dest


@contextlib.contextmanager
def _whole_or_nothing(dest: Path) -> Iterator[Path]:
    """A temporary file beside `dest` to write; it becomes `dest` only when the block ends
    without an error (else it is removed), so a reader never sees half a video."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.stem}.", suffix=".tmp.mp4")
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private; a served video must be readable like any other output.
    tmp.chmod(0o644)
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _source(image_bytes: bytes, model: ModelSpec, frame: tuple[int, int] | None) -> tuple[Planes, int, int]:
    """The picture the camera moves over, as planes, and the frame's (width, height)."""
    picture = _open_picture(image_bytes)
    # The model's own choice of frame (models.py), as WaveSpeed's server makes it.
    width, height = frame or model.frame_for(*picture.size)
    if width % 2 or height % 2:
        raise ValueError(f"frame {width}x{height} must have even sides for yuv420p")
    return _planes(_cover(picture, (round(width * SOURCE_MARGIN), round(height * SOURCE_MARGIN)))), width, height


def _planes(picture: Image.Image) -> Planes:
    """An RGB picture in the video's colours: Y, and Cb and Cr averaged over 2x2 pixels."""
    y, cb, cr = picture.convert("YCbCr").split()  # Pillow's is BT.601 over the full range
    half = ((picture.width + 1) // 2, (picture.height + 1) // 2)
    return (
        y.point(_Y_RANGE),
        cb.point(_C_RANGE).resize(half, Image.Resampling.BOX),
        cr.point(_C_RANGE).resize(half, Image.Resampling.BOX),
    )


def _frame(source: Planes, width: int, height: int, move: CameraMove, t: float) -> Planes:
    """What the camera sees at time t in [0, 1], at the frame's size, unlabelled."""
    y, cb, cr = source
    left, top, right, bottom = move.window(y.size, t)
    across, down = cb.width / y.width, cb.height / y.height
    box = (left * across, top * down, right * across, bottom * down)
    half = (width // 2, height // 2)
    return (
        y.resize((width, height), Image.Resampling.BILINEAR, box=(left, top, right, bottom)),
        cb.resize(half, Image.Resampling.BILINEAR, box=box),
        cr.resize(half, Image.Resampling.BILINEAR, box=box),
    )


def _video_frame(planes: Planes) -> av.VideoFrame:
    """The planes as one yuv420p frame (each row padded to the frame's own stride)."""
    frame = av.VideoFrame(planes[0].width, planes[0].height, "yuv420p")
    for plane, picture in zip(frame.planes, planes):
        if plane.line_size != picture.width:
            padded = Image.new("L", (plane.line_size, picture.height))
            padded.paste(picture)
            picture = padded
        plane.update(picture.tobytes())
    return frame


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
    # On even pixels, so the half-size planes take it at half the place.
    return tile, ((width - tile.width - margin) // 2 * 2, (height - tile.height - margin) // 2 * 2)


def _mark_planes(mark: Image.Image) -> tuple[Planes, tuple[Image.Image, Image.Image]]:
    """The corner label in the video's colours, with its opacity at full and half size."""
    alpha = mark.getchannel("A")
    half = ((mark.width + 1) // 2, (mark.height + 1) // 2)
    return _planes(mark.convert("RGB")), (alpha, alpha.resize(half, Image.Resampling.BOX))


def _encode(
    source: Planes,
    path: Path,
    width: int,
    height: int,
    frames: int,
    fps: int,
    move: CameraMove,
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
        stream.options = X264_OPTIONS
        label, (opacity, half_opacity) = _mark_planes(mark)
        left, top = mark_at
        last = max(frames - 1, 1)
        for index in range(frames):
            planes = _frame(source, width, height, move, index / last)
            planes[0].paste(label[0], (left, top), opacity)
            for plane, part in zip(planes[1:], label[1:]):
                plane.paste(part, (left // 2, top // 2), half_opacity)
            video_frame = _video_frame(planes)
            video_frame.pts = index
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
