"""Where a picture's frame falls: which of the model's frames it becomes, the box of it that is
used (a centred crop, as SkyReels crops, or the whole picture fitted inside), how its EXIF
orientation turns it, libjpeg's reduced decode that still covers the frame, the blurred border
a fitted picture sits on, and the sentences that tell the person what was done.

Geometry only: picture.py opens and decodes, encode.py makes the pixels into the JPEG.
"""

from __future__ import annotations

import math

from PIL import Image, ImageEnhance, ImageFilter

from skyreels_demo.models import Frames, nearest_frame

# libjpeg's 1/2, 1/4 or 1/8 scale decode low-passes each 8x8 block properly, so it may go
# down to the frame itself: against a full-size LANCZOS it differs about as much as BICUBIC
# does (34 dB on sharp lines and text), and it takes a third off a 24-MP photo's time.
JPEG_DRAFT_MARGIN = 1.0

# EXIF orientation -> (sides swapped, oriented x mirrored, oriented y mirrored), as
# ImageOps.exif_transpose turns them; needed to place a reduced-scale decode exactly.
ORIENTATIONS = {
    1: (False, False, False),
    2: (False, True, False),
    3: (False, True, True),
    4: (False, False, True),
    5: (True, False, False),
    6: (True, True, False),
    7: (True, True, True),
    8: (True, False, True),
}


def choose_frame(width: int, height: int, frames: Frames) -> tuple[int, int]:
    """Of the model's native `frames`, the one a picture of this size becomes (models.py)."""
    return nearest_frame(width, height, frames)


def frame_name(frame: tuple[int, int]) -> str:
    """What a person calls a frame of this shape."""
    width, height = frame
    return "square" if width == height else ("landscape" if width > height else "portrait")


def frame_box(
    width: int, height: int, fit: str, frames: Frames
) -> tuple[tuple[int, int], tuple[int, int, int, int], tuple[int, int]]:
    """For an (oriented) picture of this size: its frame, the box of it used, and the size that
    box is resized to (the frame itself for a crop; the whole picture fitted inside for a pad)."""
    frame = choose_frame(width, height, frames)
    if fit == "crop":
        return frame, centred_box(width, height, frame), frame
    return frame, (0, 0, width, height), fitted_size(width, height, frame)


def centred_box(width: int, height: int, frame: tuple[int, int]) -> tuple[int, int, int, int]:
    """The largest box of the frame's aspect in the middle of the picture, as SkyReels crops."""
    frame_w, frame_h = frame
    if width * frame_h > height * frame_w:
        crop_w, crop_h = min(width, round(height * frame_w / frame_h)), height
    else:
        crop_w, crop_h = width, min(height, round(width * frame_h / frame_w))
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return (left, top, left + crop_w, top + crop_h)


def fitted_size(width: int, height: int, frame: tuple[int, int]) -> tuple[int, int]:
    """The whole picture scaled to fit inside the frame."""
    scale = min(frame[0] / width, frame[1] / height)
    return (
        max(1, min(frame[0], round(width * scale))),
        max(1, min(frame[1], round(height * scale))),
    )


def decode_reduced(
    image: Image.Image,
    oriented: tuple[int, int],
    box: tuple[int, int, int, int],
    target: tuple[int, int],
    swapped: bool,
) -> float:
    """Ask libjpeg for a 1/2, 1/4 or 1/8 scale decode that still covers the target; the scale."""
    width, height = oriented
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    # Pillow picks the largest scale keeping the whole image >= the request, so ask for the
    # whole image at the size that leaves the crop at JPEG_DRAFT_MARGIN times the target.
    request = (
        math.ceil(width * target[0] * JPEG_DRAFT_MARGIN / box_w),
        math.ceil(height * target[1] * JPEG_DRAFT_MARGIN / box_h),
    )
    if swapped:
        request = (request[1], request[0])
    raw_w = image.width
    result = image.draft("RGB", request)
    if result is None:
        return 1.0
    return result[1][2] / raw_w


def framing_notes(
    fit: str,
    size: tuple[int, int],
    box: tuple[int, int, int, int],
    target: tuple[int, int],
    frame: tuple[int, int],
) -> list[str]:
    width, height = size
    frame_text = f"{frame[0]}×{frame[1]} ({frame_name(frame)})"
    used_w, used_h = box[2] - box[0], box[3] - box[1]
    notes = []
    if fit == "pad" and target != frame:
        notes.append(f"Fitted the whole picture into {frame_text} on a blurred border.")
    elif (used_w, used_h) == (width, height):
        notes.append(f"Resized to {frame_text}.")
    else:
        notes.append(f"Cropped to {frame_text}, as SkyReels does.")
        kept = used_w * used_h / (width * height)
        if kept < 0.6:
            notes.append(
                f"Only the middle {kept:.0%} of the picture fits this frame; fit the whole "
                "picture instead to keep all of it."
            )
    if used_w < target[0] or used_h < target[1]:
        notes.append(f"Enlarged from {used_w}×{used_h} pixels, so the video may look soft.")
    return notes


def on_blurred_border(picture: Image.Image, frame: tuple[int, int]) -> Image.Image:
    """The picture centred on a blurred, dimmed, enlarged copy of itself filling the frame."""
    cover = centred_box(picture.width, picture.height, frame)
    # Blurring a tiny copy and enlarging it is far cheaper than a wide blur at full size.
    tiny = picture.resize(
        (max(1, frame[0] // 16), max(1, frame[1] // 16)), Image.Resampling.BOX, box=cover
    )
    backdrop = tiny.resize(frame, Image.Resampling.BICUBIC).filter(
        ImageFilter.GaussianBlur(frame[1] / 60)
    )
    backdrop = ImageEnhance.Brightness(backdrop).enhance(0.55)
    backdrop.paste(picture, ((frame[0] - picture.width) // 2, (frame[1] - picture.height) // 2))
    return backdrop
