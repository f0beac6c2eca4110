"""How long cutting a film takes: 6 shots of 97 frames at 960x544 (582 frames less 5 joins),
beside the time the app takes to download those 6 clips from the (loopback) API.

    python bench/bench_cut.py [--runs N]

Prints a markdown table: the cut's median and its ratio to the downloads' median, and how the
cut is made (one fast re-encode: a clip's first frame is its keyframe, so dropping the join's
repeated frame cannot be a stream copy).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_app import loopback_only  # noqa: E402
from bench_preview_render import photo_like  # noqa: E402
from skyreels_demo.wavespeed.client import WaveSpeedClient  # noqa: E402
from skyreels_demo.config import Settings  # noqa: E402
from skyreels_demo.studio.cut import cut_film  # noqa: E402
from skyreels_demo.studio.frames import frames_in  # noqa: E402
from skyreels_demo.local_api import LocalBackend, TaskTiming  # noqa: E402
from skyreels_demo.models import SKYREELS_V1  # noqa: E402
from skyreels_demo.wavespeed.schedule import FixedSchedule  # noqa: E402

SHOTS = 6


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    loopback_only()
    with tempfile.TemporaryDirectory() as tmp, LocalBackend(timing=TaskTiming(0.05, 0.1)) as api:
        folder = Path(tmp)
        client = WaveSpeedClient(Settings(api_key="bench", base_url=api.base_url, data_dir=folder))
        urls = []
        for shot in range(SHOTS):
            # A different picture per shot, so each clip is its own render.
            image_url = client.upload(photo_like(1280 + 16 * shot, 720))
            job = client.submit(SKYREELS_V1, {"prompt": f"shot {shot}", "image": image_url, "seed": shot})
            done = list(job.follow(schedule=FixedSchedule(0.2), deadline_s=120))[-1]
            urls.append(done.video_url)
        downloads, cuts, frames = [], [], 0
        for run in range(runs):
            started = time.perf_counter()
            clips = [client.download(url, folder / f"run{run}-clip{n}.mp4") for n, url in enumerate(urls)]
            downloads.append(time.perf_counter() - started)
            cut = cut_film(clips, folder / f"film{run}.mp4", SKYREELS_V1.fps)
            cuts.append(cut.seconds)
            frames = frames_in(folder / f"film{run}.mp4")
        client.close()
    expected = SHOTS * SKYREELS_V1.frame_count - (SHOTS - 1)
    cut_s, download_s = statistics.median(cuts), statistics.median(downloads)
    print(f"Cutting a {SHOTS}-shot film (commit {commit()}, median of {runs} runs, 2 cores)\n")
    print("| figure | measured |")
    print("|---|---|")
    print(f"| frames in the film (decoded) | {frames} (expected {expected}) |")
    print(f"| cut, median | {cut_s:.2f} s (max of {runs}: {max(cuts):.2f} s) |")
    print(f"| downloading the {SHOTS} clips over loopback, median | {download_s:.3f} s |")
    print(f"| cut ÷ downloads (derived from the two medians) | {cut_s / download_s:.0f}× |")
    print(f"| how | {cut.method} (libx264 veryfast, CRF 20) |")


if __name__ == "__main__":
    main()
