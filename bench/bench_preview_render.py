"""How long the offline preview takes to render, and its CPU: runs on a photo-like 1280x720
picture, this tree's render against another commit's, alternating, each render in a fresh process.

    python bench/bench_preview_render.py [--before COMMIT] [--runs 5]

Prints a markdown table beside the target (a median of at most 3 s for 960x544). With --before,
that commit's tree (`git archive`) renders the same picture in turns with this one, so a machine
that gets busier mid-run moves both rows alike.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_app import ROOT, loopback_only, machine, markdown_table  # noqa: E402
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


def render_once(tree: Path, dest: Path) -> dict:
    """One render by the tree's own code in a fresh Python: wall, CPU (every thread) and size."""
    code = (
        "import json, sys, time; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from skyreels_demo.local_api.render import render_preview; from skyreels_demo.models import SKYREELS_V1;"
        "picture = sys.stdin.buffer.read(); wall, cpu = time.perf_counter(), time.process_time();"
        "render_preview(picture, Path(sys.argv[2]), SKYREELS_V1);"
        "print(json.dumps({'wall': time.perf_counter() - wall, 'cpu': time.process_time() - cpu,"
        " 'kb': Path(sys.argv[2]).stat().st_size / 1024}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tree), str(dest)], input=photo_like(), capture_output=True, check=True,
    )
    return json.loads(done.stdout)


def main() -> None:
    loopback_only()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a commit to render the same picture in turns with this tree")
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    with Image.open(io.BytesIO(photo_like())) as opened:
        width, height = SKYREELS_V1.frame_for(*opened.size)
    with tempfile.TemporaryDirectory() as out:
        trees = {f"{commit} (this tree)": ROOT}
        if args.before:
            old = Path(out) / "before"
            old.mkdir()
            archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            trees = {f"{args.before} (before)": old, **trees}
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for number in range(args.runs):
            for name, tree in trees.items():
                runs[name].append(render_once(tree, Path(out) / f"preview-{number}.mp4"))
    print(f"# Preview render, 97 frames at 24 fps, {width}x{height} (commit {commit}; {machine()}; {args.runs} runs each)\n")
    rows = []
    for name, done in runs.items():
        walls = [r["wall"] for r in done]
        median = statistics.median(walls)
        rows.append([
            name, f"{median:.2f}", f"{min(walls):.2f}", f"{max(walls):.2f}", f"{statistics.median(r['cpu'] for r in done):.2f}",
            f"{statistics.median(r['kb'] for r in done):.0f}", f"median <= {TARGET_MEDIAN_S:.0f} s",
            "ok" if median <= TARGET_MEDIAN_S else "TOO SLOW",
        ])
    print(markdown_table(["render by", "median s", "min s", "max s", "median CPU s", "MP4 KB", "target", "verdict"], rows))


if __name__ == "__main__":
    main()
