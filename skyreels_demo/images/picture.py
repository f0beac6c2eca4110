"""A picture prepared for the model: open, validate, orient, decode, then frame and encode.

Whatever a person drops in (a 48-megapixel phone photo turned sideways by EXIF, a PNG with
transparency, a CMYK JPEG, a 16-bit TIFF, an animated GIF, a file that only pretends to be an
image) becomes exactly the small JPEG SkyReels V1 should receive, or is refused with one
sentence (`ImageRejected`) before anything is uploaded.

`prepare` is thread-safe: it never changes Pillow's global settings (it reads
`Image.MAX_IMAGE_PIXELS` only to honour a stricter limit set by someone else) and never
modifies an image passed in by the caller.

This module opens and decodes, within the limits and budgets of limits.py; where the frame falls
(the crop or fit, the orientation's geometry, the reduced decode) is framing.py's, and the
pixels made into the JPEG (modes, transparency, colours, quality) are encode.py's.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import struct
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import urlsplit

from PIL import Image, ImageOps, UnidentifiedImageError, features

from skyreels_demo.errors import ImageRejected
from skyreels_demo.images import metadata as image_metadata
from skyreels_demo.images.limits import (  # noqa: F401 (the limits are part of this module's surface)
    DECODE_BUDGET,
    MAX_BYTES,
    MAX_DECODED_BYTES,
    MAX_METADATA_BYTES,
    MAX_MEGAPIXELS,
    METADATA_BUDGET,
    MIN_SIDE,
    bomb,
    check_dimensions,
    check_file_size,
    check_metadata,
    damaged,
    unidentified,
    unreadable,
    check_cost,
    decode_cost,
)
from skyreels_demo.images.encode import CONTENT_TYPE, encode, resizable, to_rgb
from skyreels_demo.images.framing import (
    ORIENTATIONS,
    decode_reduced,
    frame_box,
    framing_notes,
    on_blurred_border,
)
from skyreels_demo.models import Frames

log = logging.getLogger(__name__)

FITS = ("crop", "pad")
# Pillow's whole-factor reduce is a plain box filter, so it stops at twice the target and
# leaves LANCZOS the rest, as Pillow's thumbnail does (47 dB against a full-size LANCZOS).
REDUCING_GAP = 2.0

# What SkyReels' upload accepts, plus AVIF if Pillow has it (MPO, a phone JPEG with a depth
# map, opens as JPEG); everything else (EPS, PSD, ...) is never handed to a parser at all.
READABLE_FORMATS = tuple(
    name
    for name in ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
    if name != "AVIF" or features.check("avif")
)
_DRAFTABLE = ("JPEG", "MPO")
_ORIENTATION_TAG = 0x0112

# What Pillow raises on files that parse as images but do not decode.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


@dataclass(frozen=True)
class PreparedImage:
    """A picture made ready for SkyReels V1: JPEG bytes at one of the model's frames."""

    data: bytes = field(repr=False)
    content_type: str
    width: int
    height: int
    source_size: tuple[int, int]  # after EXIF orientation
    source_format: str  # Pillow's name: "JPEG", "PNG", ...; "PIL" for an image passed in
    crop_box: tuple[int, int, int, int]  # the part used, in oriented source pixels
    sha256: str
    notes: tuple[str, ...]  # short sentences for the person: what was done to the picture
    fit: str

    @property
    def filename(self) -> str:
        """A stable name for the upload, from the content's hash."""
        return f"frame-{self.sha256[:12]}.jpg"

    def to_pil(self) -> Image.Image:
        """The prepared frame decoded again, as the model will see it."""
        image = Image.open(io.BytesIO(self.data))
        image.load()
        return image


def is_remote_url(value: object) -> bool:
    """Whether `value` is an http(s) address, which is passed on as is, never downloaded here."""
    if not isinstance(value, str):
        return False
    parts = urlsplit(value.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def prepare(source: str | os.PathLike | bytes | Image.Image, *, frames: Frames, fit: str = "crop") -> PreparedImage:
    """Turn a path, bytes or Pillow image into the JPEG frame the model should receive: one of
    its native `frames` (width, height), the one nearest the picture's aspect.

    `fit="crop"` centre-crops to the frame's aspect as the model itself does; `fit="pad"`
    keeps the whole picture on a blurred, dimmed copy of itself. Raises `ImageRejected` with
    one sentence for anything that cannot become a frame.
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, not {fit!r}")
    if isinstance(source, Image.Image):
        return _prepare_image(source, fit=fit, frames=frames, owned=False, file_size=None)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        check_file_size(len(data))
        return _prepare_file(io.BytesIO(data), len(data), fit, frames)
    if isinstance(source, str) and is_remote_url(source):
        raise ImageRejected(
            "This is a web address, not a file: pass it to SkyReels as it is, "
            "or download the picture and choose the file."
        )
    if isinstance(source, (str, os.PathLike)):
        return _prepare_path(os.fspath(source), fit, frames)
    raise TypeError(f"prepare() takes a path, bytes or a PIL image, not {type(source).__name__}")


# --- opening -------------------------------------------------------------------------------


def _prepare_path(path: str | bytes, fit: str, frames: Frames) -> PreparedImage:
    shown = os.fsdecode(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ImageRejected(f"There is no file at {shown}; check the path and try again.") from None
    except OSError as exc:
        raise unreadable(shown, exc) from exc
    if stat.S_ISDIR(info.st_mode):
        raise ImageRejected(f"{shown} is a folder, not a picture; choose an image file inside it.")
    check_file_size(info.st_size)
    try:
        file = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise unreadable(shown, exc) from exc
    with file:
        return _prepare_file(file, info.st_size, fit, frames)


def _prepare_file(file: BinaryIO, file_size: int, fit: str, frames: Frames) -> PreparedImage:
    head = file.read(32)
    file.seek(0)
    # What Pillow would keep beside the pixels, from the file's own headers, before it reads any.
    try:
        metadata = image_metadata.measure(file, head, stop_at=MAX_METADATA_BYTES)
    except _DECODE_ERRORS as exc:
        log.info("Image metadata could not be walked: %r", exc)
        raise damaged(exc) from exc
    # Held until the picture is prepared, and taken before the decode budget (image_limits.py).
    with METADATA_BUDGET.hold(check_metadata(metadata)):
        image = _open(file, head, file_size)
        with image:
            return _prepare_image(image, fit=fit, frames=frames, owned=True, file_size=file_size)


def _open(file: BinaryIO, head: bytes, file_size: int) -> Image.Image:
    try:
        image = Image.open(file, formats=READABLE_FORMATS)
        if image.format == "PNG":
            # Pillow skips the checksums of PNG picture data, so damage there would decode
            # silently as a glitched picture; checking them first costs a CRC pass.
            image.verify()
            del image  # and what it kept (its text, say) before the second opening keeps it again
            file.seek(0)
            image = Image.open(file, formats=("PNG",))
        return image
    except Image.DecompressionBombError as exc:
        log.info("Pillow refused a decompression bomb: %s", exc)
        raise bomb(None, file_size) from exc
    except UnidentifiedImageError as exc:
        log.info("Not a readable image (starts %r)", head[:12])
        raise unidentified(head) from exc
    except _DECODE_ERRORS as exc:
        log.info("Image header could not be parsed: %r", exc)
        raise damaged(exc) from exc


# --- preparing -----------------------------------------------------------------------------


def _prepare_image(
    image: Image.Image, *, fit: str, frames: Frames, owned: bool, file_size: int | None
) -> PreparedImage:
    """Everything after opening. `owned`: the image is ours to reduce and turn in place."""
    raw_w, raw_h = image.size
    check_dimensions(raw_w, raw_h, file_size)
    reducible = owned and (image.format or "PIL") in _DRAFTABLE
    scale = 1.0
    if reducible:
        # Set up libjpeg's 1/2, 1/4 or 1/8 scale decode first (nothing is decoded yet), so the
        # budget counts what it really achieves: nothing for a picture whose short side is
        # already near the frame's, and no coefficient buffer saved for a progressive one.
        try:
            scale = _draft_for_frame(image, fit, frames)
        except _DECODE_ERRORS as exc:
            log.info("Image header could not be parsed: %r", exc)
            raise damaged(exc) from exc
    cost = decode_cost(image, file_size=file_size, full_size=(raw_w, raw_h))
    needed = check_cost(cost)
    log.debug("Decoding %s %dx%d %s takes %d MB", cost.mode, raw_w, raw_h, image.format,
              needed // 1_000_000)
    with DECODE_BUDGET.hold(needed):
        return _decode_and_frame(
            image, fit=fit, frames=frames, owned=owned, reducible=reducible, scale=scale,
            raw_size=(raw_w, raw_h), file_size=file_size,
        )


def _draft_for_frame(image: Image.Image, fit: str, frames: Frames) -> float:
    """Ask for the reduced decode that still covers this picture's frame; the scale it gives."""
    swapped = ORIENTATIONS[_orientation(image)][0]
    width, height = (image.height, image.width) if swapped else image.size
    _frame, crop_box, target = frame_box(width, height, fit, frames)
    return decode_reduced(image, (width, height), crop_box, target, swapped)


def _decode_and_frame(
    image: Image.Image,
    *,
    fit: str,
    frames: Frames,
    owned: bool,
    reducible: bool,
    scale: float,
    raw_size: tuple[int, int],
    file_size: int | None,
) -> PreparedImage:
    """Decode (at the scale a draft set up, if any) and make the frame, in source pixels."""
    raw_w, raw_h = raw_size
    notes: list[str] = []
    source_format = image.format or "PIL"
    try:
        if getattr(image, "is_animated", False) and source_format != "MPO" and image.tell() == 0:
            # An MPO's second frame is a depth map or preview, not motion.
            page = "page of a multi-page" if source_format == "TIFF" else "frame of an animated"
            notes.append(f"Used the first {page} image.")
        if not reducible:
            image.load()  # a PNG may keep its EXIF after the pixels, so decode before reading it
        orientation = _orientation(image)
        swapped, mirror_x, mirror_y = ORIENTATIONS[orientation]
        width, height = (raw_h, raw_w) if swapped else (raw_w, raw_h)
        frame, crop_box, target = frame_box(width, height, fit, frames)
        if reducible:
            image.load()
        icc_profile = image.info.get("icc_profile")
        if owned:
            _forget_metadata(image)
        if orientation != 1:
            if owned:
                ImageOps.exif_transpose(image, in_place=True)
            else:
                image = ImageOps.exif_transpose(image)
            notes.append("Rotated to match the photo's orientation tag.")
        working = resizable(image)
    except Image.DecompressionBombError as exc:
        raise bomb((raw_w, raw_h), file_size) from exc
    except _DECODE_ERRORS as exc:
        log.info("Image could not be decoded: %r", exc)
        raise damaged(exc) from exc

    # A reduced decode covers its last, partial pixel; after a mirror that pixel sits first.
    offset_x = working.width - width * scale if mirror_x else 0.0
    offset_y = working.height - height * scale if mirror_y else 0.0
    box = (
        offset_x + crop_box[0] * scale,
        offset_y + crop_box[1] * scale,
        offset_x + crop_box[2] * scale,
        offset_y + crop_box[3] * scale,
    )
    picture = working.resize(target, Image.Resampling.LANCZOS, box=box, reducing_gap=REDUCING_GAP)
    picture = to_rgb(picture, icc_profile, notes)
    notes.extend(framing_notes(fit, (width, height), crop_box, target, frame))
    if fit == "pad" and target != frame:
        picture = on_blurred_border(picture, frame)
    data = encode(picture)
    return PreparedImage(
        data=data,
        content_type=CONTENT_TYPE,
        width=frame[0],
        height=frame[1],
        source_size=(width, height),
        source_format=source_format,
        crop_box=crop_box,
        sha256=hashlib.sha256(data).hexdigest(),
        notes=tuple(notes),
        fit=fit,
    )


# Metadata Pillow keeps that preparing never reads once the orientation and colour profile are
# taken: PNG text (every text value is a str), XMP, EXIF, comments, Photoshop's blocks. Dropped,
# so ImageOps.exif_transpose neither re-encodes every EXIF tag into Python values nor rewrites
# the XMP for a frame that keeps none of it (the orientation stays in the picture's parsed EXIF).
_UNREAD_METADATA = frozenset(
    {"exif", "Raw profile type exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop", "flashpix"}
)


def _forget_metadata(image: Image.Image) -> None:
    png = image.format == "PNG"
    for key in [
        key for key, value in image.info.items()
        if key in _UNREAD_METADATA or (png and isinstance(value, str))
    ]:
        del image.info[key]


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS as exc:
        # Damaged EXIF should not cost the picture; it is shown as stored.
        log.info("Ignoring unreadable EXIF: %r", exc)
        return 1
    return value if value in ORIENTATIONS else 1


