"""Gradio's surface as a stranger calls it: oversized values in every input of every event, and a
server file named as the picture. What the app keeps, and whether anyone else is still served.

Run from the repository: `python bench/bench_open_inputs.py` (about a minute on two cores), or
`--root PATH` to measure another checkout (an older commit, for a before-and-after) the same way.
It launches `python app.py` from that checkout in shared mode with the offline preview, under the
loopback guard, then:
- `sessions` page sessions each send ~0.9 MB to every input that is not a text box, of every
  event that has one (public or private), one input a call, through the queue's join, and the table gives the
  answers, the app's RSS before, right after and 10 s later (what it keeps);
- one call to /generate names `/proc/self/environ` as the picture; the table says whether a
  copy of it (the owner's key is in it) appeared in Gradio's upload folder, and how long
  /gradio_api/info then takes to answer (8 s at most).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_app import app_env, free_port, http_ok, loopback_only, markdown_table  # noqa: E402

OWNER_KEY = "bench-owner-key-not-secret-4242"


def commit(root: Path) -> str:
    answer = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return answer.stdout.strip() or "?"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def launch(root: Path, data: Path, uploads: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    # The guard's module puts this checkout on sys.path: the measured checkout goes in front of it.
    guard = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); from bench_app import loopback_only; loopback_only(); "
        f"sys.path.insert(0, {str(root)!r}); "
    )
    env = app_env(
        PYTHONPATH=str(root), GRADIO_SERVER_PORT=str(port), SKYREELS_DATA_DIR=str(data), SKYREELS_SHARED="1",
        GRADIO_TEMP_DIR=str(uploads), WAVESPEED_API_KEY=OWNER_KEY, WAVESPEED_BASE_URL=f"http://127.0.0.1:{free_port()}",
    )
    log = open(data / "app.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-c", guard + "import runpy; sys.argv = ['app.py']; runpy.run_path('app.py', run_name='__main__')"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while not http_ok(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the app at {root} did not start: see {data / 'app.log'}")
        time.sleep(0.2)
    return process, url


def oversized(url: str, sessions: int) -> Counter:
    config = requests.get(url + "config", timeout=10).json()
    kinds = {c["id"]: c.get("type") for c in config["components"]}
    answers: Counter = Counter()
    blob = "x" * 900_000
    with requests.Session() as http:
        for session in range(sessions):
            for dependency in config["dependencies"]:
                inputs = [kinds.get(i) for i in dependency.get("inputs", [])]
                if not inputs or all(kind == "textbox" for kind in inputs):
                    continue
                for position, kind in enumerate(inputs):
                    if kind == "textbox":
                        continue
                    # One input at a time, so each body stays under the door's 1 MB limit.
                    data = [blob if i == position else None for i in range(len(inputs))]
                    body = {"data": data, "fn_index": dependency["id"], "session_hash": f"bench{session}"}
                    try:
                        answer = http.post(url + "gradio_api/queue/join", data=json.dumps(body), timeout=30)
                        answers[answer.status_code] += 1
                    except requests.RequestException:
                        answers["no answer"] += 1
    return answers


def named_file(url: str, uploads: Path) -> tuple[str, bool, str]:
    body = {"data": ["a cat", {"path": "/proc/self/environ", "meta": {"_type": "gradio.FileData"}}, 7, False, "16:9", ""]}
    try:
        status = str(requests.post(url + "gradio_api/call/generate", json=body, timeout=8).status_code)
    except requests.RequestException:
        status = "no answer"
    time.sleep(2)  # the copy, if Gradio makes one, is written while the event starts
    copied = any(OWNER_KEY.encode() in p.read_bytes() for p in uploads.rglob("*") if p.is_file() and p.stat().st_size < 1 << 20)
    started = time.monotonic()
    try:
        requests.get(url + "gradio_api/info", timeout=8)
        info = f"{time.monotonic() - started:.2f} s"
    except requests.RequestException:
        info = "no answer in 8 s"
    return status, copied, info


def measure(root: Path, sessions: int) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="bench-inputs-") as scratch:
        data, uploads = Path(scratch) / "data", Path(scratch) / "uploads"
        data.mkdir()
        process, url = launch(root, data, uploads)
        try:
            before = rss_mb(process.pid)
            answers = oversized(url, sessions)
            right_after = rss_mb(process.pid)
            time.sleep(10)
            kept = rss_mb(process.pid)
            status, copied, info = named_file(url, uploads)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    calls = sum(answers.values())
    shown = ", ".join(f"{code}: {n}" for code, n in sorted(answers.items(), key=str))
    return [
        commit(root), str(calls), shown, f"+{right_after - before:.0f} MB", f"+{kept - before:.0f} MB",
        status, "yes" if copied else "no", info,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", action="append", type=Path, help="a checkout to measure (repeatable; default: this one)")
    parser.add_argument("--sessions", type=int, default=20, help="page sessions sending oversized values (default 20)")
    args = parser.parse_args()
    loopback_only()
    roots = args.root or [HERE.parent]
    rows = [measure(root.resolve(), args.sessions) for root in roots]
    print(f"{args.sessions} sessions x every event with a non-text input, ~0.9 MB each; then /proc/self/environ named as the picture\n")
    print(markdown_table(
        ["commit", "calls", "answers", "RSS right after", "RSS kept (10 s later)", "/proc/self/environ call",
         "owner's key copied?", "/gradio_api/info then"],
        rows,
    ))


if __name__ == "__main__":
    main()
