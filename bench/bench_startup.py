"""Start-up: `python app.py` until its first HTTP 200, beside the cost of importing gradio alone.

    python bench/bench_startup.py [--starts 5]

Each start is a fresh process with a fresh data directory and no key (the offline preview, the
default; its backend starts on the first run, not at start-up), on a free loopback port with
Gradio's telemetry off. One untimed start first warms the disk cache, so every timed start
sees the same warm cache. Then `-X importtime` shows where import time goes inside the
package, to catch heavy work at import.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_app import (  # noqa: E402
    GUARD,
    ROOT,
    app_env,
    free_port,
    guarded_app,
    http_ok,
    loopback_only,
    machine,
    markdown_table,
    met,
    seconds,
)

TARGET_START_S = 5.0
# Import work in one of our own modules above this is worth a look.
HEAVY_IMPORT_S = 0.05


def time_start(data_dir: Path) -> float:
    """Seconds from launching `python app.py` to its first HTTP 200 on /."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = app_env(GRADIO_SERVER_PORT=str(port), SKYREELS_DATA_DIR=str(data_dir))
    started = time.time()
    process = subprocess.Popen(
        [sys.executable, "-c", guarded_app()], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while not http_ok(url, timeout=0.5):
            if process.poll() is not None:
                raise SystemExit(f"python app.py exited with {process.returncode} before answering")
            if time.time() - started > 120:
                raise SystemExit("python app.py did not answer within 120 s")
            time.sleep(0.02)
        return time.time() - started
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def time_import(module: str) -> float:
    """Seconds from launching a fresh interpreter to `import module` returning in it.

    The child reports the wall-clock moment its import returned, so the interpreter's tear-down
    (a few hundred ms after importing gradio) is not counted, just as it is not in a start.
    """
    launched = time.time()
    done = subprocess.run(
        [sys.executable, "-c", GUARD + f"import {module}, time; print(repr(time.time()))"],
        cwd=ROOT, env=app_env(), check=True, capture_output=True, text=True,
    )
    return float(done.stdout.strip().splitlines()[-1]) - launched


def import_profile() -> list[tuple[str, float, float]]:
    """(module, self s, cumulative s) for every module `import skyreels_demo.web.page` loads."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", GUARD + "import skyreels_demo.web.page"],
        cwd=ROOT, env=app_env(), capture_output=True, text=True, check=True,
    )
    rows = []
    for line in run.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if found:
            rows.append((found[4], int(found[1]) / 1e6, int(found[2]) / 1e6))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=5, help="timed starts of each kind (default 5)")
    args = parser.parse_args()
    loopback_only()

    starts, gradio, package = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp_name:
        tmp = Path(tmp_name)
        time_start(tmp / "warm")  # untimed: warms the disk cache
        for i in range(args.starts):
            # Interleaved, so a busy moment on the machine touches every kind alike.
            gradio.append(time_import("gradio"))
            package.append(time_import("skyreels_demo.web.page"))
            starts.append(time_start(tmp / f"start-{i}"))
    profile = import_profile()

    median_start, median_gradio = statistics.median(starts), statistics.median(gradio)
    print(f"Start-up, {args.starts} starts each ({machine()})\n")
    rows = [
        ("python app.py → first HTTP 200", seconds(median_start), seconds(min(starts)), seconds(max(starts)),
         f"median ≤ {TARGET_START_S:g} s", met(median_start <= TARGET_START_S)),
        ("python -c 'import gradio', until the import returns", seconds(median_gradio), seconds(min(gradio)),
         seconds(max(gradio)), "–", "–"),
        ("python -c 'import skyreels_demo.web.page' (gradio + the app's code), likewise", seconds(statistics.median(package)),
         seconds(min(package)), seconds(max(package)), "–", "–"),
        ("app start beyond importing gradio (derived: difference of the medians)", seconds(median_start - median_gradio),
         "", "", "–", "–"),
    ]
    print(markdown_table(("figure", "median", "min", "max", "target", "met?"), rows))

    ours = [(name, own, total) for name, own, total in profile if name.split(".")[0] == "skyreels_demo"]
    heavy = [name for name, own, _ in ours if own > HEAVY_IMPORT_S]
    print("\nImport time of the app's own modules (`-X importtime`, one run; self = the module's own code):\n")
    print(markdown_table(
        ("module", "self", "with what it imports"),
        [(name, seconds(own), seconds(total)) for name, own, total in sorted(ours, key=lambda r: -r[1])],
    ))
    print(
        "\nNo module of the app spends more than "
        f"{HEAVY_IMPORT_S * 1000:.0f} ms of its own at import." if not heavy
        else f"\nHeavy import-time work in: {', '.join(heavy)}."
    )


if __name__ == "__main__":
    main()
