"""Takes from the command line and the store: export, then `generate --from` making the same
submit (prompt, seed and image bytes); every kind of bad zip refused with no request at all;
`runs` found by prompt words and kept; kept takes never pruned; share links that only their
owner can make or withdraw, and tokens nobody can guess."""

from __future__ import annotations

import json
import os
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from skyreels_demo.studio import differences, takes
from skyreels_demo.local_api import LocalBackend
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.web.page_input import NOT_YOURS
from skyreels_demo.store.retention import disk_use, prune
from skyreels_demo.store.runs import RunStore
from skyreels_demo.status import RunStatus
from skyreels_demo.web.ui_context import PageContext
from skyreels_demo.web.ui_takes import TakeHandlers
from skyreels_demo.studio.visitors import LOCAL, Requester

from .conftest import ASTRONAUT, FAST, clean_env, jpeg_bytes, open_store, photo, run_cli, settings_for

PROMPT = "a woman smiles at the camera as the flag stirs"


def env_for(backend, data_dir: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        WAVESPEED_BASE_URL=backend.base_url,
        WAVESPEED_API_KEY="test-key-not-secret",
        SKYREELS_DATA_DIR=str(data_dir),
        SKYREELS_POLL="0.1",
        **extra,
    )


@pytest.fixture(scope="module")
def take_backend():
    """One backend for the module's takes, so one take is made and exported once."""
    with LocalBackend(timing=FAST) as server:
        yield server


@pytest.fixture(scope="module")
def exported(take_backend, tmp_path_factory):
    """One take made by `generate`, then exported by `export TASK_ID --out FILE.zip`."""
    backend, tmp_path = take_backend, tmp_path_factory.mktemp("exported")
    env = env_for(backend, tmp_path / "data")
    made = run_cli("generate", "--prompt", PROMPT, "--image", ASTRONAUT, "--seed", "7", "--fit", "pad", "--json", env=env)
    assert made.returncode == 0, made.stderr
    task_id = json.loads(made.stdout)["task_id"]
    out = tmp_path / "my take.zip"
    done = run_cli("export", task_id, "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    return env, task_id, out


def uploaded_image(backend, task_id: str) -> bytes:
    return backend.fetch_image(backend.task(task_id).image_url)


def test_an_exported_take_holds_its_video_image_and_what_made_it(exported):
    env, task_id, out = exported
    with zipfile.ZipFile(out) as zf:
        names = sorted(zf.namelist())
        folder = names[0].split("/")[0]
        assert names == [f"{folder}/{name}" for name in ("image.jpg", "take.json", "video.mp4")]
        record = json.loads(zf.read(f"{folder}/take.json"))
        assert zf.read(f"{folder}/video.mp4")[4:8] == b"ftyp"  # an MP4
    assert record["task_id"] == task_id and record["model"] == "wavespeed-ai/SkyReels-V1"
    assert record["prompt"] == PROMPT  # as typed: the prefix is a setting of its own
    assert record["fps_prefix"] is True and record["seed"] == 7 and record["fit"] == "pad"
    assert record["made_at"].endswith("Z")


def test_generate_from_an_export_makes_the_same_submit_with_the_same_image_bytes(exported, take_backend):
    env, task_id, out = exported
    backend = take_backend
    with zipfile.ZipFile(out) as zf:
        kept_jpeg = zf.read(next(name for name in zf.namelist() if name.endswith("image.jpg")))
    before = backend.tasks_created
    again = run_cli("generate", "--from", str(out), "--json", env=env)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["status"] == "done" and result["seed"] == 7
    assert backend.tasks_created == before + 1
    first, second = backend.task(task_id), backend.task(result["task_id"])
    assert second.prompt == first.prompt == "FPS-24, " + PROMPT
    assert second.seed == first.seed == 7
    assert uploaded_image(backend, result["task_id"]) == uploaded_image(backend, task_id) == kept_jpeg
    store = open_store(Path(env["SKYREELS_DATA_DIR"]))
    assert store.by_task(result["task_id"]).fit == "pad"  # its framing, recorded again


def test_generate_from_a_take_json_beside_its_image_makes_the_same_submit(exported, take_backend, tmp_path):
    env, task_id, out = exported
    backend = take_backend
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(unpacked)
    take_json = next(unpacked.glob("*/take.json"))
    again = run_cli("generate", "--from", str(take_json), "--seed", "8", "--json", env=env)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["seed"] == 8  # a seed given beside --from is the one used
    assert uploaded_image(backend, result["task_id"]) == uploaded_image(backend, task_id)


# --- bad zips: one sentence each, nothing sent ---------------------------------------------


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _good_members(exported_zip: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(exported_zip) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _with_record(members: dict[str, bytes], **changes) -> dict[str, bytes]:
    name = next(n for n in members if n.endswith("take.json"))
    record = {**json.loads(members[name]), **changes}
    return {**members, name: json.dumps(record).encode()}


def _renamed(members: dict[str, bytes], old_end: str, new_name: str) -> dict[str, bytes]:
    return {(new_name if name.endswith(old_end) else name): data for name, data in members.items()}


def _image(members: dict[str, bytes], data: bytes) -> dict[str, bytes]:
    return {name: (data if name.endswith("image.jpg") else value) for name, value in members.items()}


BAD_ZIPS = {
    "not a zip": (lambda m, p: p.write_bytes(b"PK\x03\x04 but not really a zip at all"), "not a zip file"),
    "too large": (lambda m, p: os.truncate(_zip(p, m), 61 * 1000 * 1000), "at most 60 MB"),
    "an entry outside its folder": (lambda m, p: _zip(p, {**m, "../evil.sh": b"rm -rf ~"}), "outside its folder"),
    "an absolute entry": (lambda m, p: _zip(p, _renamed(m, "video.mp4", "/etc/video.mp4")), "outside its folder"),
    "a missing member": (lambda m, p: _zip(p, {n: d for n, d in m.items() if not n.endswith("video.mp4")}), "no video.mp4"),
    "an extra member": (lambda m, p: _zip(p, {**m, next(iter(m)).split("/")[0] + "/notes.txt": b"hi"}), "notes.txt"),
    "two folders": (lambda m, p: _zip(p, _renamed(m, "video.mp4", "other/video.mp4")), "more than one folder"),
    "no take marker": (lambda m, p: _zip(p, _with_record(m, format="something-else")), "not an export of this app"),
    "an unknown model": (lambda m, p: _zip(p, _with_record(m, model="someone/other-model")), "someone/other-model"),
    "a bad seed": (lambda m, p: _zip(p, _with_record(m, seed=-5)), "seed must be a whole number"),
    "a seed that is text": (lambda m, p: _zip(p, _with_record(m, seed="7")), "seed must be a whole number"),
    "a prompt too long": (lambda m, p: _zip(p, _with_record(m, prompt="x" * 2001)), "at most 2000"),
    "an image not of the model's frames": (
        lambda m, p: _zip(p, _with_record(_image(m, jpeg_bytes(photo(640, 480))), image_sha256=None)), "not one of"),
    "a damaged image": (lambda m, p: _zip(p, _with_record(_image(m, jpeg_bytes(photo(720, 720))[:4000]), image_sha256=None)),
                        "not a readable JPEG"),
    "an image changed after export": (lambda m, p: _zip(p, _image(m, jpeg_bytes(photo(720, 720)))), "changed after export"),
}


@pytest.mark.parametrize("kind", list(BAD_ZIPS))
def test_a_bad_zip_is_refused_with_a_sentence_and_no_request(exported, take_backend, tmp_path, kind):
    env, _, out = exported
    make, sentence = BAD_ZIPS[kind]
    backend = take_backend
    bad = tmp_path / "bad.zip"
    make(_good_members(out), bad)
    before = sum(backend.counts.values())
    refused = run_cli("generate", "--from", str(bad), "--json", env=env)
    assert refused.returncode == 2, refused.stderr
    assert sentence in refused.stderr and "Traceback" not in refused.stderr
    assert sum(backend.counts.values()) == before  # not one request: no upload, no submit


def test_from_with_a_prompt_of_its_own_is_refused_before_any_request(exported, take_backend):
    env, _, out = exported
    backend = take_backend
    before = sum(backend.counts.values())
    refused = run_cli("generate", "--from", str(out), "--prompt", "something else", env=env)
    assert refused.returncode == 2 and "leave out --prompt" in refused.stderr
    assert sum(backend.counts.values()) == before


def test_export_of_an_unknown_run_says_how_to_find_one(backend, tmp_path):
    done = run_cli("export", "no-such-task", "--out", str(tmp_path / "x.zip"), env=env_for(backend, tmp_path / "data"))
    assert done.returncode == 2 and "`python -m skyreels_demo runs` lists them" in done.stderr


# --- runs found by prompt words and kept ---------------------------------------------------


def _done_run(store: RunStore, prompt: str, seed: int = 1, **fields):
    run = store.create(prompt=prompt, seed=seed, mode="preview", api_host="h", model=SKYREELS_V1.name, **fields)
    return store.update(run.id, status=RunStatus.DONE, finished_at=time.time())


def test_runs_lists_only_kept_runs_and_runs_with_every_word(tmp_path):
    data = tmp_path / "data"
    store = open_store(data)
    waves = _done_run(store, "FPS-24, a man WAVES at the sea", seed=11)
    _done_run(store, "FPS-24, a man waves and smiles at the sea", seed=12)
    _done_run(store, "FPS-24, a cat blinks 100%_sure", seed=13)
    store.keep(waves.id)
    env = clean_env(SKYREELS_DATA_DIR=str(data))
    found = run_cli("runs", "--find", "waves", "sea", "--json", env=env)
    assert sorted(row["seed"] for row in json.loads(found.stdout)) == [11, 12]
    kept = run_cli("runs", "--find", "waves", "--kept", env=env)
    assert "★ FPS-24, a man WAVES" in kept.stdout and "smiles" not in kept.stdout
    # A typed % or _ is looked for as it is, not as a wildcard.
    assert [r["seed"] for r in json.loads(run_cli("runs", "--find", "0%_s", "--json", env=env).stdout)] == [13]
    assert json.loads(run_cli("runs", "--find", "%", "--kept", "--json", env=env).stdout) == []


# --- retention ------------------------------------------------------------------------------


def test_a_kept_take_is_never_pruned_but_counts_against_the_budget(settings):
    store = RunStore(settings.runs_db)
    settings.videos_dir.mkdir(parents=True)
    settings.images_dir.mkdir(parents=True)
    old = time.time() - 90 * 86400  # far past the age limit
    saved = {"kept": old, "other": old, "recent": time.time() - 2 * 3600, "fresh": time.time()}
    paths = {}
    for name, finished_at in saved.items():
        video, image = settings.videos_dir / f"{name}.mp4", settings.images_dir / f"{name}.jpg"
        video.write_bytes(b"v" * 400_000)
        image.write_bytes(b"i" * 100_000)
        run = _done_run(store, name)
        store.update(run.id, video_path=str(video), image_path=str(image), finished_at=finished_at)
        paths[name] = (run, video, image)
    store.keep(paths["kept"][0].id)
    # 2 MB on disk, a 0.9 MB budget: the kept take's 0.5 MB still counts, so once the old take's
    # files are gone the recent one's go too, young as it is; the one saved just now stays.
    pruned = prune(replace(settings, disk_budget_mb=0.9), store)
    assert paths["kept"][1].exists() and paths["kept"][2].exists()
    assert not any(path.exists() for name in ("other", "recent") for path in paths[name][1:])
    assert paths["fresh"][1].exists() and paths["fresh"][2].exists()
    assert pruned.files == 4 and pruned.kept_bytes == disk_use(settings) > 1_000_000


# --- share links ----------------------------------------------------------------------------


def test_share_tokens_are_random_their_own_and_dead_once_withdrawn(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    run = _done_run(store, "FPS-24, a woman smiles")
    video = tmp_path / "v.mp4"
    video.write_bytes(b"mp4")
    run = store.update(run.id, video_path=str(video), task_id="task-1")
    token = takes.share(store, run)
    assert takes.is_token(token) and token not in (run.id, run.task_id)
    assert takes.share(store, run) == token  # one live link per take
    assert takes.shared_take(store, token).id == run.id
    assert takes.shared_take(store, token, sharing=False) is None
    for wrong in ("", "short", token[:-1] + ("A" if token[-1] != "A" else "B"), token + "x", run.id, "' OR 1=1 --xxxxxxxxxx", None, 7):
        assert takes.shared_take(store, wrong) is None
    assert store.withdraw_shares(run.id) == 1
    assert takes.shared_take(store, token) is None
    fresh = takes.share(store, run)
    assert fresh != token and takes.shared_take(store, token) is None and takes.shared_take(store, fresh).id == run.id
    assert len({takes.new_token() for _ in range(1000)}) == 1000


def test_differences_say_the_words_added_and_dropped_and_the_seeds():
    store = RunStore(":memory:")
    first = _done_run(store, "FPS-24, a woman smiles at the camera", seed=7)
    second = _done_run(store, "FPS-24, a woman slowly smiles at the sea", seed=8, fit="pad")
    lines = differences.in_words([first, second], SKYREELS_V1)
    assert "Take 2 (seed 8) adds “slowly”, “sea” and drops “camera”, against take 1." in lines
    assert "Seeds: 7 (take 1), 8 (take 2)." in lines
    assert "Framing: cropped to the frame (take 1), the whole picture (take 2)." in lines


class _Request:
    """What a Gradio request looks like to a handler: headers, a client, no query."""

    headers = {"host": "127.0.0.1:7860"}
    client = type("Client", (), {"host": "127.0.0.1"})()
    query_params: dict = {}
    url = "http://127.0.0.1:7860/"


def test_in_shared_mode_only_the_takes_own_visitor_can_share_keep_export_or_withdraw_it(backend, tmp_path):
    settings = settings_for(backend, tmp_path / "data", shared=True)
    from skyreels_demo.studio.studio import Studio

    studio = Studio(settings, SKYREELS_V1)
    try:
        owner, stranger = "a" * 32, "b" * 32
        run = _done_run(studio.store, "FPS-24, my secret prompt", visitor=owner)
        video = settings.videos_dir / "t.mp4"
        video.parent.mkdir(parents=True)
        video.write_bytes(b"mp4")
        image = settings.images_dir / "t.jpg"
        image.parent.mkdir(parents=True)
        image.write_bytes(jpeg_bytes(photo(720, 720)))
        run = studio.store.update(run.id, video_path=str(video), image_path=str(image), task_id="task-x")
        handlers = TakeHandlers(PageContext(settings, studio, lambda request, profile=None: Requester(LOCAL)))
        # Each is refused with the sentence beside the button, and changes nothing.
        for attempt in (
            lambda: handlers.share(run.id, stranger, _Request()),
            lambda: handlers.withdraw(run.id, stranger, _Request()),
            lambda: handlers.keep(run.id, stranger, "", False, [], _Request()),
            lambda: handlers.download(run.id, stranger, _Request()),
            lambda: handlers.share(run.id, None, _Request()),
        ):
            *outputs, said = attempt()
            assert NOT_YOURS in said and all(output.get("value") is None for output in outputs)
        assert studio.store.live_share(run.id) is None and not studio.store.get(run.id).kept
        compared = handlers.compare([run.id, run.id], stranger, _Request())
        assert "<video" not in compared and "secret" not in compared
        link = handlers.share(run.id, owner, _Request())[0]["value"]
        assert link.startswith("http://127.0.0.1:7860/?take=")
        assert handlers.history(stranger, "", False, [], _Request())[0] == []  # and none of theirs in History
    finally:
        studio.close()
