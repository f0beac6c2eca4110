"""What the suite's two harness changes save, side by side in one run:

1. An app launch: a cold `python app.py` against one forked from the warm interpreter
   (tests/warm_start.py), each to its first HTTP 200, with the CPU the app process spent by then.
2. A visitor's page, waiting on a run and then showing the finished video: Chromium's CPU over
   10 s each, with and without reduced motion (which the page honours: Gradio's spinners stand
   still, and a finished video waits on its first frame instead of looping by itself).
3. A fresh visitor's page load (a new browser context, as each browser test's visitor), to its
   Generate button and a second after: the CPU of each kind of process it woke, the app's too.
4. What a browser test does to a page once it is loaded: an axe check (test_pleasant's
   serious_violations), a screenshot of the screen and of the whole page, a resize to a
   phone's width, and 10 s of the page left idle: Chromium's CPU and the app's for each.

    python bench/bench_test_harness.py [--launches 5] [--waits 3] [--pages 5] [--acts 5]

Launches alternate cold and warm, and waits alternate motion and reduced, so a machine that
gets busier mid-run moves both columns alike. Everything is on loopback: the app runs its
offline preview with no key, and Chromium visits only the app.
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
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_app import ROOT, machine, markdown_table  # noqa: E402
from tests.conftest import (  # noqa: E402
    CHROMIUM, CHROMIUM_ARGS, LaunchedApp, clean_env, fill_in, free_port, wait_until_serving, warm_starter,
)

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """A process's own user and system CPU so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children_by_parent() -> dict[int, list[int]]:
    """Every process's pid under its parent's, read from /proc as it is now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    return children


def tree_cpu_s(root: int) -> float:
    """CPU of `root` and every process below it (Chromium's renderers, GPU and utility ones)."""
    children = children_by_parent()
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        try:
            total += cpu_s(pid)
        except OSError:
            continue
        todo += children.get(pid, [])
    return total


def launch(how: str, data: Path) -> tuple[float, float]:
    """Seconds to the first 200, and the app's CPU by then."""
    port = free_port()
    env = clean_env(GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", SKYREELS_DATA_DIR=str(data),
                    GRADIO_ANALYTICS_ENABLED="False")
    log = data.parent / f"{data.name}.log"
    started = time.monotonic()
    if how == "cold":
        with open(log, "ab") as out:
            process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    else:
        process = warm_starter().launch("app.py", ROOT, env, log)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", process, log, timeout=120, every=0.02)
        return time.monotonic() - started, cpu_s(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=15)


def tree_cpu_by_kind(root: int) -> dict[str, float]:
    """CPU of each process below `root` (not itself), by kind: Chromium's by its --type
    (a utility by its sub-type), Playwright's driver, and anything else by its program."""
    children = children_by_parent()
    spent: dict[str, float] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        try:
            # Split on spaces too: Chromium's children rewrite their command line as one string.
            words = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split()
            cpu = cpu_s(pid)
        except OSError:
            continue
        if not words:  # ended, not yet waited for: its CPU is its parent's to count
            continue
        flags = dict(word[2:].split("=", 1) for word in words if word.startswith("--") and "=" in word)
        if "chrom" in words[0]:
            kind = "Chromium " + flags.get("utility-sub-type", flags.get("type", "browser")).split(".")[0]
        elif any("playwright" in word for word in words):
            kind = "Playwright's driver"
        else:
            kind = "app" if any("warm_start" in word or "app.py" in word for word in words) else Path(words[0]).name
        spent[kind] = spent.get(kind, 0.0) + cpu
        todo += children.get(pid, [])
    return spent


def page_load(app: LaunchedApp, browser) -> dict[str, float]:
    """CPU by kind of process for one fresh visitor's page load, read before its context closes
    (a renderer that has ended takes its CPU with it)."""
    before = tree_cpu_by_kind(os.getpid())
    context = browser.new_context(reduced_motion="reduce", viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        page.goto(app.url)
        page.get_by_role("button", name="Generate", exact=True).wait_for()
        time.sleep(1.0)  # the page's own last work after its button is drawn, measured too
        after = tree_cpu_by_kind(os.getpid())
    finally:
        context.close()
    return {kind: after[kind] - before.get(kind, 0.0) for kind in after}


def chromium_cpu(app: LaunchedApp) -> float:
    """Everything under this process but itself and the app: Chromium and its driver."""
    return tree_cpu_s(os.getpid()) - cpu_s(os.getpid()) - tree_cpu_s(app.process.pid)


def visitor_page(app: LaunchedApp, browser, motion: str, seconds: float = 10.0) -> tuple[float, float]:
    """Chromium's CPU over `seconds` while one visitor's page waits on a run, then over
    `seconds` while it shows the finished video."""
    context = browser.new_context(reduced_motion=motion, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(app.url)
        page.get_by_role("button", name="Generate", exact=True).wait_for()
        fill_in(page, "a woman smiles")
        page.get_by_role("button", name="Generate", exact=True).click()
        page.get_by_text("Making the video").first.wait_for(timeout=60_000)
        before = chromium_cpu(app)
        time.sleep(seconds)  # the measured interval itself: the page left to wait, as a visitor's would
        waiting = chromium_cpu(app) - before
        video = page.locator("#result-video video")
        video.wait_for(timeout=120_000)
        page.wait_for_function("() => document.querySelector('#result-video video').readyState >= 2")
        before = chromium_cpu(app)
        time.sleep(seconds)  # the measured interval: the finished video on the screen
        return waiting, chromium_cpu(app) - before
    finally:
        context.close()


def page_acts(app: LaunchedApp, browser, folder: Path) -> dict[str, float]:
    """Chromium's CPU and the app's for each thing a test does to a page it has loaded."""
    from tests.test_pleasant import serious_violations

    context = browser.new_context(reduced_motion="reduce", viewport={"width": 1366, "height": 768})
    spent: dict[str, float] = {}
    try:
        page = context.new_page()
        page.goto(app.url)
        page.get_by_role("button", name="Generate", exact=True).wait_for()
        time.sleep(1.0)  # the page's own last work after load, left out of what follows
        acts = (
            ("an axe check", lambda: serious_violations(page)),
            ("a screenshot of the screen", lambda: page.screenshot(path=str(folder / "screen.png"))),
            ("a screenshot of the whole page", lambda: page.screenshot(path=str(folder / "page.png"), full_page=True)),
            ("a resize to a phone's width", lambda: (page.set_viewport_size({"width": 390, "height": 844}),
                                                     page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))"))),
            ("the page idle for 10 s", lambda: time.sleep(10.0)),  # the measured interval itself
        )
        for name, act in acts:
            before = tree_cpu_s(os.getpid()) - cpu_s(os.getpid())
            act()
            spent[name] = tree_cpu_s(os.getpid()) - cpu_s(os.getpid()) - before
    finally:
        context.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--waits", type=int, default=3)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--acts", type=int, default=5)
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0]
    launches: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
    waits: dict[str, list[tuple[float, float]]] = {"no-preference": [], "reduce": []}
    loads: list[dict[str, float]] = []
    acts: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-harness-") as folder:
        root = Path(folder)
        warm_starter()  # its own imports once, before the first timed warm launch
        for number in range(args.launches):
            for how in ("cold", "warm"):
                launches[how].append(launch(how, root / f"{how}-{number}"))
        from playwright.sync_api import sync_playwright

        with LaunchedApp(root / "app", SKYREELS_PREVIEW_TIMING="0.2,12") as app, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for _ in range(args.waits):
                    for motion in waits:
                        waits[motion].append(visitor_page(app, browser, motion))
                for _ in range(args.pages):
                    loads.append(page_load(app, browser))
                for _ in range(args.acts):
                    acts.append(page_acts(app, browser, root))
            finally:
                browser.close()
    print(f"# The suite's harness (commit {commit}; {machine()}; load average {load:.1f} at start)\n")
    if args.launches:
        rows = []
        for how, label in (("cold", "`python app.py`, cold"), ("warm", "forked from the warm interpreter")):
            walls, cpus = zip(*launches[how])
            rows.append([label, f"{statistics.median(walls):.2f} s", f"{statistics.median(cpus):.2f} s", len(walls)])
        print(markdown_table(["app launch to first 200", "median wall", "median app CPU", "launches"], rows))
        cold, warm = (statistics.median(c for _, c in launches[h]) for h in ("cold", "warm"))
        print(f"\nCPU saved per launch: {cold - warm:.2f} s (derived, medians).\n")
    if args.waits:
        rows = [
            [motion, f"{statistics.median(w for w, _ in values):.2f} s", f"{statistics.median(v for _, v in values):.2f} s",
             len(values)]
            for motion, values in waits.items()
        ]
        print(markdown_table(["a visitor's page, 10 s each", "median Chromium CPU, waiting on a run", "showing its video",
                              "pages"], rows))
    if loads:
        kinds = sorted({kind for load in loads for kind in load}, key=lambda k: -statistics.median(load.get(k, 0.0) for load in loads))
        rows = [[kind, f"{statistics.median(load.get(kind, 0.0) for load in loads):.2f} s"] for kind in kinds
                if statistics.median(load.get(kind, 0.0) for load in loads) >= 0.01]
        rows.append(["all", f"{statistics.median(sum(load.values()) for load in loads):.2f} s"])
        print(f"\nA fresh visitor's page load, to its Generate button and 1 s after (medians of {len(loads)}):\n")
        print(markdown_table(["process", "CPU"], rows))

    if acts:
        rows = [[name, f"{statistics.median(act[name] for act in acts):.2f} s"] for name in acts[0]]
        print(f"\nWhat a test does to a loaded page: Chromium's CPU and the app's (medians of {len(acts)} pages):\n")
        print(markdown_table(["act", "CPU"], rows))


if __name__ == "__main__":
    main()
