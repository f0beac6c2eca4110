"""How long the offline preview takes to render: 5 runs on a photo-like 1280x720 picture.

    python bench/bench_preview_render.py

Prints a markdown table beside the target (a median of at most 3 s for 960x544).
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_app import loopback_only  # noqa: E402
from skyreels_demo.images import choose_frame  # noqa: E402
from skyreels_demo.local_api.render import render_preview
from skyreels_demo.models import SKYREELS_V1  # noqa: E402

RUNS = 5
TARGET_MEDIAN_S = 3.0


def photo_like(width: int = 1280, height: int = 720) -> bytes:
    """A dusk landscape with grain, so the encoder sees texture like a real photo's."""
    rng = np.random.default_rng(24)
    y = np.linspace(0.0, 1.0, height)[:, None, None]
    sky = (1 - y) * np.array([40, 70, 140]) + y * np.array([250, 170, 110])
    pixels = np.broadcast_to(sky, (height, width, 3)).copy()
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    moon = (width * 0.62, height * 0.30, width * 0.74, height * 0.30 + width * 0.12)
    draw.ellipse(moon, fill=(255, 226, 160))
    for i, shade in enumerate((70, 50, 30)):
        base = height * (0.55 + 0.12 * i)
        ridge = [
            (x, base - 40 * np.sin(x / (90 + 40 * i) + i) - 20 * np.sin(x / 23))
            for x in range(0, width + 8, 8)
        ]
        draw.polygon([(0, height), *ridge, (width, height)], fill=(shade, shade + 25, shade + 10))
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    grain = rng.normal(0, 9, (height, width, 3))
    pixels = np.clip(np.asarray(image, dtype=np.float64) + grain, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    loopback_only()
    picture = photo_like()
    with Image.open(io.BytesIO(picture)) as opened:
        width, height = choose_frame(*opened.size)
    seconds = []
    with tempfile.TemporaryDirectory() as out:
        for run in range(RUNS):
            dest = Path(out) / f"preview-{run}.mp4"
            started = time.perf_counter()
            render_preview(picture, dest, SKYREELS_V1)
            seconds.append(time.perf_counter() - started)
        size_kb = dest.stat().st_size / 1024
    median = statistics.median(seconds)
    verdict = "ok" if median <= TARGET_MEDIAN_S else "TOO SLOW"
    print(f"Preview render, 97 frames at 24 fps, {RUNS} runs on {os.cpu_count()} CPUs\n")
    print("| frame | median s | min s | max s | MP4 KB | target | verdict |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {width}x{height} | {median:.2f} | {min(seconds):.2f} | {max(seconds):.2f} "
        f"| {size_kb:.0f} | median <= {TARGET_MEDIAN_S:.0f} s | {verdict} |"
    )


if __name__ == "__main__":
    main()
