"""images.prepare: whatever people drop in becomes a SkyReels frame, or one clear refusal.

Every input is made here (numpy noise and gradients, so JPEG sizes are realistic); nothing is
downloaded.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops, ImageCms, ImageOps, features

from skyreels_demo import images
from skyreels_demo.errors import BadInput, ImageRejected
from skyreels_demo.images import MAX_BYTES, MAX_MEGAPIXELS, MIN_SIDE, PreparedImage, is_remote_url
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.studio.run_request import RunRequest

LANDSCAPE, PORTRAIT, SQUARE = SKYREELS_V1.frames


def prepare(source, **options) -> PreparedImage:
    """The studio's preparation, for SkyReels V1's frames."""
    return images.prepare(source, frames=SKYREELS_V1.frames, **options)


UPLOAD_LIMIT = 300_000
ORIENTATION = 0x0112
GREY = (128, 128, 128)


# --- making pictures ---------------------------------------------------------------------------


@cache
def _photo(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    smooth = Image.Resampling.BICUBIC
    light = Image.fromarray(rng.integers(40, 216, (3, 4, 3), dtype=np.uint8)).resize(
        (width, height), smooth
    )
    texture = rng.normal(128, 22, (height // 24 + 2, width // 24 + 2, 3))
    texture_image = Image.fromarray(texture.clip(0, 255).astype(np.uint8)).resize(
        (width, height), smooth
    )
    # A tile of sensor-like grain, repeated: as costly to compress as fresh noise, far quicker.
    tile = rng.normal(128, 3, (256, 256)).clip(0, 255).astype(np.uint8)
    grain = np.tile(tile, (height // 256 + 1, width // 256 + 1))[:height, :width]
    grain_image = Image.fromarray(grain)
    picture = ImageChops.add(light, texture_image, offset=-128)
    return ImageChops.add(picture, Image.merge("RGB", [grain_image] * 3), offset=-128)


def photo(width: int = 1600, height: int = 1200, seed: int = 0) -> Image.Image:
    """A photo-like picture: smooth light, mid-scale texture and fine grain."""
    return _photo(width, height, seed).copy()


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def jpeg(image: Image.Image, **params: object) -> bytes:
    return encode(image, "JPEG", quality=92, **params)


def with_orientation(image: Image.Image, orientation: int, **params: object) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return jpeg(image, exif=exif, **params)


def halves(width: int, height: int, top: tuple, bottom: tuple) -> Image.Image:
    picture = Image.new("RGB", (width, height), bottom)
    picture.paste(top, (0, 0, width, height // 2))
    return picture


def png_claiming(width: int, height: int) -> bytes:
    """A tiny real PNG whose header is rewritten to claim another size (CRC kept valid)."""
    data = bytearray(encode(Image.new("1", (8, 8)), "PNG"))
    start = data.index(b"IHDR")
    data[start + 4 : start + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[start : start + 17]))
    data[start + 17 : start + 21] = struct.pack(">I", crc)
    return bytes(data)


def grey_ramp(mode: str) -> Image.Image:
    """A left-to-right ramp over the full range of a 16-bit or float greyscale mode."""
    top = 65535 if mode == "I;16" else 1.0
    ramp = np.tile(np.linspace(0, top, 1200), (900, 1))
    return Image.fromarray(ramp.astype(np.uint16 if mode == "I;16" else np.float32))


def palette_with_hole() -> bytes:
    picture = photo(1200, 900).quantize(64)
    picture.paste(0, (0, 0, 600, 900))  # left half: palette index 0 ...
    picture.info["transparency"] = 0  # ... which is transparent
    return encode(picture, "PNG")


def rgba_with_hole(mode: str = "RGBA") -> bytes:
    picture = photo(1200, 900).convert(mode)
    alpha = Image.new("L", picture.size, 255)
    alpha.paste(0, (0, 0, 600, 900))
    picture.putalpha(alpha)
    return encode(picture, "PNG")


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (800, 600), colour) for colour in ("red", "lime", "blue")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def multipage_tiff() -> bytes:
    pages = [photo(1200, 900), Image.new("RGB", (1200, 900), "blue")]
    return encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def mpo() -> bytes:
    return encode(photo(1600, 1200), "MPO", save_all=True, append_images=[photo(800, 600, 1)])


def flipped(data: bytes, at_byte: int, count: int) -> bytes:
    """`data` with `count` bytes inverted from `at_byte`: damage in the middle of a file."""
    damaged = bytes(byte ^ 0xFF for byte in data[at_byte : at_byte + count])
    return data[:at_byte] + damaged + data[at_byte + count :]


def heic_header() -> bytes:
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)


# Cases are made when their test runs, not when the module is collected.


def at(name: str, make: Callable[[], bytes]) -> Callable[[Path], Path]:
    """Write the made bytes under `name` and hand over the path, as a dropped file arrives."""

    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(make())
        return path

    return write


def given(make: Callable[[], object]) -> Callable[[Path], object]:
    """Hand over the made bytes, image or string as it is."""
    return lambda folder: make()


# --- the corpus ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    frame: tuple[int, int]
    source_format: str
    note: str | None = None  # a note that must be among the result's notes
    check: Callable[[PreparedImage, Image.Image], None] | None = None


@dataclass(frozen=True)
class Refused:
    says: str  # a regular expression the sentence must match


def grey_at(x: int, y: int) -> Callable[[PreparedImage, Image.Image], None]:
    def check(result: PreparedImage, frame: Image.Image) -> None:
        assert all(abs(c - g) <= 4 for c, g in zip(frame.getpixel((x, y)), GREY, strict=True))

    return check


def ramp_not_clipped(result: PreparedImage, frame: Image.Image) -> None:
    left, right = frame.getpixel((5, 270)), frame.getpixel((frame.width - 6, 270))
    assert left[0] < 40 and right[0] > 215  # the full range, scaled, not clipped to white
    assert 100 < np.asarray(frame).mean() < 156


def first_frame_is_red(result: PreparedImage, frame: Image.Image) -> None:
    red, green, blue = frame.getpixel((360, 360))
    assert red > 200 and green < 40 and blue < 40


def right_side_is_red(result: PreparedImage, frame: Image.Image) -> None:
    # Stored: red top half, blue bottom; Orientation 6 turns the top to the right.
    assert frame.getpixel((frame.width - 20, 480))[0] > 200
    assert frame.getpixel((20, 480))[2] > 200


def colours_match_rgb(result: PreparedImage, frame: Image.Image) -> None:
    reference = prepare(jpeg(photo())).to_pil()
    difference = np.abs(np.asarray(frame, float) - np.asarray(reference, float)).mean()
    assert difference < 8


FLATTENED = "Flattened transparency onto grey."
NOT_A_PICTURE = r"^This file is not a picture this app can read, whatever its name says"
CUT_OFF = r"^This picture is cut off: the file ends before the image does"
DAMAGED = r"^This picture's data is damaged and cannot be decoded"


def case(name: str, make: Callable[[Path], object], expected: Prepared | Refused) -> object:
    return pytest.param(make, expected, id=name)


CORPUS = [
    # --- prepared ---
    case("jpeg-photo-4x3", given(lambda: jpeg(photo())), Prepared(LANDSCAPE, "JPEG")),
    case("jpeg-portrait", given(lambda: jpeg(photo(1200, 1600))), Prepared(PORTRAIT, "JPEG")),
    case("jpeg-near-square", given(lambda: jpeg(photo(1000, 900))), Prepared(SQUARE, "JPEG")),
    case(
        "jpeg-progressive",
        given(lambda: jpeg(photo(), progressive=True)),
        Prepared(LANDSCAPE, "JPEG"),
    ),
    case(
        "png-named-jpg-accepted",
        at("photo.jpg", lambda: encode(photo(), "PNG")),
        Prepared(LANDSCAPE, "PNG"),
    ),
    case(
        "cmyk-jpeg",
        given(lambda: jpeg(photo().convert("CMYK"))),
        Prepared(LANDSCAPE, "JPEG", check=colours_match_rgb),
    ),
    case(
        "png-16-bit-grey",
        given(lambda: encode(grey_ramp("I;16"), "PNG")),
        Prepared(LANDSCAPE, "PNG", check=ramp_not_clipped),
    ),
    case(
        "tiff-16-bit-grey",
        given(lambda: encode(grey_ramp("I;16"), "TIFF")),
        Prepared(LANDSCAPE, "TIFF", check=ramp_not_clipped),
    ),
    case(
        "tiff-float-grey",
        given(lambda: encode(grey_ramp("F"), "TIFF")),
        Prepared(LANDSCAPE, "TIFF", check=ramp_not_clipped),
    ),
    case(
        "palette-png-with-transparency",
        given(palette_with_hole),
        Prepared(LANDSCAPE, "PNG", FLATTENED, grey_at(100, 360)),
    ),
    case(
        "rgba-png",
        given(rgba_with_hole),
        Prepared(LANDSCAPE, "PNG", FLATTENED, grey_at(100, 360)),
    ),
    case(
        "greyscale-alpha-png",
        given(lambda: rgba_with_hole("LA")),
        Prepared(LANDSCAPE, "PNG", FLATTENED, grey_at(100, 360)),
    ),
    case("grey-jpeg", given(lambda: jpeg(photo().convert("L"))), Prepared(LANDSCAPE, "JPEG")),
    case(
        "bilevel-png",
        given(lambda: encode(photo().convert("1"), "PNG")),
        Prepared(LANDSCAPE, "PNG"),
    ),
    case(
        "animated-gif-first-frame",
        given(animated_gif),
        Prepared(
            LANDSCAPE, "GIF", "Used the first frame of an animated image.", first_frame_is_red
        ),
    ),
    case(
        "multi-page-tiff",
        given(multipage_tiff),
        Prepared(LANDSCAPE, "TIFF", "Used the first page of a multi-page image."),
    ),
    case("phone-mpo-not-called-animated", given(mpo), Prepared(LANDSCAPE, "MPO")),
    case("webp", given(lambda: encode(photo(), "WEBP", quality=90)), Prepared(LANDSCAPE, "WEBP")),
    case("bmp", given(lambda: encode(photo(), "BMP")), Prepared(LANDSCAPE, "BMP")),
    case(
        "exif-rotated-portrait",
        given(lambda: with_orientation(halves(1600, 1200, "red", "blue"), 6)),
        Prepared(
            PORTRAIT, "JPEG", "Rotated to match the photo's orientation tag.", right_side_is_red
        ),
    ),
    case(
        "panorama-12000x2000",
        given(lambda: jpeg(photo(12000, 2000))),
        Prepared(LANDSCAPE, "JPEG", "Cropped to 960×544 (landscape), as SkyReels does."),
    ),
    case(
        "small-but-usable",
        given(lambda: jpeg(photo(300, 280))),
        Prepared(SQUARE, "JPEG", "Enlarged from 280×280 pixels, so the video may look soft."),
    ),
    case("pillow-image-in-memory", given(photo), Prepared(LANDSCAPE, "PIL")),
    # --- refused, each with its own sentence ---
    case(
        "text-file",
        at("notes.txt", lambda: b"Shopping list: eggs, milk\n" * 40),
        Refused(NOT_A_PICTURE),
    ),
    case(
        "text-named-photo-jpg",
        at("photo.jpg", lambda: b"<html><body>Not found</body></html>\n"),
        Refused(NOT_A_PICTURE),
    ),
    case("zero-bytes", at("empty.jpg", lambda: b""), Refused(r"^This file is empty \(0 bytes\)")),
    case("truncated-jpeg", given(lambda: jpeg(photo())[:60_000]), Refused(CUT_OFF)),
    case("truncated-png", given(lambda: encode(photo(), "PNG")[:300_000]), Refused(CUT_OFF)),
    case(
        "jpeg-signature-then-garbage",
        given(lambda: b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8),
        Refused(DAMAGED),
    ),
    case(
        "corrupt-png",
        given(lambda: flipped(encode(photo(), "PNG"), at_byte=40_000, count=200)),
        Refused(DAMAGED),
    ),
    case(
        "decompression-bomb-png",
        given(lambda: png_claiming(20000, 20000)),
        Refused(r"^This file claims to hold .+ in a file of \d+ bytes, which is how decompression"),
    ),
    case(
        "over-megapixel-limit",
        given(lambda: png_claiming(9000, 9200)),
        Refused(rf"^This picture is 82\.8 megapixels \(9000×9200\), over the {MAX_MEGAPIXELS} "),
    ),
    case(
        "too-small",
        given(lambda: jpeg(photo(200, 150))),
        Refused(rf"^This picture is only 200×150 pixels; SkyReels needs at least {MIN_SIDE} "),
    ),
    case(
        "thin-strip-too-small",
        given(lambda: jpeg(photo(4000, 200))),
        Refused(r"^This picture is only 4000×200 pixels"),
    ),
    case(
        "too-many-bytes",
        given(lambda: b"\xff\xd8\xff" + bytes(MAX_BYTES)),
        Refused(r"^This file is 50\.1 MB, over the 50 MB limit"),
    ),
    case("iphone-heic", given(heic_header), Refused(r"^This is a HEIC/HEIF photo")),
    case(
        "missing-file",
        lambda folder: folder / "gone.jpg",
        Refused(r"^There is no file at .*gone\.jpg"),
    ),
    case("folder", lambda folder: folder, Refused(r" is a folder, not a picture")),
    case(
        "web-address",
        given(lambda: "https://example.com/cat.jpg"),
        Refused(r"^This is a web address, not a file"),
    ),
]


def jpeg_markers(data: bytes) -> list[int]:
    """The marker codes of a JPEG's header segments, up to the start of the scan."""
    assert data[:2] == b"\xff\xd8"
    markers, at_byte = [], 2
    while True:
        marker = data[at_byte + 1]
        markers.append(marker)
        if marker == 0xDA:
            return markers
        (length,) = struct.unpack(">H", data[at_byte + 2 : at_byte + 4])
        at_byte += 2 + length


def assert_clean_frame(result: PreparedImage, frame: tuple[int, int]) -> Image.Image:
    """The upload is a small metadata-free baseline RGB JPEG of exactly the model's frame."""
    assert (result.width, result.height) == frame
    assert result.content_type == "image/jpeg"
    assert len(result.data) < UPLOAD_LIMIT
    markers = jpeg_markers(result.data)
    assert not set(markers) & {*range(0xE1, 0xF0), 0xFE}  # no EXIF/XMP, ICC, ..., comment
    decoded = result.to_pil()
    assert decoded.format == "JPEG" and decoded.mode == "RGB" and decoded.size == frame
    assert not decoded.getexif() and "icc_profile" not in decoded.info
    return decoded


@pytest.mark.parametrize(("make", "expected"), CORPUS)
def test_dropped_file_is_prepared_or_refused_with_its_own_sentence(
    make: Callable[[Path], object], expected: Prepared | Refused, tmp_path: Path
) -> None:
    source = make(tmp_path)
    if isinstance(expected, Refused):
        with pytest.raises(ImageRejected) as refused:
            prepare(source)
        sentence = str(refused.value)
        assert re.search(expected.says, sentence), sentence
        assert sentence.count(". ") == 0 and sentence.endswith(".")  # one sentence
        assert isinstance(refused.value, BadInput) and refused.value.exit_code == 2
        return
    result = prepare(source)
    decoded = assert_clean_frame(result, expected.frame)
    assert result.source_format == expected.source_format
    assert result.notes and all(note.endswith(".") for note in result.notes)
    if expected.note:
        assert expected.note in result.notes
    else:
        assert not any("first" in note for note in result.notes)
    if expected.check:
        expected.check(result, decoded)


# --- orientation and framing -------------------------------------------------------------------


def test_exif_rotated_phone_photo_becomes_portrait() -> None:
    result = prepare(with_orientation(photo(1600, 1200), 6))
    assert (result.width, result.height) == PORTRAIT
    assert result.source_size == (1200, 1600)
    assert result.crop_box == (146, 0, 1053, 1600)
    assert "Rotated to match the photo's orientation tag." in result.notes


def test_panorama_is_cropped_to_its_middle() -> None:
    result = prepare(jpeg(photo(12000, 2000)))
    assert result.crop_box == (4235, 0, 7764, 2000)
    assert any(note.startswith("Only the middle 29%") for note in result.notes)


def fine_detail(width: int, height: int, seed: int = 5) -> Image.Image:
    """Strong texture about 8 px across: any misplacement or blur in framing shows at once."""
    rng = np.random.default_rng(seed)
    cells = rng.normal(128, 40, (height // 8 + 2, width // 8 + 2, 3)).clip(0, 255)
    texture = Image.fromarray(cells.astype(np.uint8))
    return texture.resize((width + 16, height + 16), Image.Resampling.BICUBIC).crop(
        (0, 0, width, height)
    )


def difference_from_full_decode(data: bytes) -> float:
    """Mean pixel difference between prepare's frame and a full-size decode, turned by EXIF,
    LANCZOS-resized from the same crop box and encoded the same way."""
    result = prepare(data)
    with Image.open(io.BytesIO(data)) as opened:
        oriented = ImageOps.exif_transpose(opened)
    frame = (result.width, result.height)
    reference = oriented.resize(frame, Image.Resampling.LANCZOS, box=result.crop_box)
    encoded = encode(reference, "JPEG", quality=images.JPEG_QUALITY, subsampling="4:2:0")
    with Image.open(io.BytesIO(encoded)) as expected:
        difference = np.asarray(result.to_pil(), float) - np.asarray(expected, float)
    return float(np.abs(difference).mean())


@pytest.mark.parametrize("orientation", range(1, 9), ids=lambda o: f"orientation-{o}")
def test_reduced_jpeg_decode_frames_exactly_like_a_full_decode(orientation: int) -> None:
    # Odd sizes leave a partial pixel at the edge of the reduced decode; mirrors move it.
    data = with_orientation(fine_detail(4003, 3001), orientation)
    # Measured: 2.8 when placed exactly; 5.7 to 12.4 if a mirror's offset is ignored.
    assert difference_from_full_decode(data) < 3.5
    with Image.open(io.BytesIO(data)) as opened:
        full = prepare(opened)  # a caller's image is never reduced, so this decodes it all
    assert prepare(data).crop_box == full.crop_box


@pytest.mark.parametrize(
    ("width", "height", "orientation"),
    [(3840, 2176, 1), (3839, 2175, 1), (2176, 3840, 6), (2175, 3839, 8)],
    ids=lambda v: str(v),
)
def test_reduced_jpeg_decode_never_drops_below_the_frame(
    width: int, height: int, orientation: int
) -> None:
    # At exactly 4x the frame libjpeg may decode at 1/4; one pixel less must stop it at 1/2.
    data = with_orientation(fine_detail(width, height), orientation)
    # Measured: 2.3 to 2.8; decoding the 3840x2176 one at 1/8 instead of 1/4 gives 6.3.
    assert difference_from_full_decode(data) < 3.5


@pytest.mark.parametrize("orientation", [0, 9, 255])
def test_meaningless_orientation_tag_is_ignored(orientation: int) -> None:
    result = prepare(with_orientation(photo(1600, 1200), orientation))
    assert (result.width, result.height) == LANDSCAPE
    assert not any("Rotated" in note for note in result.notes)


def test_pad_keeps_the_whole_picture() -> None:
    picture = photo(1600, 1200)
    picture.paste("red", (0, 0, 40, 1200))  # marks on the left and right edges,
    picture.paste("blue", (1560, 0, 1600, 1200))  # which cropping would keep too
    picture.paste("lime", (0, 0, 1600, 40))  # and top and bottom, which it would cut
    picture.paste("lime", (0, 1160, 1600, 1200))
    cropped = prepare(jpeg(picture))
    padded = prepare(jpeg(picture), fit="pad")
    frame = assert_clean_frame(padded, LANDSCAPE)
    assert padded.fit == "pad" and padded.crop_box == (0, 0, 1600, 1200)
    assert "Fitted the whole picture into 960×544 (landscape) on a blurred border." in padded.notes
    # 1600x1200 fits as 725x544, centred: picture from x=117 to x=842.
    assert frame.getpixel((480, 5))[1] > 200  # top band kept
    assert frame.getpixel((480, 538))[1] > 200  # bottom band kept
    assert frame.getpixel((122, 272))[0] > 200  # left mark just inside the picture
    assert frame.getpixel((837, 272))[2] > 200  # right mark
    border = np.asarray(frame)[:, :100].mean()
    assert border < np.asarray(frame)[:, 200:760].mean()  # the border is dimmed
    assert cropped.to_pil().getpixel((480, 5))[1] < 200  # while cropping cut the bands away


def test_pad_of_a_picture_already_at_the_frame_aspect_has_no_border() -> None:
    result = prepare(jpeg(photo(1920, 1088)), fit="pad")
    assert result.notes == ("Resized to 960×544 (landscape).",)


# --- what is sent -------------------------------------------------------------------------------


def test_same_picture_gives_the_same_bytes_whichever_way_it_arrives(tmp_path: Path) -> None:
    data = jpeg(photo())
    path = tmp_path / "same.jpg"
    path.write_bytes(data)
    results = [prepare(data), prepare(data), prepare(path), prepare(str(path))]
    assert len({result.sha256 for result in results}) == 1
    assert results[0].filename == f"frame-{results[0].sha256[:12]}.jpg"
    assert results[0].sha256 == hashlib.sha256(results[0].data).hexdigest()


def test_location_and_camera_serials_are_stripped() -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model X"  # Model
    exif.get_ifd(0x8769)[0xA431] = "SERIAL-1234567"  # BodySerialNumber
    exif.get_ifd(0x8825).update({1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)})
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/>SECRET-XMP</x:xmpmeta>'
    data = jpeg(photo(), exif=exif, icc_profile=srgb, xmp=xmp, comment=b"SECRET-COMMENT")
    assert b"SERIAL-1234567" in data and b"SECRET-XMP" in data

    result = prepare(data)
    assert_clean_frame(result, LANDSCAPE)
    for secret in (b"SERIAL", b"PhoneMaker", b"SECRET", b"Exif", b"ICC_PROFILE", b"http://ns"):
        assert secret not in result.data


def test_broken_colour_profile_is_ignored_not_refused() -> None:
    result = prepare(jpeg(photo(), icc_profile=b"not a profile" * 20))
    assert_clean_frame(result, LANDSCAPE)


def test_srgb_profile_keeps_colours_without_a_note() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged, plain = prepare(jpeg(photo(), icc_profile=srgb)), prepare(jpeg(photo()))
    assert tagged.notes == plain.notes
    difference = np.abs(np.asarray(tagged.to_pil(), float) - np.asarray(plain.to_pil(), float))
    assert difference.mean() < 1.5


def test_pure_noise_still_fits_the_upload_budget() -> None:
    noise = np.random.default_rng(3).integers(0, 256, (1088, 1920, 3), dtype=np.uint8)
    result = prepare(encode(Image.fromarray(noise), "PNG"))
    assert len(result.data) <= images.UPLOAD_BUDGET


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
def test_avif_is_accepted() -> None:
    result = prepare(encode(photo(), "AVIF", quality=80))
    assert_clean_frame(result, LANDSCAPE)


# --- limits and Pillow's global bomb setting ---------------------------------------------------


def test_bomb_is_refused_even_when_pillows_own_limit_is_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(ImageRejected, match="decompression bombs"):
        prepare(png_claiming(20000, 20000))
    with pytest.raises(ImageRejected, match="megapixel limit"):
        prepare(png_claiming(9000, 9200))


def test_pillows_own_bomb_error_becomes_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # someone set a stricter limit
    with pytest.raises(ImageRejected, match="decompression bombs"):
        prepare(jpeg(photo()))  # 1.9 MP > 2 x 0.1 MP: Pillow raises while opening


def test_pillows_bomb_warning_becomes_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)
    with (
        pytest.warns(Image.DecompressionBombWarning),
        pytest.raises(ImageRejected, match=r"over the 1 megapixel limit"),
    ):
        prepare(jpeg(photo()))  # 1.9 MP: Pillow only warns; the warning is not enough


def test_raising_pillows_limit_does_not_raise_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10**12)
    with pytest.raises(ImageRejected, match=f"over the {MAX_MEGAPIXELS} megapixel limit"):
        prepare(png_claiming(9000, 9200))


def test_limits_are_named() -> None:
    assert MAX_BYTES == 50_000_000 and MAX_MEGAPIXELS == 80 and MIN_SIDE == 256


# --- the caller's side -------------------------------------------------------------------------


def test_callers_image_is_left_as_it_was() -> None:
    data = with_orientation(photo(1600, 1200), 6)
    with Image.open(io.BytesIO(data)) as image:
        result = prepare(image)
        assert image.size == (1600, 1200) and image.mode == "RGB"
        assert image.getexif()[ORIENTATION] == 6
    assert (result.width, result.height) == PORTRAIT


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_callers_truncated_image_is_refused_too(fmt: str) -> None:
    data = encode(photo(), fmt)
    with (
        Image.open(io.BytesIO(data[: len(data) // 3])) as image,
        pytest.raises(ImageRejected, match=CUT_OFF),
    ):
        prepare(image)


def test_prepare_is_safe_from_many_threads() -> None:
    sources = [jpeg(photo(2400, 1800, seed)) for seed in range(3)]
    sources += [with_orientation(photo(2400, 1800, 3), 8), encode(photo(1200, 1500, 4), "PNG")]
    alone = [prepare(source).sha256 for source in sources]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda s: prepare(s).sha256, sources * 4))
    assert together == alone * 4


def test_unknown_fit_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="fit must be one of"):
        prepare(jpeg(photo()), fit="stretch")


def test_unsupported_argument_type_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        prepare(12345)  # type: ignore[arg-type]


def test_prepared_image_is_frozen_and_short_to_print() -> None:
    result = prepare(jpeg(photo()))
    with pytest.raises(AttributeError):
        result.width = 1  # type: ignore[misc]
    assert "data=" not in repr(result) and len(repr(result)) < 600


@pytest.mark.parametrize(
    ("value", "remote"),
    [
        ("https://example.com/cat.jpg", True),
        ("HTTP://example.com/cat.jpg", True),
        ("  https://example.com/a.png  ", True),
        ("http://", False),
        ("ftp://example.com/cat.jpg", False),
        ("/home/me/cat.jpg", False),
        ("C:\\Users\\me\\cat.jpg", False),
        ("cat.jpg", False),
        (Path("https:/example.com"), False),
        (b"https://example.com/cat.jpg", False),
        (None, False),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_is_remote_url(value: object, remote: bool) -> None:
    assert is_remote_url(value) is remote


# --- refused before money is spent -------------------------------------------------------------

# A web address is the one refusal `prepare` makes that a run does not: a run passes it on.
REFUSED = [p for p in CORPUS if isinstance(p.values[1], Refused) and p.id != "web-address"]


@pytest.mark.parametrize(("make", "expected"), REFUSED)
def test_refused_picture_sends_nothing_to_the_api(make, expected, tmp_path, backend) -> None:
    from skyreels_demo.studio.studio import Studio

    from .conftest import settings_for

    source = make(tmp_path)
    studio = Studio(settings_for(backend, tmp_path / "data"), SKYREELS_V1)
    try:
        with pytest.raises(ImageRejected, match=expected.says):
            list(studio.generate(RunRequest("a woman smiles at the camera", source, 7)))
    finally:
        studio.close()
    assert sum(backend.counts.values()) == 0
    assert studio.store.recent() == []  # not even a run: nothing was started
