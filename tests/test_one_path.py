"""One run, one path: every status change written by the recorder, a lost submit answer never
taken for "nothing was made", and the model carried as one value from the page to the backend."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from skyreels_demo.errors import ApiError, QuotaExceeded, ServiceError, SubmitUnconfirmed, TaskFailed
from skyreels_demo.models import SKYREELS_V1, DurationPrior, ModelSpec
from skyreels_demo.recorder import RunRecorder
from skyreels_demo.run_request import RunRequest
from skyreels_demo.runs import KeySource, Limit, Mode, RunStatus, RunStore
from skyreels_demo.status_board import details
from skyreels_demo.studio import Studio
from skyreels_demo.tasks import Task, TaskState
from skyreels_demo.visitors import Requester

from .conftest import ROOT, clean_env, run_cli, settings_for, video_facts

UNKNOWN = "WaveSpeed may have made this video; it is not known"
VISITOR = Requester("ip:203.0.113.50")


# --- the recorder, one status change at a time -------------------------------------------------


@pytest.fixture
def recorder(tmp_path) -> RunRecorder:
    return RunRecorder(RunStore(tmp_path / "runs.sqlite3"))


def opened(recorder: RunRecorder):
    return recorder.open(
        prompt="FPS-24, a fox", seed=7, model=SKYREELS_V1.name, mode=Mode.API, api_host="h",
        key_source=KeySource.OWNER, requester="ip:192.0.2.1",
    )


def words(recorder: RunRecorder, run) -> list[str]:
    return [status for _, status in recorder.store.statuses(run.id)]


def running(task_id: str, state: TaskState) -> Task:
    return Task(id=task_id, state=state)


def test_a_run_that_makes_its_video_walks_every_status_once(recorder, tmp_path):
    run = opened(recorder)
    assert run.status is RunStatus.PREPARING
    run = recorder.submitted(run, "task-1")
    assert run.task_id == "task-1" and run.submitted_at is not None
    for _ in range(3):  # a task waiting in the queue is written queued once, not on every tick
        run = recorder.seen(run, running("task-1", TaskState.QUEUED), start_witnessed=True)
    run = recorder.seen(run, running("task-1", TaskState.RUNNING), start_witnessed=True)
    run = recorder.seen(run, running("task-1", TaskState.RUNNING), start_witnessed=True)
    assert run.processing_at is not None  # a start seen as it happened is timed
    done = Task(id="task-1", state=TaskState.COMPLETED, outputs=("http://cdn/x.mp4",), inference_ms=1200)
    run = recorder.completed(run, done)
    assert run.output_url == "http://cdn/x.mp4" and run.inference_ms == 1200
    run = recorder.saved(run, tmp_path / "x.mp4")
    assert run.status is RunStatus.DONE and run.is_finished
    assert words(recorder, run) == ["preparing", "submitted", "queued", "processing", "completed", "done"]


def test_a_start_first_seen_already_running_is_not_timed(recorder):
    run = recorder.submitted(opened(recorder), "task-2")
    run = recorder.seen(run, running("task-2", TaskState.RUNNING), start_witnessed=False)
    assert run.status is RunStatus.PROCESSING and run.processing_at is None  # nothing to learn from


def test_a_failed_task_is_recorded_failed_with_its_code(recorder):
    run = recorder.submitted(opened(recorder), "task-3")
    run = recorder.failed(run, TaskFailed("The video was not made.", task_id="task-3", code=1200, message="moderated"))
    assert (run.status, run.error_code, run.error_message) == (RunStatus.FAILED, 1200, "moderated")


def test_a_task_wavespeed_no_longer_has_is_lost(recorder):
    run = recorder.lost(recorder.submitted(opened(recorder), "task-4"), "gone")
    assert run.status is RunStatus.LOST and run.is_finished and not run.is_unfinished_task


def test_a_refusal_is_not_counted_by_the_caps_but_a_lost_answer_is(recorder):
    limit = Limit(since=0, most=10, key_source=KeySource.OWNER, refusal="", requester="ip:192.0.2.1")
    refused = recorder.not_submitted(opened(recorder), ServiceError("WaveSpeed is unavailable."))
    assert refused.status is RunStatus.REFUSED and refused.note == ""
    assert recorder.store.count(limit) == 0
    lost = recorder.not_submitted(opened(recorder), SubmitUnconfirmed(SubmitUnconfirmed.sentence_for("video")))
    assert lost.status is RunStatus.UNCONFIRMED and lost.is_finished
    assert lost.note.startswith(UNKNOWN)
    assert recorder.store.count(limit) == 1  # it may have been paid for


def test_a_call_with_no_video_is_done_once_answered(recorder):
    run = recorder.answered(recorder.submitted(opened(recorder), "task-5"), inference_ms=300)
    assert run.status is RunStatus.DONE and run.finished_at is not None


# --- a submit whose answer is lost, end to end -----------------------------------------------


LOST_ANSWERS = {
    "dropped connection": lambda faults: faults.drop("submit"),
    "read timeout": lambda faults: faults.slow("submit", 3.0),
    "HTTP 500": lambda faults: faults.server_errors("submit", (500,)),
    "HTTP 504": lambda faults: faults.server_errors("submit", (504,)),
    "unreadable body": lambda faults: faults.truncate("submit"),
}


@pytest.mark.parametrize("fault", LOST_ANSWERS.values(), ids=LOST_ANSWERS.keys())
def test_a_lost_submit_answer_is_unconfirmed_counted_and_never_sent_again(fault, backend, tmp_path, photo_path):
    settings = settings_for(
        backend, tmp_path / "data", shared=True, visitor_runs_per_hour=1, read_timeout_s=1.0, submit_timeout_s=1.0
    )
    studio = Studio(settings, SKYREELS_V1)
    try:
        fault(backend.faults)
        with pytest.raises(SubmitUnconfirmed, match=UNKNOWN):
            list(studio.generate(RunRequest("a man waves", str(photo_path), 3, requester=VISITOR)))
        [run] = studio.store.recent()
        assert run.status == RunStatus.UNCONFIRMED and run.note.startswith(UNKNOWN)
        assert UNKNOWN in details(run, studio.store.statuses(run.id))  # what History shows
        # It may have been paid for: the visitor's one video this hour is used up.
        with pytest.raises(QuotaExceeded):
            list(studio.generate(RunRequest("a man waves again", str(photo_path), 4, requester=VISITOR)))
    finally:
        studio.close()
    assert backend.counts["submit"] == 1


NOTHING_MADE = {
    "HTTP 503": lambda faults: faults.server_errors("submit", (503,)),
    "HTTP 400": lambda faults: faults.server_errors("submit", (400,)),
}


@pytest.mark.parametrize("fault", NOTHING_MADE.values(), ids=NOTHING_MADE.keys())
def test_an_answer_that_says_nothing_was_made_is_refused_and_not_counted(fault, backend, tmp_path, photo_path):
    studio = Studio(settings_for(backend, tmp_path / "data", shared=True, visitor_runs_per_hour=1), SKYREELS_V1)
    try:
        fault(backend.faults)
        with pytest.raises(ApiError) as refused:
            list(studio.generate(RunRequest("a man waves", str(photo_path), 3, requester=VISITOR)))
        assert not isinstance(refused.value, SubmitUnconfirmed)
        assert studio.store.recent()[0].status == RunStatus.REFUSED
        # Nothing was paid for, so the visitor's allowance is still there.
        events = list(studio.generate(RunRequest("a man waves", str(photo_path), 3, requester=VISITOR)))
        assert Path(events[-1].video_path).exists()
    finally:
        studio.close()


def test_the_command_line_says_a_lost_answer_in_a_sentence_and_exits_3(backend, tmp_path, photo_path):
    env = clean_env(
        WAVESPEED_API_KEY="test-key-not-secret", WAVESPEED_BASE_URL=backend.base_url,
        SKYREELS_DATA_DIR=str(tmp_path / "data"), SKYREELS_POLL="0.1",
    )
    backend.faults.drop("submit")
    made = run_cli("generate", "--prompt", "a man waves", "--image", str(photo_path), "--json", env=env)
    assert made.returncode == 3
    assert UNKNOWN in made.stderr and "Traceback" not in made.stderr
    assert json.loads(made.stdout.splitlines()[-1])["status"] == "error"
    listed = run_cli("runs", "--json", env=env)
    [run] = json.loads(listed.stdout)
    assert run["status"] == "unconfirmed" and run["note"].startswith(UNKNOWN)
    assert backend.counts["submit"] == 1


# --- the model is one value ------------------------------------------------------------------


TINY = ModelSpec(
    name="test-ai/tiny-video",
    title="Tiny Video",
    build_payload=SKYREELS_V1.build_payload,
    price_usd=0.07,
    prior=DurationPrior(queue_s=1.0, processing_s=2.0, spread_s=0.5),
    frames=((320, 192), (192, 320), (256, 256)),
    fps=8,
    frame_count=17,
    prompt_prefix="TINY, ",
    max_prompt_chars=60,
)


def test_the_command_line_runs_a_second_model_end_to_end_offline(tmp_path, photo_path, monkeypatch, capsys):
    from skyreels_demo import cli

    monkeypatch.setenv("SKYREELS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SKYREELS_PREVIEW_TIMING", "0.2,0.4")
    monkeypatch.delenv("WAVESPEED_API_KEY", raising=False)
    monkeypatch.delenv("WAVESPEED_BASE_URL", raising=False)
    code = cli.main(["generate", "--prompt", "a fox turns", "--image", str(photo_path), "--seed", "5", "--json"], model=TINY)
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out.splitlines()[-1])
    facts = video_facts(result["video_path"])
    # Its frames, frame count and frame rate, rendered by the backend at its own endpoint.
    assert facts["size"] == (320, 192) and facts["frames"] == 17 and facts["fps"] == 8
    [stored] = RunStore(tmp_path / "data" / "runs.sqlite3").recent()
    assert stored.model == TINY.name and stored.prompt == "TINY, a fox turns"
    # Its prompt limit, said before anything is sent.
    code = cli.main(["generate", "--prompt", "x" * 61, "--image", str(photo_path)], model=TINY)
    assert code == 2 and "keep it to 60 or fewer" in capsys.readouterr().err


def test_the_app_shows_and_runs_a_second_model_end_to_end_offline(tmp_path, photo_path):
    from gradio_client import Client, handle_file

    from skyreels_demo.local_api import LocalBackend, TaskTiming
    from skyreels_demo.ui import StudioApp

    with LocalBackend(timing=TaskTiming(0.2, 0.4), models=(TINY,)) as backend:
        app = StudioApp(settings_for(backend, tmp_path / "data"), model=TINY)
        blocks = app.build()
        blocks.launch(prevent_thread_lock=True, server_name="127.0.0.1", ssr_mode=False, quiet=True)
        try:
            page = json.dumps(blocks.config, default=str)
            assert "$0.07" in page and "TINY, " in page and "Tiny Video" in page  # its price, prefix and title
            client = Client(blocks.local_url, verbose=False)
            status, video, summary = client.predict("a fox turns", handle_file(str(photo_path)), 5, api_name="/generate")
            facts = video_facts(video["video"] if isinstance(video, dict) else video)
            assert facts["size"] == (320, 192) and facts["frames"] == 17 and facts["fps"] == 8
            # Submitted at its own endpoint: the backend serves no other.
            assert [backend.task(t).model for t in backend.created_task_ids] == [TINY.name]
        finally:
            blocks.close()
            app.studio.close()


def test_the_studio_s_model_is_named_in_few_places():
    package = ROOT / "skyreels_demo"
    naming = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "SKYREELS_V1" in path.read_text(encoding="utf-8") and path.name != "models.py"
    )
    # Where the app and the command line are wired; everything else reads the spec it is given.
    assert naming == ["cli.py", "ui.py"]


# --- no import circles -----------------------------------------------------------------------


def _imports(path: Path, package: Path, *, annotations: bool) -> set[str]:
    """The package modules a module imports; with `annotations`, those under TYPE_CHECKING too."""
    here = ".".join(path.relative_to(package.parent).with_suffix("").parts)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    if not annotations:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped.update(id(inner) for inner in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.rsplit(".", node.level if path.name != "__init__.py" else node.level - 1)[0]
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            names = [name] + [f"{name}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(n for n in names if n.startswith("skyreels_demo"))
    return found


def _circles(annotations: bool, within=lambda name: True) -> list[list[str]]:
    package = ROOT / "skyreels_demo"
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in package.rglob("*.py")
    }
    modules = {name: path for name, path in modules.items() if within(name)}
    graph = {
        name: {m for m in _imports(path, package, annotations=annotations) if m in modules and m != name}
        for name, path in modules.items()
    }
    # An __init__ only gathers its own package: importing a sibling through it is no circle.
    graph = {name: {m for m in deps if not name.startswith(m + ".")} for name, deps in graph.items()}
    circles: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        for nxt in sorted(graph[name]):
            if nxt in trail:
                circles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, trail + [nxt])
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    return circles


def test_no_module_of_the_package_imports_itself_round_a_circle():
    assert _circles(annotations=False) == []


def test_the_app_s_modules_do_not_even_annotate_round_a_circle():
    # Not even under TYPE_CHECKING (the studio and the follower, say). The built-in backend's
    # route modules are annotated with the server they are routes of, so it is left out here.
    assert _circles(annotations=True, within=lambda name: ".local_api" not in name) == []
