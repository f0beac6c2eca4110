"""WaveSpeed deletes uploaded files after 7 days: a take made again, or a run continued, after
that sends its picture up again and never the week-old URL, which would fail the task (1402)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from skyreels_demo.studio.events import Done
from skyreels_demo.studio.frames import continue_run
from skyreels_demo.local_api.storage import UPLOADS_PATH
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.status import RunStatus
from skyreels_demo.studio.takes import export_take, read_take

WEEK_AND_A_DAY_S = 8 * 24 * 3600.0
UPLOAD_KINDS = ("ticket", "upload")


def done_of(events) -> Done:
    [done] = [event for event in events if isinstance(event, Done)]
    return done


def uploads(backend) -> int:
    return sum(backend.counts[kind] for kind in UPLOAD_KINDS)


def a_week_passes(studio, backend, run) -> None:
    """As WaveSpeed after seven days: the upload is deleted (its URL answers 404); the run is old."""
    assert run.image_url and run.image_url.startswith(backend.base_url + UPLOADS_PATH)
    (backend.storage.uploads_dir / urlsplit(run.image_url).path.removeprefix(UPLOADS_PATH)).unlink()
    assert requests.get(run.image_url, timeout=10).status_code == 404  # a dead URL
    old = time.time() - WEEK_AND_A_DAY_S
    studio.store.update(run.id, created_at=old, submitted_at=old, finished_at=old)


def test_a_take_made_again_after_seven_days_uploads_its_picture_again(studio, backend, photo_path, tmp_path):
    first = done_of(studio.generate(RunRequest("a woman smiles at the camera", str(photo_path), 7))).run
    zip_path = export_take(first, studio.model, tmp_path / "take.zip")
    a_week_passes(studio, backend, first)
    before = uploads(backend)

    again = done_of(studio.generate(read_take(zip_path, studio.model).request())).run

    assert uploads(backend) == before + 1  # sent up again
    assert again.status == RunStatus.DONE and Path(again.video_path).exists()
    sent = backend.task(again.task_id)
    assert sent.image_url != first.image_url and sent.image_url == again.image_url
    assert requests.get(sent.image_url, timeout=10).status_code == 200
    assert (sent.seed, sent.prompt) == (7, first.prompt)  # the same take, made again


@pytest.mark.renders  # looks at the video
def test_a_run_continued_after_seven_days_uploads_its_frame(studio, backend, photo_path):
    first = done_of(studio.generate(RunRequest("a man looks up", str(photo_path), 3))).run
    a_week_passes(studio, backend, first)
    before = uploads(backend)

    continued = done_of(continue_run(studio, RunRequest("he waves", None, 4), first.task_id)).run

    assert uploads(backend) == before + 1
    assert continued.status == RunStatus.DONE and continued.continued_from == first.id
    assert backend.task(continued.task_id).image_url not in (first.image_url, None)
    assert backend.counts["submit"] == 2
