"""What a picture may be before this app decodes it, and the sentences that refuse it.

Limits are set for a public app on a small machine: file size, pixel count, the bytes a decode
really takes at its peak (the decoded picture as Pillow stores it, its decoder's own buffers,
and the full-size copies that transparency, palettes and 16-bit or float greyscale cause), what
Pillow keeps beside the pixels (text, colour profiles, EXIF: `image_metadata.py`), and
process-wide budgets of bytes being decoded at once, so a crowd of large pictures waits its
turn instead of running the app out of memory.
"""

from __future__ import annotations

import logging
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from PIL import Image, PngImagePlugin

from skyreels_demo.errors import ImageRejected
from skyreels_demo.images.metadata import Metadata

log = logging.getLogger(__name__)

# Bigger files are slow to receive on a Space and no phone photo needs more as a JPEG.
MAX_BYTES = 50_000_000
# Covers 64-MP phone photos; below Pillow's default bomb threshold (89.5 MP), so Pillow never
# warns about a picture this module would accept.
MAX_MEGAPIXELS = 80
# Below this the frame (544 px at its shortest) would be mostly invented by upscaling.
MIN_SIDE = 256

# Bytes Pillow stores one pixel in, by mode: every mode of three or four bands (RGB included)
# takes four bytes, 16-bit greyscale two, and the one-band 8-bit modes one.
_STORED = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_STORED_DEFAULT = 4
# Bytes per pixel of the full-size copies preparing makes from a picture of this mode, all held
# at once beside the decoded picture (measured with VmHWM in a fresh process): resizing RGBA or
# LA premultiplies alpha into a copy; 16-bit and float greyscale go through two 32-bit copies
# before 8 bits. A mode not listed counts as the largest.
_COPIES = {
    "1": 1, "L": 0, "P": 4, "LA": 4, "La": 8, "PA": 8, "RGB": 0, "YCbCr": 4, "LAB": 4, "HSV": 4,
    "RGBA": 4, "RGBa": 8, "RGBX": 4, "CMYK": 0, "I;16": 9, "I;16L": 9, "I;16B": 9, "I;16N": 9,
    "I": 5, "F": 5,
}
_WORST_COPIES = 9
_DEEP_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
# A transparent colour (PNG's tRNS, a GIF's transparent index) or a palette's alpha turns the
# picture into an RGBA copy, and resizing that into a premultiplied one: both, beside the original.
_TRANSPARENT_COPIES = 8
# Bytes per pixel a decoder keeps beside the picture while it decodes, and after it, until the
# picture is closed; and how many copies of the file it reads into memory. Measured: Pillow
# decodes WebP (still or animated) through libwebp's animation decoder, which keeps two
# full-size canvases and hands the frame over as one more copy; AVIF decodes to YUV planes, the
# codec's own frame and an RGB copy.
_DECODER_DURING = {"WEBP": 13, "AVIF": 8}
_DECODER_AFTER = {"WEBP": 8, "AVIF": 3}
_FILE_COPIES = {"WEBP": 2, "AVIF": 1}
# A progressive JPEG is decoded scan by scan into a whole-image buffer of DCT coefficients, two
# bytes per sample at full size, whatever scale the decode is drafted to.
_COEFFICIENT_BYTES = 2

# One picture may take as much as decoding an 80-megapixel RGB picture takes in Pillow.
MAX_DECODED_BYTES = MAX_MEGAPIXELS * 1_000_000 * _STORED_DEFAULT
# All pictures being decoded at once, in this process: room for the largest picture and some
# smaller ones. With the metadata budget below, 400 MB: within the +500 MB the app may grow by
# when a crowd sends pictures at once.
DECODE_BUDGET_BYTES = 352_000_000

# What one picture may carry beside its pixels, in bytes Pillow would keep for it: text, colour
# profiles, EXIF (with what parsing its directory reads) and other application blocks. A phone
# photo carries about 100 kB, a PNG with an AI tool's workflow a few hundred; more than this is
# a bomb or a file an editor has bloated.
MAX_METADATA_BYTES = 8_000_000
# Peak bytes per byte of metadata while a picture is opened and prepared: Pillow reads each
# block, keeps it (a JPEG's XMP and ICC twice) and turns PNG text into strings. Measured.
_METADATA_PEAK = 3
# Metadata of all pictures being opened at once: room for two at the limit, or hundreds of
# ordinary ones. Held from before a picture is opened until it is prepared, and always taken
# before the decode budget, never while holding it, so no two waits can close a cycle.
METADATA_BUDGET_BYTES = 48_000_000


def footprint(mode: str, pixels: int, *, transparent: bool = False) -> int:
    """Bytes that decoding and preparing `pixels` pixels of this mode takes at its peak."""
    copies = _TRANSPARENT_COPIES if transparent else _COPIES.get(mode, _WORST_COPIES)
    return pixels * (_STORED.get(mode, _STORED_DEFAULT) + copies)


@dataclass(frozen=True)
class DecodeCost:
    """What opening one picture really takes: its peak bytes, and the part that explains it."""

    size: tuple[int, int]  # as stored in the file
    mode: str
    peak: int
    cause: str  # "", "progressive", "transparency", "decoder" or "depth"


def decode_cost(
    image: Image.Image, *, file_size: int | None, full_size: tuple[int, int] | None = None
) -> DecodeCost:
    """The peak bytes decoding and preparing `image` takes, as it is set up to decode.

    `full_size` is the size in the file when a reduced JPEG decode (draft) has been set up, so
    `image.size` is already the reduced one.
    """
    mode, fmt = image.mode, image.format or "PIL"
    size = full_size or image.size
    decoded = image.size[0] * image.size[1]
    transparent = mode in ("1", "L", "P", "RGB") and image.has_transparency_data
    picture_and_copies = footprint(mode, decoded, transparent=transparent)
    stored = decoded * _STORED.get(mode, _STORED_DEFAULT)
    during = decoded * _DECODER_DURING.get(fmt, 0) + _file_bytes(fmt, file_size)
    after = decoded * _DECODER_AFTER.get(fmt, 0) + _file_bytes(fmt, file_size)
    progressive = fmt in ("JPEG", "MPO") and bool(image.info.get("progressive"))
    if progressive:
        during += _coefficient_bytes(image, size)
    peak = max(stored + during, picture_and_copies + after)
    if progressive:
        cause = "progressive"
    elif fmt in _DECODER_DURING:
        cause = "decoder"
    elif transparent or mode in ("P", "PA"):
        cause = "transparency"
    elif mode in _DEEP_MODES:
        cause = "depth"
    else:
        cause = ""
    return DecodeCost(size=size, mode=mode, peak=peak, cause=cause)


def _file_bytes(fmt: str, file_size: int | None) -> int:
    return _FILE_COPIES.get(fmt, 0) * (file_size or 0)


def _coefficient_bytes(image: Image.Image, size: tuple[int, int]) -> int:
    """A progressive JPEG's coefficient buffer: each component at its sampling, in whole MCUs."""
    layers = getattr(image, "layer", None) or [("", 1, 1, 0)] * len(image.getbands())
    h_max = max(layer[1] for layer in layers)
    v_max = max(layer[2] for layer in layers)
    mcu_cols = math.ceil(size[0] / (8 * h_max))
    mcu_rows = math.ceil(size[1] / (8 * v_max))
    blocks = sum(mcu_cols * h * mcu_rows * v for _, h, v, _ in layers)
    return blocks * 64 * _COEFFICIENT_BYTES


def check_cost(cost: DecodeCost) -> int:
    """The peak bytes; refuses a picture over the per-picture limit, saying why and what to do."""
    if cost.peak <= MAX_DECODED_BYTES:
        return cost.peak
    width, height = cost.size
    opening = (
        f"would take {cost.peak / 1e6:.0f} MB of memory to open, over this app's "
        f"{MAX_DECODED_BYTES / 1e6:.0f} MB limit"
    )
    # The pixel count at which the same kind of picture fits, rounded down.
    fits = math.floor(width * height * MAX_DECODED_BYTES / cost.peak / 1e5) / 10
    if cost.cause == "progressive":
        raise ImageRejected(
            f"This progressive JPEG ({width}×{height}) {opening}, because a progressive JPEG "
            "is held whole while it decodes; save it as an ordinary (baseline) JPEG, or scale "
            "it down, and try again."
        )
    if cost.cause == "transparency":
        raise ImageRejected(
            f"This {'palette picture' if cost.mode == 'P' else 'picture with transparency'} "
            f"({width}×{height}) {opening}, because it is expanded to full colour at full "
            f"size to be resized; scale "
            f"it down to about {fits:g} megapixels or save it as a JPEG, and try again."
        )
    if cost.cause == "decoder":
        raise ImageRejected(
            f"This picture ({width}×{height}) {opening}, because its format's decoder holds "
            f"several full-size copies; scale it down to about {fits:g} megapixels or save it "
            "as a JPEG or PNG, and try again."
        )
    depth = "high-bit-depth " if cost.cause == "depth" else ""
    raise ImageRejected(
        f"This {depth}picture ({width}×{height}, {cost.mode}) {opening}; save it as an "
        "ordinary 8-bit JPEG or PNG, or scale it down, and try again."
    )


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
METADATA_BUDGET = DecodeBudget(METADATA_BUDGET_BYTES)

_METADATA_WORDS = {
    "text": "hidden text",
    "icc": "a colour profile",
    "exif": "camera data (EXIF)",
    "other": "hidden data",
}


def check_metadata(metadata: Metadata) -> int:
    """Bytes to hold for a picture's metadata; refuses the absurd, saying what to do."""
    if not metadata.oversized and metadata.held <= MAX_METADATA_BYTES:
        return metadata.held * _METADATA_PEAK
    what = _METADATA_WORDS[metadata.largest]
    remedy = (
        "save it again without metadata (an editor's “Export” or “Save for web” leaves it "
        "out) and try again."
    )
    if metadata.oversized:
        raise ImageRejected(
            f"This picture carries {what} in one block that unpacks to over "
            f"{PngImagePlugin.MAX_TEXT_CHUNK / 1e6:.0f} MB of memory, more than this app "
            f"reads; {remedy}"
        )
    # Tenths under 10 MB: rounded up, never "8 MB, beyond the 8 MB limit"; or, when counting
    # stopped past the limit, down after "over".
    held, step = metadata.held / 1e6, (10 if metadata.held < 10_000_000 else 1)
    if metadata.complete:
        amount = f"{math.ceil(held * step) / step:g} MB"
    else:
        amount = f"over {math.floor(held * step) / step:g} MB"
    raise ImageRejected(
        f"This picture carries {what} that would take {amount} of memory to read, beyond "
        f"this app's {MAX_METADATA_BYTES / 1e6:.0f} MB limit for what a picture holds beside "
        f"its pixels; {remedy}"
    )


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
