"""Nine image bombs at once: what `images.prepare` answers and how much memory it takes.

Run from the repository: `python bench/bench_bombs.py` (about a minute on two cores).
It makes the bomb kinds of tests/test_image_bombs.py (a progressive 4:4:4 JPEG near 80 MP,
PNGs with tRNS in RGB, L and P, a 65500x1087 JPEG, an animated WebP of large frames, an AVIF
if this Pillow writes AVIF, and two that bomb with metadata: a PNG of 70 zTXt text chunks and
a JPEG whose 5,000 EXIF entries name the same 60 kB), prepares each alone and then all at once
on threads, as the app's workers do, each run in a fresh process, and prints a markdown table
with the growth of the process's peak RSS beside the +500 MB target. `--root PATH` measures another checkout
(an older commit, for a before-and-after) with the same bombs.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import PIL

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_app import loopback_only  # noqa: E402
from tests.test_image_bombs import CROWD_BOUND, MB, make_bombs, prepare_in_fresh_process  # noqa: E402

# Each child process refuses the network too, though preparing a picture never uses it.
GUARD = f"import sys; sys.path.insert(0, {str(HERE)!r}); from bench_app import loopback_only; loopback_only()\n"


def commit(root: Path) -> str:
    answer = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return answer.stdout.strip() or "unknown"


def outcome_text(outcome: str, width: int = 150) -> str:
    text = outcome.replace("|", "/")
    return text if len(text) <= width else text[: width - 1] + "…"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=HERE.parent, help="the checkout to measure")
    args = parser.parse_args()
    loopback_only()
    root = args.root.resolve()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-bombs-") as folder:
        bombs = make_bombs(Path(folder))
        made = time.perf_counter() - started
        alone = {name: prepare_in_fresh_process([path], root=root, preamble=GUARD) for name, path in bombs.items()}
        crowd = prepare_in_fresh_process(list(bombs.values()), root=root, preamble=GUARD)
        sizes = {name: path.stat().st_size for name, path in bombs.items()}
    print(
        f"Commit {commit(root)} ({root}), Pillow {PIL.__version__}, Python "
        f"{platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
        f"bombs made in {made:.0f} s.\n"
    )
    print("| bomb | file | outcome | peak growth, alone | at once |")
    print("|---|---:|---|---:|---:|")
    for index, name in enumerate(bombs):
        print(
            f"| {name} | {sizes[name] / 1e6:.1f} MB | {outcome_text(alone[name].outcomes[0])} "
            f"| +{alone[name].growth / MB:.0f} MB | {outcome_text(crowd.outcomes[index], 40)} |"
        )
    met = crowd.growth < CROWD_BOUND
    print(
        f"| **all {len(bombs)} at once, on threads** | | | **+{crowd.growth / MB:.0f} MB** "
        f"| target < +{CROWD_BOUND / MB:.0f} MB: {'met' if met else '**NO**'} |"
    )
    print(
        "\nPeak growth: the process's RSS high-water mark (VmHWM) after preparing, less before, "
        "in a fresh process (Pillow's C buffers included); MB = 10^6 bytes."
        f" Total {time.perf_counter() - started:.0f} s."
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
