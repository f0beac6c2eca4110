"""The frame's pixels made into the JPEG SkyReels V1 receives: a mode Pillow resizes well (16-bit
and float greys scaled, not clipped), transparency flattened onto grey, colours brought to sRGB
from the picture's own profile, and a baseline JPEG with no metadata, within the upload budget.

Pixels only: picture.py opens and decodes, framing.py says where the frame falls.
"""

from __future__ import annotations

import io
import logging

from PIL import Image, ImageCms

from skyreels_demo.errors import ImageRejected

log = logging.getLogger(__name__)

CONTENT_TYPE = "image/jpeg"

# Mid grey (#808080) behind transparent parts: neutral, neither a glow nor a hole to animate.
BACKGROUND = (128, 128, 128)

# The model takes 960x544 and turns it into 4:2:0 video; chroma finer than half resolution
# never survives, and quality 90 keeps block artefacts well below what it would animate.
JPEG_QUALITY = 90
JPEG_SUBSAMPLING = "4:2:0"
# Pathological pictures (pure noise) step quality down until they fit a quick upload.
UPLOAD_BUDGET = 300_000
FALLBACK_QUALITIES = (85, 80, 75)


def resizable(image: Image.Image) -> Image.Image:
    """The picture in a mode Pillow resizes well: RGB, L, CMYK, or RGBA/LA if transparent."""
    mode = image.mode
    if mode in ("RGBA", "LA", "CMYK"):
        return image
    if mode in ("RGB", "L", "P", "PA", "1"):
        if image.has_transparency_data:
            # Resizing RGBA premultiplies alpha, so hidden colours never bleed into the edges.
            return image.convert("RGBA")
        return image if mode in ("RGB", "L") else image.convert("L" if mode == "1" else "RGB")
    if mode in ("RGBa", "La"):
        return image.convert(mode.upper())
    if mode.startswith("I") or mode == "F":
        return _eight_bit_grey(image)
    try:
        return image.convert("RGB")  # YCbCr, LAB, HSV
    except ValueError as exc:
        raise ImageRejected(
            f"This picture uses a colour format ({mode}) this app cannot convert; save it "
            "as an ordinary RGB JPEG or PNG and try again."
        ) from exc


def _eight_bit_grey(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float greyscale scaled, not clipped, into 0..255."""
    if image.mode.startswith("I;16"):
        scale, offset = 255 / 65535, 0.0
        image = image.convert("I")
    else:
        low, high = image.getextrema()
        # The file does not say its range, so judge it from the values present.
        if image.mode == "F" and low >= 0 and high <= 1:
            scale, offset = 255.0, 0.0
        elif low >= 0 and high <= 255:
            scale, offset = 1.0, 0.0
        elif low >= 0 and high <= 65535:
            scale, offset = 255 / 65535, 0.0
        elif high > low:
            scale, offset = 255 / (high - low), -low * 255 / (high - low)
        else:
            scale, offset = 0.0, 128.0
    return image.point(lambda value: value * scale + offset).convert("L")


def to_rgb(picture: Image.Image, icc_profile: bytes | None, notes: list[str]) -> Image.Image:
    """Flatten transparency onto grey and bring the colours to sRGB."""
    if picture.mode in ("RGBA", "LA"):
        alpha = picture.getchannel("A")
        opaque_mode = picture.mode[:-1]
        flat = Image.new(opaque_mode, picture.size, BACKGROUND if opaque_mode == "RGB" else 128)
        flat.paste(picture.convert(opaque_mode), mask=alpha)
        if alpha.getextrema()[0] < 255:
            notes.append("Flattened transparency onto grey.")
        picture = flat
    if icc_profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            converted = ImageCms.profileToProfile(
                picture, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
            description = ImageCms.getProfileDescription(source).strip()
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
            # A broken or mismatched profile is common in the wild; plain conversion is fine.
            log.info("Ignoring an unusable colour profile: %r", exc)
        else:
            if "srgb" not in description.lower():
                notes.append(f"Converted colours from {description[:40] or 'its profile'} to sRGB.")
            return converted
    return picture if picture.mode == "RGB" else picture.convert("RGB")


def encode(picture: Image.Image) -> bytes:
    """Baseline JPEG with no metadata at all: no EXIF, ICC, XMP or comment."""
    picture.info = {}  # our own new image; Pillow would copy a comment from here
    for quality in (JPEG_QUALITY, *FALLBACK_QUALITIES):
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=quality, subsampling=JPEG_SUBSAMPLING, optimize=True)
        if buffer.tell() <= UPLOAD_BUDGET:
            break
        log.info("Frame is %d bytes at quality %d; trying lower", buffer.tell(), quality)
    return buffer.getvalue()
