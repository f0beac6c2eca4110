"""`python -m skyreels_demo`, run as a person runs it: a real process, real loopback servers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skyreels_demo.local_api import LocalBackend, TaskTiming

from .conftest import ASTRONAUT, ROOT, clean_env, free_port, run_cli, video_facts, wait_until_serving



@pytest.fixture
def local_api_process():
    """`python -m skyreels_demo local-api --port N`, as a separate server process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "skyreels_demo", "local-api", "--port", str(port),
         "--queue-seconds", "0.2", "--processing-seconds", "0.8"],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(url + "/", process, timeout=30, every=0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_generate_against_a_running_local_api_prints_json_with_a_playable_video(local_api_process, tmp_path):
    env = clean_env(
        WAVESPEED_BASE_URL=local_api_process,
        WAVESPEED_API_KEY="anything",
        SKYREELS_DATA_DIR=str(tmp_path / "data"),
    )
    done = run_cli("generate", "--prompt", "a woman smiles at the camera", "--image", ASTRONAUT,
                   "--seed", "7", "--json", env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "done" and result["seed"] == 7 and result["task_id"]
    assert result["video_url"].startswith(local_api_process)
    assert {"upload_s", "total_s"} <= set(result["timings"])
    assert video_facts(result["video_path"])["frames"] == 97
    assert "Submitted task" in done.stderr and "offline preview" not in done.stderr


def test_generate_with_no_key_runs_on_the_built_in_backend_and_says_so(tmp_path):
    env = clean_env(SKYREELS_DATA_DIR=str(tmp_path / "data"), SKYREELS_PREVIEW_TIMING="0.2,0.8")
    done = run_cli("generate", "--prompt", "a woman smiles", "--image", ASTRONAUT, "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert "offline preview" in done.stderr
    facts = video_facts(json.loads(done.stdout)["video_path"])
    assert facts["size"] == (720, 720) and facts["fps"] == 24.0


@pytest.fixture
def watched_backend():
    with LocalBackend(timing=TaskTiming(0.2, 0.6), render=False) as server:
        yield server


def env_for(backend: LocalBackend, tmp_path, **extra) -> dict[str, str]:
    values = dict(
        WAVESPEED_BASE_URL=backend.base_url,
        WAVESPEED_API_KEY="anything",
        SKYREELS_DATA_DIR=str(tmp_path / "data"),
    )
    return clean_env(**{**values, **extra})


def test_a_file_that_is_not_an_image_exits_2_before_any_request(watched_backend, tmp_path):
    fake = tmp_path / "portrait.jpg"
    fake.write_text("<html>not a picture</html>")
    done = run_cli("generate", "--prompt", "a man waves", "--image", str(fake), env=env_for(watched_backend, tmp_path))
    assert done.returncode == 2
    assert "not a picture" in done.stderr and "Traceback" not in done.stderr
    assert sum(watched_backend.counts.values()) == 0


@pytest.mark.parametrize("seed", ["-5", "2147483648", "abc"])
def test_a_seed_out_of_range_exits_2_before_any_request(watched_backend, tmp_path, seed):
    done = run_cli("generate", "--prompt", "a man waves", "--image", ASTRONAUT, "--seed", seed,
                   env=env_for(watched_backend, tmp_path))
    assert done.returncode == 2 and "seed" in done.stderr
    assert sum(watched_backend.counts.values()) == 0


def test_a_missing_image_file_exits_2(watched_backend, tmp_path):
    done = run_cli("generate", "--prompt", "a man waves", "--image", str(tmp_path / "nope.png"),
                   env=env_for(watched_backend, tmp_path))
    assert done.returncode == 2 and "no image file" in done.stderr


def test_a_failed_task_exits_4_with_its_sentence(watched_backend, tmp_path):
    watched_backend.faults.fail_next_task(code=1200, message="Content flagged")
    done = run_cli("generate", "--prompt", "a man waves", "--image", ASTRONAUT, "--json",
                   env=env_for(watched_backend, tmp_path))
    assert done.returncode == 4
    assert json.loads(done.stdout)["status"] == "failed"
    assert "content moderation" in done.stderr


def test_giving_up_waiting_exits_5_and_the_task_is_recorded(watched_backend, tmp_path):
    watched_backend.faults.hang_next_task()
    env = env_for(watched_backend, tmp_path)
    done = run_cli("generate", "--prompt", "a man waves", "--image", ASTRONAUT, "--timeout", "1.5", "--json", env=env)
    assert done.returncode == 5
    result = json.loads(done.stdout)
    assert result["status"] in ("submitted", "queued", "processing") and result["task_id"]
    listed = run_cli("runs", env=env)
    row = next(line for line in listed.stdout.splitlines() if result["task_id"] in line)
    assert row.split()[0] == result["status"]  # recorded, not finished: the JSON says History's word


def test_a_wrong_key_exits_3(tmp_path):
    with LocalBackend(api_key="the-right-one", timing=TaskTiming(0.2, 0.6)) as guarded:
        done = run_cli("generate", "--prompt", "a man waves", "--image", ASTRONAUT,
                       env=env_for(guarded, tmp_path, WAVESPEED_API_KEY="not-the-right-one"))
        # The sentence says what to do (the library's AuthError, as the CLI prints it).
        assert done.returncode == 3 and "key was refused: check the key" in done.stderr
        assert "not-the-right-one" not in done.stderr
        assert guarded.tasks_created == 0


# --- the words of the command line (issue 30) ----------------------------------------------------


@pytest.mark.parametrize("seed, sentence", [
    ("abc", "The seed must be a whole number from -1 to 2147483647, not 'abc'."),
    ("99999999999", "The seed must be from -1 to 2147483647; 99999999999 is out of range."),
    ("-7", "The seed must be from -1 to 2147483647; -7 is out of range."),
])
def test_a_films_seed_is_checked_as_generates_before_any_request(watched_backend, tmp_path, seed, sentence):
    env = env_for(watched_backend, tmp_path)
    film = run_cli("film", "--image", ASTRONAUT, "--shot", "one", "--shot", "two", "--seed", seed, "--yes", env=env)
    assert film.returncode == 2 and sentence in film.stderr and "invalid literal" not in film.stderr
    generate = run_cli("generate", "--prompt", "one", "--image", ASTRONAUT, "--seed", seed, env=env)
    assert generate.returncode == 2 and sentence in generate.stderr  # the same sentence
    assert sum(watched_backend.counts.values()) == 0


def test_offline_lines_say_what_happened_in_order_and_json_names_the_saved_file(tmp_path):
    # Its lines are what it checks: each run gets the preview's stock clip, not a render.
    env = clean_env(SKYREELS_DATA_DIR=str(tmp_path / "data"), SKYREELS_PREVIEW_TIMING="0.1,0.3", SKYREELS_PREVIEW_RENDERS="0")
    made = run_cli("generate", "--prompt", "a woman smiles", "--image", ASTRONAUT, "--json", env=env)
    assert made.returncode == 0, made.stderr
    result = json.loads(made.stdout)
    # The preview's server ends with the process: the file is named, not its dead address.
    assert result["video_url"] == Path(result["video_path"]).resolve().as_uri()

    nothing = run_cli("runs", "--find", "zebra", env=env)
    assert nothing.returncode == 0 and "No run matched" in nothing.stderr and "No runs yet" not in nothing.stderr
    assert "smiles" in run_cli("runs", "--find", "smiles", env=env).stdout

    film = run_cli("film", "--image", ASTRONAUT, "--shot", "she smiles", "--shot", "she waves", "--seed", "5", env=env)
    assert film.returncode == 0, film.stderr
    lines = film.stderr.splitlines()
    assert "waiting to start" not in film.stderr
    saved = [n for n, line in enumerate(lines) if line.startswith("Shot 1 of 2: saved")]
    second = [n for n, line in enumerate(lines) if line.startswith("Shot 2 of 2")]
    assert saved and second and saved[0] < second[0], lines

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat blinks\n")
    sweep = run_cli("sweep", "--image", ASTRONAUT, "--prompts", str(prompts), "--seeds", "3,4", env=env)
    assert sweep.returncode == 0, sweep.stderr
    cells = [line for line in sweep.stderr.splitlines() if "seed 3:" in line or "seed 4:" in line]
    assert len(cells) == 2 and all("'a cat blinks', seed" in line for line in cells), cells


def test_every_option_says_what_it_does_and_its_default():
    from skyreels_demo.cli import build_parser
    from skyreels_demo.models import SKYREELS_V1

    parser = build_parser(SKYREELS_V1)
    commands = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    for name, command in commands.choices.items():
        for action in command._actions:
            assert action.help, (name, action.dest)
    shown = subprocess.run([sys.executable, "-m", "skyreels_demo", "local-api", "--help"], cwd=ROOT, env=clean_env(),
                           capture_output=True, text=True, timeout=60)
    assert "(default: 8765)" in shown.stdout and "(default: 127.0.0.1)" in shown.stdout


def test_local_api_says_how_the_official_sdk_points_at_it():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "skyreels_demo", "local-api", "--port", str(port)],
        cwd=ROOT, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = process.stderr.readline()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert f'Client(api_key="...", base_url="http://127.0.0.1:{port}")' in first
    assert f"WAVESPEED_BASE_URL=http://127.0.0.1:{port}" in first
