"""How fast and how small `images.prepare` is on big photos, beside a naive baseline.

Run from the repository: `python bench/bench_images.py` (about two minutes on two cores).
It makes its own 12, 24 and 48 megapixel 4:3 inputs, as JPEG and as PNG, times `prepare`
and the naive way (open, let Pillow's decoder scale down with draft() as Image.thumbnail
does, convert("RGB"), one LANCZOS resize to the frame, JPEG quality 95) in the same run, measures peak memory of each in a fresh process, and prints a
markdown table and whether each target is met.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_app import loopback_only  # noqa: E402
from skyreels_demo.images import choose_frame, prepare  # noqa: E402
from skyreels_demo.models import SKYREELS_V1  # noqa: E402

SIZES = {12: (4000, 3000), 24: (5664, 4248), 48: (8000, 6000)}
FORMATS = ("JPEG", "PNG")
RUNS = 5
TARGET_24MP_MS = 250
TARGET_SPEEDUP = 3.0
TARGET_UPLOAD = 300_000
TARGET_SHRINK = 20.0


def photo_like(width: int, height: int, *, grain: float, seed: int = 0) -> Image.Image:
    """Smooth light, mid-scale texture and (optionally) fine grain, like a photo."""
    rng = np.random.default_rng(seed)
    smooth = Image.Resampling.BICUBIC
    light = Image.fromarray(rng.integers(40, 216, (3, 4, 3), dtype=np.uint8))
    texture = rng.normal(128, 22, (height // 24 + 2, width // 24 + 2, 3)).clip(0, 255)
    picture = ImageChops.add(
        light.resize((width, height), smooth),
        Image.fromarray(texture.astype(np.uint8)).resize((width, height), smooth),
        offset=-128,
    )
    if grain:
        # A 512-px tile of grain, repeated: as costly for JPEG as fresh noise, far quicker.
        tile = rng.normal(128, grain, (512, 512)).clip(0, 255).astype(np.uint8)
        rows, cols = height // 512 + 1, width // 512 + 1
        plane = Image.fromarray(np.tile(tile, (rows, cols))[:height, :width])
        picture = ImageChops.add(picture, Image.merge("RGB", [plane] * 3), offset=-128)
    return picture


def make_inputs(folder: Path, sizes: list[int]) -> list[Path]:
    paths = []
    for megapixels, (width, height) in SIZES.items():
        if megapixels not in sizes:
            continue
        for fmt in FORMATS:
            path = folder / f"photo-{megapixels}mp.{fmt.lower()}"
            if fmt == "JPEG":
                photo_like(width, height, grain=3.0).save(path, "JPEG", quality=92)
            else:
                # Without grain: a grainy 48-MP PNG is ~70 MB, over prepare's 50 MB limit.
                photo_like(width, height, grain=0.0).save(path, "PNG")
            paths.append(path)
    return paths


# Image.thumbnail's default: the decoder may scale down to no less than twice the target.
THUMBNAIL_REDUCING_GAP = 2.0


def naive(path: Path) -> bytes:
    """What one would write first with Pillow's own fast path: draft() as Image.thumbnail calls
    it (JPEG decodes at 1/2, 1/4 or 1/8 scale; PNG ignores it), then one LANCZOS resize."""
    with Image.open(path) as image:
        frame = choose_frame(*image.size, SKYREELS_V1.frames)
        gap = THUMBNAIL_REDUCING_GAP
        drafted = image.draft(None, (int(frame[0] * gap), int(frame[1] * gap)))
        box = drafted[1] if drafted is not None else None
        small = image.convert("RGB").resize(frame, Image.Resampling.LANCZOS, box=box, reducing_gap=gap)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def ours(path: Path) -> bytes:
    return prepare(path, frames=SKYREELS_V1.frames).data


METHODS: dict[str, Callable[[Path], bytes]] = {"ours": ours, "naive": naive}


def median_seconds(path: Path) -> dict[str, tuple[float, int]]:
    """Median time and uploaded bytes per method; runs alternate so both see the same load."""
    uploaded = {name: len(method(path)) for name, method in METHODS.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in METHODS}
    for _ in range(RUNS):
        for name, method in METHODS.items():
            start = time.perf_counter()
            method(path)
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), uploaded[name]) for name in METHODS}


def peak_memory_mb(method: str, path: Path) -> float:
    """Growth of the RSS high-water mark for one call, in a fresh process."""
    answer = subprocess.run(
        [sys.executable, __file__, "--peak", method, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(answer.stdout)["peak_kib"] / 1024


def rss_peak_kib() -> int:
    """This process's RSS high-water mark.

    VmHWM belongs to the process's own memory map, which exec starts afresh; ru_maxrss can
    still carry the parent's peak after fork and exec, which hides a smaller child's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_peak(method: str, path: Path) -> None:
    before = rss_peak_kib()
    METHODS[method](path)
    print(json.dumps({"peak_kib": rss_peak_kib() - before}))


@dataclass(frozen=True)
class Row:
    name: str
    file_size: int
    ours_s: float
    naive_s: float
    ours_peak_mb: float
    naive_peak_mb: float
    uploaded: int
    naive_uploaded: int

    @property
    def speedup(self) -> float:
        return self.naive_s / self.ours_s

    @property
    def shrink(self) -> float:
        return self.file_size / self.uploaded


def measure(path: Path) -> Row:
    timings = median_seconds(path)
    (ours_s, uploaded), (naive_s, naive_uploaded) = timings["ours"], timings["naive"]
    megapixels, fmt = path.stem.split("-")[1], path.suffix[1:].upper()
    return Row(
        name=f"{megapixels.upper()} {fmt}",
        file_size=path.stat().st_size,
        ours_s=ours_s,
        naive_s=naive_s,
        ours_peak_mb=peak_memory_mb("ours", path),
        naive_peak_mb=peak_memory_mb("naive", path),
        uploaded=uploaded,
        naive_uploaded=naive_uploaded,
    )


def print_table(rows: list[Row]) -> None:
    print(
        "| input | file | prepare (median) | naive, thumbnail's draft (median) | speed-up (derived) "
        "| peak mem prepare / naive ¹ | uploaded (naive) | file ÷ uploaded (derived) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row.name} | {row.file_size / 1e6:.1f} MB | {row.ours_s * 1000:.0f} ms "
            f"| {row.naive_s * 1000:.0f} ms | {row.speedup:.1f}× "
            f"| {row.ours_peak_mb:.0f} / {row.naive_peak_mb:.0f} MB "
            f"| {row.uploaded / 1e3:.0f} kB ({row.naive_uploaded / 1e3:.0f} kB) "
            f"| {row.shrink:.0f}× |"
        )
    print()
    print(
        f"Medians of {RUNS} runs after one warm-up (speed-up and file ÷ uploaded are ratios of the "
        "figures beside them), prepare and naive alternating, one "
        f"process, files in the page cache, load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores. "
        "JPEG inputs: quality 92 with sensor-like grain; PNG inputs: the same scene without "
        "grain (a grainy 48-MP PNG is ~70 MB, over the 50 MB limit, and would be refused)."
    )
    print(
        "¹ Growth of the RSS high-water mark (VmHWM) across one call in a fresh process: "
        "it includes Pillow's C buffers, which tracemalloc cannot see, and the file as read; "
        "it is a peak, not an average, and includes allocator slack."
    )


def print_targets(rows: list[Row]) -> bool:
    by_name = {row.name: row for row in rows}
    if "24MP JPEG" not in by_name:
        print("\nTargets not judged: they are about the 24-MP JPEG, which this run left out.")
        return True
    key = by_name["24MP JPEG"]
    targets = [
        (
            f"24-MP JPEG prepared in at most {TARGET_24MP_MS} ms (median)",
            key.ours_s * 1000 <= TARGET_24MP_MS,
            f"{key.ours_s * 1000:.0f} ms",
        ),
        (
            f"24-MP JPEG at least {TARGET_SPEEDUP:g}× faster than the naive baseline",
            key.speedup >= TARGET_SPEEDUP,
            f"{key.speedup:.1f}×",
        ),
        (
            f"at most {TARGET_UPLOAD / 1e3:.0f} kB uploaded for any input",
            all(row.uploaded <= TARGET_UPLOAD for row in rows),
            f"largest {max(row.uploaded for row in rows) / 1e3:.0f} kB",
        ),
        (
            f"at least {TARGET_SHRINK:g}× fewer bytes than the original, for every input",
            all(row.shrink >= TARGET_SHRINK for row in rows),
            f"smallest {min(row.shrink for row in rows):.0f}×",
        ),
    ]
    print()
    print("| target | met | measured |")
    print("|---|---|---:|")
    for text, met, measured in targets:
        print(f"| {text} | {'yes' if met else 'NO'} | {measured} |")
    return all(met for _, met, _ in targets)


def main() -> int:
    global RUNS  # --runs sets it for median_seconds and the notes
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peak", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--megapixels", type=int, nargs="+", choices=sorted(SIZES), default=sorted(SIZES),
                        help="input sizes (default all; the targets need 24)")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"timed runs per method (default {RUNS})")
    args = parser.parse_args()
    loopback_only()
    RUNS = args.runs
    if args.peak:
        measure_peak(args.peak[0], Path(args.peak[1]))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-images-") as folder:
        started = time.perf_counter()
        paths = make_inputs(Path(folder), args.megapixels)
        print(f"Made {len(paths)} inputs in {time.perf_counter() - started:.0f} s.\n")
        rows = [measure(path) for path in paths]
    print_table(rows)
    met = print_targets(rows)
    print(f"\nTotal {time.perf_counter() - started:.0f} s.")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
