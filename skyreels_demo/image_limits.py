"""What a picture may be before this app decodes it, and the sentences that refuse it.

Limits are set for a public app on a small machine: file size, pixel count, the bytes a decode
and its conversions take for the picture's mode (16-bit and float pictures take more than their
pixel count suggests), and a process-wide budget of bytes being decoded at once, so a crowd of
large pictures waits its turn instead of running the app out of memory.
"""

from __future__ import annotations

import logging
import math
import threading
from contextlib import contextmanager
from typing import Iterator

from PIL import Image

from .errors import ImageRejected

log = logging.getLogger(__name__)

# Bigger files are slow to receive on a Space and no phone photo needs more as a JPEG.
MAX_BYTES = 50_000_000
# Covers 64-MP phone photos; below Pillow's default bomb threshold (89.5 MP), so Pillow never
# warns about a picture this module would accept.
MAX_MEGAPIXELS = 80
# Below this the frame (544 px at its shortest) would be mostly invented by upscaling.
MIN_SIDE = 256

# Bytes a decode of one pixel takes, with the working copies preparing it makes, by mode:
# 16-bit and 32-bit greyscale go through 32-bit integers before 8 bits; a mode not listed
# counts as the largest.
_FOOTPRINT = {
    "1": 1, "L": 1, "P": 2, "LA": 2, "La": 4, "PA": 6, "RGB": 3, "YCbCr": 6, "LAB": 6, "HSV": 6,
    "RGBA": 4, "RGBa": 8, "RGBX": 7, "CMYK": 4, "I;16": 7, "I;16L": 7, "I;16B": 7, "I;16N": 7,
    "I": 9, "F": 9,
}
_WORST_FOOTPRINT = 9
# One picture may take as much as an 80-megapixel RGB photo does.
MAX_DECODED_BYTES = MAX_MEGAPIXELS * 1_000_000 * 3
# All pictures being decoded at once, in this process.
DECODE_BUDGET_BYTES = 2 * MAX_DECODED_BYTES


def footprint(mode: str, pixels: int) -> int:
    """Bytes that decoding and preparing `pixels` pixels of this mode takes at its peak."""
    return pixels * _FOOTPRINT.get(mode, _WORST_FOOTPRINT)


def check_footprint(mode: str, size: tuple[int, int]) -> int:
    """The bytes a full decode would take; refuses a picture over the per-picture limit."""
    needed = footprint(mode, size[0] * size[1])
    if needed > MAX_DECODED_BYTES:
        depth = "high-bit-depth " if _FOOTPRINT.get(mode, _WORST_FOOTPRINT) > 4 else ""
        raise ImageRejected(
            f"This {depth}picture ({size[0]}×{size[1]}, {mode}) would take "
            f"{needed / 1e6:.0f} MB of memory to open, over this app's {MAX_DECODED_BYTES / 1e6:.0f} MB "
            "limit; save it as an ordinary 8-bit JPEG or PNG, or scale it down, and try again."
        )
    return needed


class DecodeBudget:
    """Bytes being decoded at once in this process, held while a picture is prepared."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._used = 0
        self._cond = threading.Condition()

    @property
    def used(self) -> int:
        return self._used

    @contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        nbytes = max(0, min(nbytes, self.total))  # one picture alone always fits
        with self._cond:
            self._cond.wait_for(lambda: self._used + nbytes <= self.total)
            self._used += nbytes
        try:
            yield
        finally:
            with self._cond:
                self._used -= nbytes
                self._cond.notify_all()


DECODE_BUDGET = DecodeBudget(DECODE_BUDGET_BYTES)


def check_file_size(size: int) -> None:
    if size == 0:
        raise ImageRejected(
            "This file is empty (0 bytes); choose the picture again, or save it again "
            "if it came from another app."
        )
    if size > MAX_BYTES:
        shown = math.ceil(size / 100_000) / 10  # rounded up, never "50 MB, over 50 MB"
        raise ImageRejected(
            f"This file is {shown:g} MB, over the {MAX_BYTES / 1e6:g} MB limit; "
            "save it as a JPEG or scale it down and try again."
        )


def unreadable(shown: str, exc: OSError) -> ImageRejected:
    reason = exc.strerror or type(exc).__name__
    return ImageRejected(
        f"The file {shown} could not be read ({reason}); check that it exists and that "
        "you may open it, then try again."
    )


# Signatures of formats that are images even when Pillow cannot parse them (then: damaged).
_IMAGE_SIGNATURES = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",
    b"MM\x00*",
)
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")


def unidentified(head: bytes) -> ImageRejected:
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return ImageRejected(
            "This is a HEIC/HEIF photo, which this app cannot read; export it as JPEG "
            "(on an iPhone: Settings, Camera, Formats, Most Compatible) and try again."
        )
    if head.startswith(_IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return damaged(None)
    return ImageRejected(
        "This file is not a picture this app can read, whatever its name says; "
        "use a JPEG, PNG, WebP, GIF, BMP or TIFF image."
    )


def damaged(exc: BaseException | None) -> ImageRejected:
    if exc is not None and "truncated" in str(exc).lower():
        return ImageRejected(
            "This picture is cut off: the file ends before the image does, probably from an "
            "interrupted copy or download; copy or download it again."
        )
    return ImageRejected(
        "This picture's data is damaged and cannot be decoded; open it in an image editor, "
        "save it again as JPEG or PNG, and try again."
    )


def _pixel_limit() -> int:
    """Our limit, or Pillow's bomb threshold if someone set that lower (read, never set)."""
    ours = MAX_MEGAPIXELS * 1_000_000
    pillows = Image.MAX_IMAGE_PIXELS
    return min(ours, int(pillows)) if pillows else ours


def bomb(size: tuple[int, int] | None, file_size: int | None) -> ImageRejected:
    claim = f"{size[0]}×{size[1]} pixels" if size else "a picture far larger than any photo"
    held = f" in a file of {_human_bytes(file_size)}" if file_size else ""
    return ImageRejected(
        f"This file claims to hold {claim}{held}, which is how decompression bombs look; "
        "it was not opened, so choose a different picture."
    )


def check_dimensions(width: int, height: int, file_size: int | None) -> None:
    pixels = width * height
    limit = _pixel_limit()
    # Twice the limit is Pillow's own line between "too big" and "an attack".
    if pixels > 2 * limit:
        raise bomb((width, height), file_size)
    if pixels > limit:
        raise ImageRejected(
            f"This picture is {pixels / 1e6:.1f} megapixels ({width}×{height}), over the "
            f"{limit / 1e6:g} megapixel limit; scale it down and try again."
        )
    if min(width, height) < MIN_SIDE:
        raise ImageRejected(
            f"This picture is only {width}×{height} pixels; SkyReels needs at least "
            f"{MIN_SIDE} pixels on the shorter side, so use a larger picture."
        )


def _human_bytes(size: int) -> str:
    if size < 10_000:
        return f"{size} bytes"
    if size < 10_000_000:
        return f"{size / 1e3:.0f} kB"
    return f"{size / 1e6:.0f} MB"
