"""Two processes, one data directory, each with its own offline preview server (the app, and the
README's `generate` run beside it): a run is followed by the process whose server made it while
that server serves, and by whichever asks next once it has stopped. Before, the app's follower
chased a command line's run on its own server: "HTTP 404 while checking the task", five times,
then "follower could not finish run …: check WAVESPEED_BASE_URL"."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import requests

from skyreels_demo.config import Settings
from skyreels_demo.local_api import LocalBackend, TaskTiming
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.studio.preview import OfflinePreview
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.status import RunStatus
from skyreels_demo.studio.studio import Studio

from .conftest import ASTRONAUT, ROOT, LaunchedApp, clean_env, open_store, photo, jpeg_bytes, wait_for


HTTP = requests.Session()
HTTP.trust_env = False  # loopback only, never through a proxy
HTTP.headers["Authorization"] = "Bearer any"


def start_task(backend: LocalBackend, prompt: str = "FPS-24, a quiet lake") -> str:
    http, auth = HTTP, {}
    upload = http.post(f"{backend.base_url}/api/v3/media/upload/binary", headers=auth,
                       files={"file": ("p.jpg", jpeg_bytes(photo(320, 180)), "image/jpeg")}, timeout=10)
    assert upload.status_code == 200, upload.text
    image = upload.json()["data"]["download_url"]
    answer = http.post(f"{backend.base_url}/api/v3/{SKYREELS_V1.name}", headers=auth,
                       json={"prompt": prompt, "image": image, "seed": 3}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["id"]


def result(backend: LocalBackend, task_id: str) -> requests.Response:
    return HTTP.get(f"{backend.base_url}/api/v3/predictions/{task_id}/result", timeout=10)


def test_a_task_is_answered_by_the_backend_that_made_it_while_it_serves_then_by_another(tmp_path):
    folder = tmp_path / "preview-backend"
    first = LocalBackend(data_dir=folder, render=False, timing=TaskTiming(0.1, 0.2)).start()
    try:
        task_id = start_task(first)
        with LocalBackend(data_dir=folder, render=False, timing=TaskTiming(0.1, 0.2)) as second:
            # Started after the task was stored, on the same folder: not its task while `first` serves.
            assert second.made_elsewhere(task_id) and second.find_task(task_id) is None
            assert result(second, task_id).status_code == 404 and result(first, task_id).status_code == 200
            first.stop()
            # `first` is gone: the task is anyone's now, and `second` answers for it.
            assert not second.made_elsewhere(task_id)
            wait_for(lambda: result(second, task_id).json()["data"]["status"] == "completed", timeout=20)
    finally:
        first.stop()  # stopping twice is harmless


def test_a_backend_whose_process_died_leaves_its_tasks_to_the_next(tmp_path):
    folder = tmp_path / "preview-backend"
    # Another process makes a task, then dies without stopping its backend (its lock dies with it).
    script = (
        "import sys, requests\n"
        "from pathlib import Path\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from skyreels_demo.local_api import LocalBackend, TaskTiming\n"
        "from tests.test_preview_servers import start_task\n"
        "backend = LocalBackend(data_dir=Path(sys.argv[1]), render=False, timing=TaskTiming(0.1, 0.2)).start()\n"
        "print(start_task(backend), flush=True)\n"
        "sys.stdin.readline()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(folder), str(ROOT)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=clean_env())
    try:
        task_id = child.stdout.readline().strip()
        with LocalBackend(data_dir=folder, render=False, timing=TaskTiming(0.1, 0.2)) as mine:
            assert mine.made_elsewhere(task_id)  # the other process still serves it
            child.kill()
            child.wait(timeout=10)
            assert not mine.made_elsewhere(task_id) and mine.find_task(task_id) is not None
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)


def _studio(data_dir: Path, processing_s: float) -> tuple[Studio, OfflinePreview]:
    settings = Settings(data_dir=data_dir, poll="0.1", check_scale=0.1, submits_per_minute=600.0,
                        preview_timing=(0.1, processing_s))
    preview = OfflinePreview(settings, SKYREELS_V1)
    return Studio(settings, SKYREELS_V1, start_preview=preview), preview


def test_the_apps_follower_leaves_a_command_lines_preview_run_alone_then_saves_it_once_that_process_is_gone(tmp_path, caplog):
    data = tmp_path / "data"
    picture = tmp_path / "p.jpg"
    picture.write_bytes(jpeg_bytes(photo(640, 360)))
    # The "command line": its own studio and preview server on the app's data directory, its
    # task long enough (6 s) for the app's studio to start and look while it runs.
    cli, cli_preview = _studio(data, processing_s=6.0)
    ended: list = []

    def make() -> None:
        try:
            for event in cli.generate(RunRequest("a man waves", str(picture), 5)):
                pass
        except Exception as exc:  # its server is stopped under it below, as a killed process's would be
            ended.append(exc)

    made = threading.Thread(target=make, daemon=True)
    made.start()
    store = open_store(data)
    wait_for(lambda: any(r.status == RunStatus.PROCESSING or r.task_id for r in store.recent()), timeout=30)
    [run] = store.recent()

    app, app_preview = _studio(data, processing_s=0.3)
    follower = app.start_follower()
    follower.idle_s = 0.2
    try:
        with caplog.at_level("INFO", logger="skyreels_demo.studio.follower"):
            follower.wake()
            wait_for(lambda: "to the process whose offline preview made it" in caplog.text, timeout=20)
            # The app asked its own server nothing about that task, and finished nothing of it.
            assert app_preview._backend.counts["result"] == 0
            assert "could not finish" not in caplog.text
            assert store.get(run.id).status != RunStatus.DONE

            # The command line goes away mid-run (its server with it): now the app saves the video.
            cli_preview.stop()
            wait_for(lambda: store.get(run.id).status == RunStatus.DONE, timeout=60)
            assert store.get(run.id).has_video
    finally:
        app.close()
        cli.close()
        made.join(timeout=30)


def test_running_generate_beside_the_app_leaves_the_apps_log_quiet(tmp_path):
    data = tmp_path / "data"
    # `generate` first, slow enough (8 s) that the app starts and its follower looks while it runs.
    env = clean_env(SKYREELS_DATA_DIR=str(data), SKYREELS_PREVIEW_TIMING="0.2,8", SKYREELS_POLL="0.2")
    cli = subprocess.Popen(
        [sys.executable, "-m", "skyreels_demo", "generate", "--prompt", "a woman smiles", "--image", ASTRONAUT,
         "--seed", "4", "--json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: (data / "runs.sqlite3").exists() and any(r.task_id for r in open_store(data).recent()), timeout=60)
        with LaunchedApp(data, log_path=tmp_path / "app.log", SKYREELS_PREVIEW_TIMING="0.2,0.4") as app:
            # The app's first pass over unfinished runs happens as it starts: it saw this one.
            assert cli.poll() is None, "generate should still be running when the app starts"
            wait_for(lambda: "to the process whose offline preview made it" in app.log_path.read_text(), timeout=40)
            out, err = cli.communicate(timeout=90)
            # Its paths out: a run's temporary folder may be named pytest-404.
            logged = app.log_path.read_text().replace(str(tmp_path), "<tmp>")
        assert cli.returncode == 0, err
        assert json.loads(out)["status"] == "done"
        assert not re.search(r"\b404\b", logged) and "could not finish" not in logged and "WAVESPEED_BASE_URL" not in logged
        [run] = open_store(data).recent()
        assert run.status == RunStatus.DONE and run.has_video
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(timeout=10)
