"""What a picture carries beside its pixels: counted before Pillow reads it, refused when absurd.

Text-chunk, colour-profile and EXIF bombs are made here (small files whose metadata Pillow would
inflate or read many times over) and refused with one sentence, in little memory, alone, in a
crowd, and sent at once to a launched shared app; ordinary photos with ordinary metadata still
prepare, and what is near the limit waits its turn in the metadata budget.
"""

from __future__ import annotations

import io
import struct
import threading
import zlib
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageCms, PngImagePlugin

from skyreels_demo import images
from skyreels_demo.images import metadata as image_metadata
from skyreels_demo.errors import ImageRejected
from skyreels_demo.images.limits import MAX_METADATA_BYTES, METADATA_BUDGET_BYTES, check_metadata
from skyreels_demo.models import SKYREELS_V1

from .conftest import LaunchedApp, jpeg_bytes, photo
from .test_image_bombs import (
    MB,
    exif_directory_jpeg,
    png_chunk,
    prepare_in_fresh_process,
    smooth,
    text_chunk_png,
)

ORIENTATION = 0x0112
# Refusing reads the file's headers (and inflates a few MB of text to count it), nothing more.
REFUSED_BOUND = 16 * MB


def prepare(source):
    return images.prepare(source, frames=SKYREELS_V1.frames)


def refusal(source) -> str:
    with pytest.raises(ImageRejected) as refused:
        prepare(source)
    sentence = str(refused.value)
    assert sentence.startswith("This picture carries "), sentence
    assert "save it again without metadata" in sentence and sentence.endswith("and try again."), sentence
    assert sentence.count(". ") == 0  # one sentence
    return sentence


def measured(data: bytes) -> image_metadata.Metadata:
    return image_metadata.measure(io.BytesIO(data), data[:32], stop_at=10**12)


def png_with(chunks: list[bytes], *, after_pixels: bool = False, size: tuple[int, int] = (600, 400)) -> bytes:
    """A PNG with these chunks before its pixel data (or after it, where Pillow reads them last)."""
    buffer = io.BytesIO()
    smooth(*size).save(buffer, "PNG")
    data = buffer.getvalue()
    at = data.index(b"IEND") - 4 if after_pixels else data.index(b"IDAT") - 4
    return data[:at] + b"".join(chunks) + data[at:]


def jpeg_with(segments: list[tuple[int, bytes]]) -> bytes:
    """A JPEG with these (marker, data) segments right after its start."""
    data = jpeg_bytes(smooth(600, 400))
    packed = b"".join(struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body for marker, body in segments)
    return data[:2] + packed + data[2:]


def icc_segments(profile: bytes) -> list[tuple[int, bytes]]:
    """A colour profile as a JPEG carries it: APP2 segments of at most 65,519 bytes."""
    pieces = [profile[at : at + 65_000] for at in range(0, len(profile), 65_000)]
    return [(0xE2, b"ICC_PROFILE\0" + bytes([n + 1, len(pieces)]) + piece) for n, piece in enumerate(pieces)]


def srgb() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def ztxt(key: bytes, text: bytes) -> bytes:
    return png_chunk(b"zTXt", key + b"\0\0" + zlib.compress(text, 9))


# --- refused ---------------------------------------------------------------------------------


def test_text_chunk_bomb_is_refused_in_a_sentence_before_pillow_inflates_it(tmp_path: Path) -> None:
    bomb = tmp_path / "text-chunks.png"
    text_chunk_png(bomb)
    assert bomb.stat().st_size < 100_000
    assert measured(bomb.read_bytes()).text > 60 * MB  # what Pillow would keep
    sentence = refusal(bomb)
    assert sentence.startswith("This picture carries hidden text that would take over ")
    assert f"beyond this app's {MAX_METADATA_BYTES // MB} MB limit" in sentence
    run = prepare_in_fresh_process([bomb])
    assert run.outcomes == [f"refused: {sentence}"]
    assert run.growth < REFUSED_BOUND, f"{run.growth / MB:.0f} MB to refuse"


def test_text_after_the_pixels_counts_as_much_as_before_them() -> None:
    chunks = [ztxt(b"Comment", b"A" * 1_000_000)] * 9
    before, after = measured(png_with(chunks)), measured(png_with(chunks, after_pixels=True))
    assert before.text == after.text > 9_000_000
    assert "hidden text" in refusal(png_with(chunks, after_pixels=True))


def test_one_text_block_past_pillows_own_limit_is_refused_as_metadata_not_damage() -> None:
    # Pillow would raise a ValueError ("Decompressed data too large"), which reads like damage.
    over = PngImagePlugin.MAX_TEXT_CHUNK + 1
    sentence = refusal(png_with([ztxt(b"workflow", b"{" * over)]))
    assert "hidden text in one block that unpacks to over 1 MB of memory" in sentence


def test_huge_icc_profile_is_refused_in_jpeg_png_and_webp() -> None:
    bloated = srgb().ljust(12_000_000, b"\0")
    sentence = refusal(jpeg_with(icc_segments(bloated)))
    assert sentence.startswith("This picture carries a colour profile that would take over ")
    # A PNG's profile is compressed: 12 MB of zeros are 12 kB, and more than Pillow inflates.
    compressed = png_chunk(b"iCCP", b"ICC\0\0" + zlib.compress(bloated, 9))
    assert "a colour profile in one block" in refusal(png_with([compressed]))
    buffer = io.BytesIO()
    smooth(600, 400).save(buffer, "WEBP", icc_profile=bloated)
    assert "a colour profile" in refusal(buffer.getvalue())


def test_huge_exif_is_refused_in_png_and_webp() -> None:
    exif = Image.Exif()
    exif[0x010E] = "x" * 10_000_000  # ImageDescription
    blob = exif.tobytes()
    assert "camera data (EXIF)" in refusal(png_with([png_chunk(b"eXIf", blob)]))
    buffer = io.BytesIO()
    smooth(600, 400).save(buffer, "WEBP", exif=blob)
    assert "camera data (EXIF)" in refusal(buffer.getvalue())


def test_exif_whose_entries_all_name_the_same_bytes_is_counted_as_pillow_reads_it(tmp_path: Path) -> None:
    bomb = tmp_path / "exif-directory.jpg"
    exif_directory_jpeg(bomb)
    assert bomb.stat().st_size < 100_000
    # 5,000 entries read 60 kB each: what Pillow's directory parser allocates as it opens it.
    assert measured(bomb.read_bytes()).exif >= 5_000 * 60_000
    sentence = refusal(bomb)
    assert "camera data (EXIF) that would take over 300 MB of memory to read" in sentence
    run = prepare_in_fresh_process([bomb])
    assert run.outcomes[0].startswith("refused: This picture carries camera data (EXIF)")
    assert run.growth < REFUSED_BOUND, f"{run.growth / MB:.0f} MB to refuse"


def test_jpeg_comments_xmp_and_other_segments_are_counted() -> None:
    xmp = b"http://ns.adobe.com/xap/1.0/\0" + b"<x:xmpmeta/>".ljust(60_000)
    assert measured(jpeg_with([(0xE1, xmp)])).text == 2 * (len(xmp))  # the segment, and its XMP
    assert measured(jpeg_with([(0xFE, b"c" * 60_000)])).text == 60_000
    jfif = measured(jpeg_with([])).other  # Pillow keeps the JFIF segment too
    assert measured(jpeg_with([(0xED, b"Photoshop 3.0\0" + b"8" * 60_000)])).other == jfif + 60_014
    assert "hidden text" in refusal(jpeg_with([(0xFE, b"c" * 65_000)] * 130))


# --- prepared --------------------------------------------------------------------------------


def test_phone_photo_with_its_profile_exif_and_xmp_still_prepares_turned() -> None:
    exif = Image.Exif()
    exif.update({0x010F: "PhoneMaker", 0x0110: "Model X", 0x0132: "2026:12:01 10:00:00", ORIENTATION: 6})
    exif.get_ifd(0x8769).update({0x829A: 1 / 120, 0x8827: 200, 0x9003: "2026:12:01 10:00:00"})
    exif.get_ifd(0x8825).update({1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)})
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'.ljust(4_000)
    data = jpeg_bytes(photo(2400, 1800), exif=exif, icc_profile=srgb(), xmp=xmp, comment=b"holiday")
    metadata = measured(data)
    assert 0 < metadata.held < 50_000 and metadata.icc and metadata.exif and metadata.text
    assert check_metadata(metadata) < METADATA_BUDGET_BYTES
    result = prepare(data)
    assert result.source_size == (1800, 2400)
    assert "Rotated to match the photo's orientation tag." in result.notes
    assert b"Exif" not in result.data and b"ICC_PROFILE" not in result.data  # the frame keeps none


def test_png_with_an_ai_tools_workflow_and_a_profile_still_prepares() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", '{"nodes": [' + ", ".join(['{"id": 1, "type": "KSampler"}'] * 10_000) + "]}")
    info.add_text("prompt", "a lighthouse at dusk, waves, film grain " * 2_000, zip=True)
    buffer = io.BytesIO()
    smooth(1200, 800).save(buffer, "PNG", pnginfo=info, icc_profile=srgb())
    metadata = measured(buffer.getvalue())
    assert 300_000 < metadata.text < 1 * MB and metadata.icc > 0
    result = prepare(buffer.getvalue())
    assert (result.width, result.height) == (960, 544)


def test_pictures_just_under_the_limit_wait_their_turn_in_the_metadata_budget(tmp_path: Path) -> None:
    # 7 MB of text each: twelve at once would keep about 170 MB without the budget, and the
    # budget lets two in at a time (each counted three times over, for Pillow's copies).
    near = png_with([ztxt(f"Comment{n}".encode(), b"A" * 1_000_000) for n in range(7)])
    assert 7 * MB < measured(near).held < MAX_METADATA_BYTES
    paths = []
    for n in range(12):
        paths.append(tmp_path / f"near-{n}.png")
        paths[-1].write_bytes(near)
    run = prepare_in_fresh_process(paths)
    assert all(outcome.startswith("prepared: ") for outcome in run.outcomes), run.outcomes
    assert run.growth < METADATA_BUDGET_BYTES + 24 * MB, f"{run.growth / MB:.0f} MB for twelve at once"


# --- a launched shared app -------------------------------------------------------------------


def variants(bomb: bytes, count: int) -> list[bytes]:
    """The same PNG bomb `count` times, each with a small text chunk of its own, so each upload
    is a file of its own to Gradio's cache."""
    at = bomb.index(b"IDAT") - 4
    return [bomb[:at] + png_chunk(b"tEXt", b"Title\0bomb %d" % n) + bomb[at:] for n in range(count)]


def test_twenty_text_chunk_bombs_at_once_grow_a_shared_app_by_under_500_mb(tmp_path: Path) -> None:
    made = tmp_path / "text-chunks.png"
    text_chunk_png(made)
    bombs = []
    for n, data in enumerate(variants(made.read_bytes(), 21)):
        bombs.append(tmp_path / f"bomb-{n}.png")
        bombs[-1].write_bytes(data)
    env = dict(SKYREELS_SHARED="1", SKYREELS_PREVIEW_TIMING="0.2,0.6", GRADIO_TEMP_DIR=str(tmp_path / "uploads"))
    with LaunchedApp(tmp_path / "data", **env) as app:
        client = Client(app.url, verbose=False)
        # Warm-up: one bomb through the same path, so the baseline is a working app.
        with pytest.raises(AppError, match="hidden text"):
            client.predict("warm-up", handle_file(str(bombs[0])), 1, api_name="/generate")
        baseline = app.peak_memory_kb()

        errors: list[str] = []
        lock = threading.Lock()

        def send(n: int, path: Path) -> None:
            try:
                # Through both API doors that prepare a picture, so more are opened at once than
                # one door lets in (/generate prepares four at a time, variations on the shared
                # pool): before this was counted, the same twenty grew the app by +1,372 MB.
                if n % 2:
                    client.predict("a bomb", handle_file(str(path)), 2, 1, api_name="/generate_variations")
                else:
                    client.predict("a bomb", handle_file(str(path)), 1, api_name="/generate")
            except AppError as exc:
                with lock:
                    errors.append(str(exc))

        senders = [threading.Thread(target=send, args=(n, path)) for n, path in enumerate(bombs[1:])]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=60)
        assert not any(sender.is_alive() for sender in senders)
        grew_mb = (app.peak_memory_kb() - baseline) / 1024
    assert len(errors) == 20 and all("carries hidden text" in error for error in errors), errors
    print(f"peak memory: +{grew_mb:.0f} MB under twenty text-chunk bombs at once")
    # Refused unread, they cost a few MB; +500 MB is the app's bound for any crowd of pictures,
    # with room for the noise of a loaded 2-core machine shared with other work.
    assert grew_mb < 500, f"peak memory grew {grew_mb:.0f} MB"
