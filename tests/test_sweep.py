"""A sweep of prompts x seeds from the command line: its report shows every video, and running it
again pays for nothing new."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from skyreels_demo.local_api import LocalBackend, TaskTiming

from .conftest import ROOT, clean_env, open_store, run_cli, video_facts

IMAGE = str(ROOT / "assets" / "coffee.png")
PROMPTS = [
    "steam curls up from the cup",
    "a hand lifts the cup and the camera pushes in",
    "rain streaks the cafe window behind the cup",
]
SEEDS = [1, 2]


@pytest.fixture(scope="module")
def sweep_backend():
    with LocalBackend(timing=TaskTiming(queue_s=0.2, processing_s=0.6), render=False) as server:
        yield server


def sweep(prompts_file: Path, env: dict[str, str]):
    return run_cli(
        "sweep", "--image", IMAGE, "--prompts", str(prompts_file), "--seeds", ",".join(map(str, SEEDS)),
        env=env, timeout=150,
    )


def videos_in(report: Path) -> list[Path]:
    sources = re.findall(r'<video[^>]*\ssrc="([^"]+)"', report.read_text(encoding="utf-8"))
    return [(report.parent / src).resolve() for src in sources]


def test_a_sweep_writes_its_report_and_a_second_run_submits_nothing(sweep_backend, tmp_path):
    prompts_file = tmp_path / "prompts.txt"
    prompts_file.write_text("# three ways to film a cup of coffee\n\n" + "\n".join(PROMPTS) + "\n", encoding="utf-8")
    data = tmp_path / "data"
    env = clean_env(
        WAVESPEED_BASE_URL=sweep_backend.base_url,
        WAVESPEED_API_KEY="wsk-sweep-test-key",
        SKYREELS_DATA_DIR=str(data),
        SKYREELS_POLL="0.1",
        SKYREELS_CONFIRM_ABOVE_USD="5",  # six videos, $1.20: no question asked
    )

    first = sweep(prompts_file, env)

    assert first.returncode == 0, first.stderr
    report = Path(first.stdout.strip().splitlines()[-1])
    assert report.is_file() and report.suffix == ".html"
    assert "6/6" in first.stderr  # the progress bar reached the end
    videos = videos_in(report)
    assert len(videos) == len(PROMPTS) * len(SEEDS) == len(set(videos))
    for video in videos:
        assert video.is_file(), video
        assert video_facts(video)["frames"] == 97
    page = report.read_text(encoding="utf-8")
    assert all(prompt in page for prompt in PROMPTS)
    # Each cell links its take's export, which `generate --from` makes again.
    exports = [report.parent / href for href in re.findall(r'<a class="export" href="([^"]+)"', page)]
    assert len(exports) == 6 and all(path.is_file() and path.suffix == ".zip" for path in exports)
    from skyreels_demo.models import SKYREELS_V1
    from skyreels_demo.studio.takes import read_take
    assert sorted((take.prompt, take.seed) for take in map(lambda e: read_take(e, SKYREELS_V1), exports)) == sorted(
        (prompt, seed) for prompt in PROMPTS for seed in SEEDS
    )
    with open(report.with_suffix(".csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    assert sorted((row["prompt"], int(row["seed"])) for row in rows) == sorted(
        (prompt, seed) for prompt in PROMPTS for seed in SEEDS
    )
    assert {row["status"] for row in rows} == {"done"}
    assert sweep_backend.counts["submit"] == 6 and sweep_backend.tasks_created == 6
    store = open_store(data)
    recorded = [run for run in store.recent() if run.sweep]
    assert len(recorded) == 6 and {run.status for run in recorded} == {"done"}
    assert sorted(run.seed for run in recorded) == [1, 1, 1, 2, 2, 2]
    store.close()
    counts_before = dict(sweep_backend.counts)

    second = sweep(prompts_file, env)

    assert second.returncode == 0, second.stderr
    assert sweep_backend.counts["submit"] == 6  # nothing new was paid for
    for way_up in ("ticket", "put", "upload"):
        assert sweep_backend.counts[way_up] == counts_before.get(way_up, 0)  # nor any image sent again
    assert Path(second.stdout.strip().splitlines()[-1]) == report
    assert sorted(videos_in(report)) == sorted(videos)  # the report still shows every video
    with open(report.with_suffix(".csv"), newline="", encoding="utf-8") as f:
        assert {row["status"] for row in csv.DictReader(f)} == {"skipped"}
    assert "6 done before" in second.stderr
