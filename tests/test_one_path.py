"""One run, one path: every status change written by the recorder, a lost submit answer never
taken for "nothing was made", and the model carried as one value from the page to the backend."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from skyreels_demo.wavespeed.client import WaveSpeedClient
from skyreels_demo.errors import QuotaExceeded, ServiceError, SubmitUnconfirmed, TaskFailed
from skyreels_demo.studio.events import Submitted
from skyreels_demo.local_api import LocalBackend
from skyreels_demo.models import SKYREELS_V1, DurationPrior, ModelSpec
from skyreels_demo.studio.recorder import RunRecorder
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.store.records import KeySource, Limit, Mode
from skyreels_demo.store.runs import RunStore
from skyreels_demo.status import RunStatus
from skyreels_demo.web.status_board import details
from skyreels_demo.studio.studio import Studio
from skyreels_demo.status import TaskState
from skyreels_demo.wavespeed.tasks import Task
from skyreels_demo.studio.visitors import Requester

from .conftest import FAST, ROOT, clean_env, jpeg_bytes, launch_here, photo, run_cli, settings_for, video_facts, wait_for

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


def recorder_of(studio: Studio) -> RunRecorder:
    return studio.recorder


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


LOST_WITH_ITS_TASK = {
    "dropped connection": lambda faults: faults.drop("submit"),
    "read timeout": lambda faults: faults.slow("submit", 3.0),
    "unreadable body": lambda faults: faults.truncate("submit"),
}
LOST_WITH_NO_TASK = {  # the 5xx came before a task was made; the app cannot tell that apart
    "HTTP 500": lambda faults: faults.server_errors("submit", (500,)),
    "HTTP 504": lambda faults: faults.server_errors("submit", (504,)),
}
RECOVERED = "its task was found again in WaveSpeed's list of predictions"


def lost_answer_studio(backend, tmp_path) -> Studio:
    settings = settings_for(
        backend, tmp_path / "data", shared=True, visitor_runs_per_hour=1, read_timeout_s=1.0, submit_timeout_s=1.0
    )
    return Studio(settings, SKYREELS_V1)


@pytest.mark.parametrize("fault", LOST_WITH_ITS_TASK.values(), ids=LOST_WITH_ITS_TASK.keys())
def test_a_lost_submit_answer_whose_task_was_made_is_found_again_and_followed_to_its_video(
    fault, backend, tmp_path, photo_path
):
    studio = lost_answer_studio(backend, tmp_path)
    try:
        fault(backend.faults)
        events = list(studio.generate(RunRequest("a man waves", str(photo_path), 3, requester=VISITOR)))
        [submitted] = [event for event in events if isinstance(event, Submitted)]
        assert submitted.recovered and "found again" in submitted.message
        [run] = studio.store.recent()
        assert run.status == RunStatus.DONE and Path(run.video_path).exists()
        assert run.task_id == backend.created_task_ids[0] == events[-1].run.task_id
        assert run.error_message is None and run.seed == 3
        statuses = words(recorder_of(studio), run)
        assert statuses[:4] == ["preparing", "submitting", "unconfirmed", "submitted"] and statuses[-1] == "done"
        assert RECOVERED in details(run, studio.store.statuses(run.id))  # what History shows
        # Paid for: the visitor's one video this hour is used up.
        with pytest.raises(QuotaExceeded):
            list(studio.generate(RunRequest("a man waves again", str(photo_path), 4, requester=VISITOR)))
    finally:
        studio.close()
    assert backend.counts["submit"] == 1 and backend.tasks_created == 1


@pytest.mark.parametrize("fault", LOST_WITH_NO_TASK.values(), ids=LOST_WITH_NO_TASK.keys())
def test_a_lost_submit_answer_with_no_task_to_find_is_unconfirmed_counted_and_never_sent_again(
    fault, backend, tmp_path, photo_path
):
    studio = lost_answer_studio(backend, tmp_path)
    try:
        fault(backend.faults)
        with pytest.raises(SubmitUnconfirmed, match=UNKNOWN) as caught:
            list(studio.generate(RunRequest("a man waves", str(photo_path), 3, requester=VISITOR)))
        assert "no task made around then was found" in caught.value.sentence
        [run] = studio.store.recent()
        assert run.status == RunStatus.UNCONFIRMED and run.note.startswith(UNKNOWN)
        assert run.error_message == caught.value.sentence
        assert UNKNOWN in details(run, studio.store.statuses(run.id))  # what History shows
        # It may have been paid for: the visitor's one video this hour is used up.
        with pytest.raises(QuotaExceeded):
            list(studio.generate(RunRequest("a man waves again", str(photo_path), 4, requester=VISITOR)))
    finally:
        studio.close()
    assert backend.counts["submit"] == 1 and backend.counts["predictions"] == 1


def test_a_backend_without_the_list_of_predictions_leaves_a_lost_answer_unconfirmed_as_before(tmp_path, photo_path):
    with LocalBackend(timing=FAST, render=False, retired=("predictions",)) as backend:
        studio = lost_answer_studio(backend, tmp_path)
        try:
            backend.faults.drop("submit")
            with pytest.raises(SubmitUnconfirmed) as caught:
                list(studio.generate(RunRequest("a man waves", str(photo_path), 3, requester=VISITOR)))
            assert caught.value.sentence == SubmitUnconfirmed.sentence_for("video")
            [run] = studio.store.recent()
            assert run.status == RunStatus.UNCONFIRMED and run.error_message == caught.value.sentence
        finally:
            studio.close()
        assert backend.counts["submit"] == 1 and backend.counts["predictions"] == 1


def stray_task(backend) -> str:
    """A task of the same model on the same account that no stored run owns (made elsewhere)."""
    with WaveSpeedClient(settings_for(backend, Path("/nonexistent"))) as client:
        image = client.upload(jpeg_bytes(photo(64, 64)))
        return client.submit(SKYREELS_V1, {"prompt": "made elsewhere", "image": image, "seed": 1}).id


def test_two_tasks_that_could_each_be_the_lost_one_leave_the_run_unconfirmed_with_a_sentence(
    backend, tmp_path, photo_path
):
    studio = lost_answer_studio(backend, tmp_path)
    try:
        stray = stray_task(backend)
        backend.faults.drop("submit")
        with pytest.raises(SubmitUnconfirmed, match="2 tasks made around then could each be it") as caught:
            list(studio.generate(RunRequest("a man waves", str(photo_path), 3, requester=VISITOR)))
        assert caught.value.sentence.startswith(UNKNOWN) and "check your WaveSpeed history" in caught.value.sentence
        [run] = studio.store.recent()
        assert run.status == RunStatus.UNCONFIRMED and run.task_id is None
        assert run.error_message == caught.value.sentence
        assert caught.value.sentence in details(run, studio.store.statuses(run.id))
        assert studio.store.by_task(stray) is None
    finally:
        studio.close()
    assert backend.counts["submit"] == 2  # the stray task's, and this run's once


def test_another_run_sent_at_the_same_time_with_no_answer_yet_could_own_the_task(backend, tmp_path, photo_path):
    studio = lost_answer_studio(backend, tmp_path)
    try:
        # Another run of the same account whose submit is on its way, its answer not yet back.
        recorder = recorder_of(studio)
        sending = recorder.submitting(recorder.open(
            prompt="FPS-24, another", seed=1, model=SKYREELS_V1.name, mode=Mode.API, api_host=studio.access.api_host,
            key_source=KeySource.OWNER, requester="ip:192.0.2.9",
        ))
        backend.faults.drop("submit")
        with pytest.raises(SubmitUnconfirmed, match="another video sent at the same time has no answer either"):
            list(studio.generate(RunRequest("a man waves", str(photo_path), 3, requester=VISITOR)))
        assert studio.store.get(sending.id).task_id is None
    finally:
        studio.close()


def test_the_command_line_finds_a_lost_answers_task_again_and_exits_0(backend, tmp_path, photo_path):
    env = clean_env(
        WAVESPEED_API_KEY="test-key-not-secret", WAVESPEED_BASE_URL=backend.base_url,
        SKYREELS_DATA_DIR=str(tmp_path / "data"), SKYREELS_POLL="0.1",
    )
    backend.faults.drop("submit")
    made = run_cli("generate", "--prompt", "a man waves", "--image", str(photo_path), "--json", env=env)
    assert made.returncode == 0, made.stderr
    assert "found again" in made.stderr and "Traceback" not in made.stderr
    result = json.loads(made.stdout.splitlines()[-1])
    assert result["status"] == "done" and result["task_id"] == backend.created_task_ids[0]
    assert video_facts(result["video_path"])["frames"] == SKYREELS_V1.frame_count
    listed = run_cli("runs", "--json", env=env)
    [run] = json.loads(listed.stdout)
    assert run["status"] == "done" and run["note"].startswith("Its submit's answer was lost")
    assert backend.counts["submit"] == 1


def test_the_command_line_says_an_unknown_lost_answer_in_a_sentence_and_exits_3(backend, tmp_path, photo_path):
    env = clean_env(
        WAVESPEED_API_KEY="test-key-not-secret", WAVESPEED_BASE_URL=backend.base_url,
        SKYREELS_DATA_DIR=str(tmp_path / "data"), SKYREELS_POLL="0.1",
    )
    stray_task(backend)
    backend.faults.drop("submit")
    made = run_cli("generate", "--prompt", "a man waves", "--image", str(photo_path), "--json", env=env)
    assert made.returncode == 3
    assert UNKNOWN in made.stderr and "could each be it" in made.stderr and "Traceback" not in made.stderr
    assert json.loads(made.stdout.splitlines()[-1])["status"] == "unconfirmed"
    listed = run_cli("runs", "--json", env=env)
    [run] = json.loads(listed.stdout)
    assert run["status"] == "unconfirmed" and run["note"].startswith(UNKNOWN)
    assert backend.counts["submit"] == 2  # the stray task's, and this run's once


def test_resume_finds_an_older_unconfirmed_runs_task_and_saves_its_video(tmp_path, photo_path):
    with LocalBackend(timing=FAST, render=False, retired=("predictions",)) as backend:
        env = clean_env(
            WAVESPEED_API_KEY="test-key-not-secret", WAVESPEED_BASE_URL=backend.base_url,
            SKYREELS_DATA_DIR=str(tmp_path / "data"), SKYREELS_POLL="0.1",
        )
        backend.faults.drop("submit")
        made = run_cli("generate", "--prompt", "a man waves", "--image", str(photo_path), env=env)
        assert made.returncode == 3  # no list to look in then: unconfirmed, as before
        [lost] = json.loads(run_cli("runs", "--json", env=env).stdout)
        assert lost["status"] == "unconfirmed" and lost["task_id"] is None
        backend.retired.discard("predictions")  # the list is there now

        resumed = run_cli("resume", env=env)

        assert resumed.returncode == 0, resumed.stderr
        assert "was found again" in resumed.stderr
        [run] = json.loads(run_cli("runs", "--json", env=env).stdout)
        assert run["id"] == lost["id"] and run["status"] == "done"
        assert run["task_id"] == backend.created_task_ids[0] and Path(run["video_path"]).exists()
        assert backend.counts["submit"] == 1
        again = run_cli("resume", env=env)  # nothing more to do, and nothing sent
        assert again.returncode == 0 and "Nothing to resume" in again.stderr
        assert backend.counts["submit"] == 1


def test_the_apps_follower_finds_an_unconfirmed_runs_task_as_it_starts(tmp_path, photo_path):
    with LocalBackend(timing=FAST, render=False, retired=("predictions",)) as backend:
        settings = settings_for(backend, tmp_path / "data")
        before = Studio(settings, SKYREELS_V1)
        try:
            backend.faults.drop("submit")
            with pytest.raises(SubmitUnconfirmed):
                list(before.generate(RunRequest("a man waves", str(photo_path), 3)))
        finally:
            before.close()
        backend.retired.discard("predictions")
        after = Studio(settings, SKYREELS_V1)  # the app, started again
        try:
            after.start_follower()
            [run] = after.store.recent()
            wait_for(lambda: after.store.get(run.id).status == RunStatus.DONE, timeout=30)
            assert after.store.get(run.id).task_id == backend.created_task_ids[0]
        finally:
            after.close()
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
    from skyreels_demo.web.page import StudioApp

    with LocalBackend(timing=TaskTiming(0.2, 0.4), models=(TINY,)) as backend:
        app = StudioApp(settings_for(backend, tmp_path / "data"), model=TINY)
        blocks = app.build()
        launch_here(blocks, app.settings)
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
    assert naming == ["cli/__init__.py", "web/page.py"]


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
