"""Image bombs: pictures whose decode costs far more memory than their pixel count suggests.

Each bomb is made here, once per session, and prepared in a fresh Python process whose peak
RSS (VmHWM) is read before and after, so what is asserted is what the decode really took,
Pillow's C buffers included (tracemalloc cannot see them).
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from PIL import Image, features

from skyreels_demo.images.limits import MAX_DECODED_BYTES

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000
# A refused bomb is only opened (its header read, a PNG's checksums checked, a WebP or AVIF
# file read into memory), never decoded.
REFUSED_BOUND = 64 * MB
# A prepared one may take the per-picture limit, plus the allocator's slack.
PREPARED_BOUND = MAX_DECODED_BYTES + 40 * MB
# All of them at once, sharing the process-wide budgets.
CROWD_BOUND = 500 * MB


# --- making bombs ----------------------------------------------------------------------------


@cache
def smooth(width: int, height: int) -> Image.Image:
    """A cheap smooth RGB picture: gradients compress small, so huge files stay under 50 MB.

    Made once per size (do not change it in place): five bombs share the 80 MP one.
    """
    radial = Image.radial_gradient("L")
    bands = [
        band.resize((width, height), Image.Resampling.BILINEAR)
        for band in (radial, Image.linear_gradient("L"), Image.linear_gradient("L").rotate(90))
    ]
    return Image.merge("RGB", bands)


def progressive_jpeg(path: Path) -> None:
    smooth(10_000, 8_000).save(path, "JPEG", quality=90, progressive=True, subsampling="4:4:4")


def transparent_png(mode: str):
    def make(path: Path) -> None:
        picture = smooth(10_000, 8_000)
        if mode == "RGB":
            picture.save(path, "PNG", transparency=(0, 0, 0), compress_level=1)
        elif mode == "L":
            picture.convert("L").save(path, "PNG", transparency=0, compress_level=1)
        else:
            palette = picture.quantize(64, method=Image.Quantize.FASTOCTREE)
            palette.save(path, "PNG", transparency=0, compress_level=1)

    return make


def elongated_jpeg(path: Path) -> None:
    smooth(65_500, 1_087).save(path, "JPEG", quality=90)


def animated_webp(path: Path) -> None:
    # Solid frames after the first encode in a blink and still cost a full canvas each.
    first = smooth(5_000, 5_000)
    rest = [Image.new("RGB", first.size, colour) for colour in ("red", "lime", "blue", "white", "black")]
    first.save(path, "WEBP", save_all=True, append_images=rest, quality=50, method=0)


def avif(path: Path) -> None:
    smooth(8_000, 8_000).save(path, "AVIF", speed=10, quality=50)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, checksum."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def text_chunk_png(path: Path) -> None:
    """A 90 kB PNG with 70 zTXt chunks, each 0.9 MiB of one letter: Pillow keeps up to 64 MiB of
    text a picture and inflates them all, twice when the PNG is checked and opened again."""
    text = zlib.compress(b"A" * int(0.9 * 2**20), 9)
    # Each under a key of its own: Pillow keeps one value a key.
    chunks = b"".join(png_chunk(b"zTXt", b"Comment%d\0\0" % n + text) for n in range(70))
    buffer = io.BytesIO()
    smooth(600, 400).save(buffer, "PNG")
    data = buffer.getvalue()
    first_idat = data.index(b"IDAT") - 4
    path.write_bytes(data[:first_idat] + chunks + data[first_idat:])


def exif_directory_jpeg(path: Path) -> None:
    """A 70 kB JPEG whose EXIF directory has 5,000 entries that each name the same 60 kB: Pillow
    reads every entry's data on its own as it opens the picture, 300 MB."""
    head = b"II" + struct.pack("<HI", 42, 8)
    entries = b"".join(struct.pack("<HHII", 0x9000 + tag, 7, 60_000, 8) for tag in range(5_000))
    directory = head + struct.pack("<H", 5_000) + entries + struct.pack("<I", 0)
    smooth(600, 400).save(path, "JPEG", exif=b"Exif\0\0" + directory.ljust(60_008, b"\0"))


def ordinary_photo(path: Path) -> None:
    smooth(6_000, 4_000).save(path, "JPEG", quality=92)


def ordinary_80mp_jpeg(path: Path) -> None:
    smooth(10_000, 8_000).save(path, "JPEG", quality=90)


BOMBS = {
    "progressive 4:4:4 JPEG, 80 MP": ("progressive.jpg", progressive_jpeg),
    "PNG, RGB with tRNS, 80 MP": ("trns-rgb.png", transparent_png("RGB")),
    "PNG, L with tRNS, 80 MP": ("trns-l.png", transparent_png("L")),
    "PNG, P with tRNS, 80 MP": ("trns-p.png", transparent_png("P")),
    "JPEG 65500×1087": ("elongated.jpg", elongated_jpeg),
    "animated WebP, 6 frames of 25 MP": ("animated.webp", animated_webp),
    "AVIF, 64 MP": ("big.avif", avif),
    "PNG, 70 zTXt chunks of 0.9 MiB": ("text-chunks.png", text_chunk_png),
    "JPEG, 5,000 EXIF entries naming one 60 kB": ("exif-directory.jpg", exif_directory_jpeg),
}


def avif_writable() -> bool:
    return features.check("avif") and "AVIF" in Image.SAVE


def make_bombs(folder: Path) -> dict[str, Path]:
    """Every bomb kind this Pillow can write, by name, in `folder`."""
    made = {}
    for name, (filename, make) in BOMBS.items():
        if filename.endswith(".avif") and not avif_writable():
            continue
        make(folder / filename)
        made[name] = folder / filename
    return made


# --- preparing in a fresh process ------------------------------------------------------------

# Prepares each path on its own thread, as the app's workers do, and reports each outcome and
# the growth of the peak RSS over the whole run (VmHWM is the process's own, from exec).
_RUN = r"""
import json, sys, threading
sys.path.insert(0, sys.argv[1])
from skyreels_demo import images
from skyreels_demo.errors import ImageRejected
from skyreels_demo.models import SKYREELS_V1

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

paths, after = json.loads(sys.argv[2]), sys.argv[3]
outcomes = [None] * len(paths)

def run(index):
    try:
        outcomes[index] = "prepared: " + " ".join(images.prepare(paths[index], frames=SKYREELS_V1.frames).notes)
    except ImageRejected as exc:
        outcomes[index] = "refused: " + str(exc)

before = peak_kib()
threads = [threading.Thread(target=run, args=(i,)) for i in range(len(paths))]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
growth = (peak_kib() - before) * 1024
then = "prepared: " + " ".join(images.prepare(after, frames=SKYREELS_V1.frames).notes) if after else ""
print(json.dumps({"outcomes": outcomes, "growth": growth, "after": then}))
"""


@dataclass(frozen=True)
class Run:
    outcomes: list[str]
    growth: int  # bytes the peak RSS grew by while the pictures were prepared
    after: str  # the outcome of the picture prepared once they were done, if any


def prepare_in_fresh_process(
    paths: list[Path], after: Path | None = None, *, root: Path = ROOT, preamble: str = ""
) -> Run:
    """Prepare `paths` at once on threads in a new interpreter, then `after`; what it cost.

    `root` is the tree whose `skyreels_demo` is imported; `preamble` runs first (a guard).
    """
    answer = subprocess.run(
        [sys.executable, "-c", preamble + _RUN, str(root), json.dumps([str(p) for p in paths]), str(after or "")],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(**json.loads(answer.stdout))


# --- tests -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_bombs(tmp_path_factory.mktemp("bombs"))


@pytest.fixture(scope="module")
def ordinary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ordinary")
    made = {"24 MP": folder / "photo-24mp.jpg", "80 MP": folder / "photo-80mp.jpg"}
    ordinary_photo(made["24 MP"])
    ordinary_80mp_jpeg(made["80 MP"])
    return made


@pytest.mark.parametrize("kind", list(BOMBS))
def test_bomb_is_refused_with_a_sentence_or_prepared_within_its_memory(
    kind: str, bombs: dict[str, Path]
) -> None:
    if kind not in bombs:
        pytest.skip("this Pillow cannot write AVIF, so no AVIF bomb can be made here")
    run = prepare_in_fresh_process([bombs[kind]])
    outcome = run.outcomes[0]
    if outcome.startswith("refused: "):
        sentence = outcome.removeprefix("refused: ")
        assert sentence.endswith("try again.") and "MB of memory" in sentence, sentence
        assert run.growth < REFUSED_BOUND, f"{kind}: {run.growth / MB:.0f} MB to refuse"
    else:
        assert outcome.startswith("prepared: ")
        assert run.growth < PREPARED_BOUND, f"{kind}: {run.growth / MB:.0f} MB to prepare"


def test_progressive_jpeg_is_refused_saying_to_save_it_as_baseline(bombs: dict[str, Path]) -> None:
    outcome = prepare_in_fresh_process([bombs["progressive 4:4:4 JPEG, 80 MP"]]).outcomes[0]
    assert outcome.startswith("refused: This progressive JPEG (10000×8000)")
    assert "baseline" in outcome


def test_elongated_jpeg_is_counted_at_full_size_and_prepared(bombs: dict[str, Path]) -> None:
    # libjpeg's draft cannot shrink it: its short side is already the frame's.
    with Image.open(bombs["JPEG 65500×1087"]) as image:
        assert image.draft("RGB", (32_784, 544))[1][2:] == (65_500, 1_087)
    run = prepare_in_fresh_process([bombs["JPEG 65500×1087"]])
    assert run.outcomes[0].startswith("prepared: Cropped to 960×544")
    assert 200 * MB < run.growth < PREPARED_BOUND


def test_every_bomb_at_once_stays_under_500_mb_and_a_photo_prepares_after(
    bombs: dict[str, Path], ordinary: dict[str, Path]
) -> None:
    run = prepare_in_fresh_process(list(bombs.values()), after=ordinary["24 MP"])
    assert all(o.startswith(("refused: ", "prepared: ")) for o in run.outcomes), run.outcomes
    assert run.growth < CROWD_BOUND, f"{run.growth / MB:.0f} MB for {len(bombs)} bombs at once"
    assert run.after.startswith("prepared: Cropped to 960×544")


def test_ordinary_photos_still_prepare_in_little_memory(ordinary: dict[str, Path]) -> None:
    run = prepare_in_fresh_process([ordinary["24 MP"], ordinary["80 MP"]])
    assert all(outcome.startswith("prepared: ") for outcome in run.outcomes), run.outcomes
    # Both are baseline JPEGs, drafted to 1/4 and 1/8 scale.
    assert run.growth < 64 * MB
