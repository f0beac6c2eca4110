"""What an app nobody is using costs: its CPU while idle, as shipped and with Gradio's queue at
its own pace (it looks for work every 1 ms on Linux; gradio_compat.pace_queue makes it 20 ms).

    python bench/bench_idle.py [--windows 5] [--seconds 10]

Both apps run side by side (`python app.py` behind the loopback guard, no key: the offline
preview), so a machine that gets busier moves both alike; each window reads both apps' CPU over
the same seconds. Nothing is sent to either app after its first page answers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_app import ROOT, AppProcess, loopback_only, machine, markdown_table  # noqa: E402


def main() -> None:
    loopback_only()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0]
    spent: dict[str, list[float]] = {"shipped": [], "gradio": []}
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as folder:
        with AppProcess(Path(folder) / "shipped") as shipped, AppProcess(Path(folder) / "gradio", gradio_pace=True) as gradio:
            apps = {"shipped": shipped, "gradio": gradio}
            time.sleep(args.seconds)  # past their start's last work (the follower's first pass, the first prune)
            for _ in range(args.windows):
                before = {name: app.cpu_s for name, app in apps.items()}
                time.sleep(args.seconds)  # the measured window: nothing but the apps' own idle
                for name, app in apps.items():
                    spent[name].append(app.cpu_s - before[name])
    print(f"# An idle app (commit {commit}; {machine()}; load average {load:.1f} at start)\n")
    rows = []
    for name, label in (("shipped", "as shipped (queue looks for work every 20 ms)"),
                        ("gradio", "Gradio's own pace (every 1 ms)")):
        per_window = statistics.median(spent[name])
        rows.append([label, f"{per_window:.2f} s", f"{100 * per_window / args.seconds:.1f}%", len(spent[name])])
    print(markdown_table([f"idle app, {args.seconds:g} s windows", "median CPU per window", "of one core", "windows"], rows))
    ratio = statistics.median(spent["gradio"]) / max(statistics.median(spent["shipped"]), 1e-9)
    print(f"\nGradio's pace costs {ratio:.1f}x the shipped idle CPU (medians, side by side).")


if __name__ == "__main__":
    main()
