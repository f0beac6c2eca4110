"""Animation frames a page asks for, and its renderer's busy time, idle and while it waits.

Gradio's status tracker (one per component an event updates) redraws its timer on every
animation frame while its event is pending, whether or not the timer is shown, and one
unmounted while pending (the page's own loader, as it opens) never stops; since 427d9b8 the
app's page hands those frames to a 100 ms timer (gradio_compat.FRAME_PACING_HEAD), and the bare
page is Gradio as shipped. This counts the page's requestAnimationFrame calls per second (an
init script counts them) and the renderer main thread's busy time (Chrome's Performance.getMetrics, TaskDuration) over one window, for:

1. a bare Gradio page (a textbox, a button and a second textbox), idle: Gradio alone;
2. the app's page, idle, after its opening events;
3. the app's page waiting on a run (the video is being made);
4. the app's page waiting on a film (two shots, the first being made), while another visitor's
   run (its tab closed) is still being made: until 6311d71 the Film tab's three storyboard events
   (its price, its rows, how each shot starts), fired by the shot boxes' `change`, could then fire
   each other over and over, the page busy and asking the app about 15 times a second; one event
   draws them now.

    python bench/bench_page_frames.py [--rounds 3] [--seconds 6]

Rounds alternate the four, each in a fresh browser context. Everything is on loopback behind
the guard (bench_app.loopback_only); the app runs its offline preview with no key, with tasks
long enough that the window ends before them, and slots for all of them at once (no page waits in
line).
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

from bench_app import GUARD, ROOT, AppProcess, app_env, http_ok, loopback_only, machine, markdown_table  # noqa: E402
from tests.conftest import (  # noqa: E402
    CHROMIUM, CHROMIUM_ARGS, fill_in, free_port, write_storyboard,
)

COUNT_FRAMES = """
window.__frames = 0;
const askFrame = window.requestAnimationFrame.bind(window);
window.requestAnimationFrame = (callback) => { window.__frames += 1; return askFrame(callback); };
"""

BARE_GRADIO = """
import gradio as gr
with gr.Blocks() as demo:
    said = gr.Textbox(label="Words")
    go = gr.Button("Echo")
    echoed = gr.Textbox(label="Echoed")
    go.click(lambda words: words, said, echoed)
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), ssr_mode=False, quiet=True)
"""

CASES = ("bare Gradio page, idle", "the app's page, idle", "waiting on a run", "waiting on a film")


def window(page, cdp, seconds: float) -> tuple[float, float]:
    """Animation frames asked for per second, and the renderer's busy share of one core."""
    busy = lambda: next(m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] == "TaskDuration")  # noqa: E731
    frames, task, started = page.evaluate("() => window.__frames"), busy(), time.monotonic()
    time.sleep(seconds)  # the measured window: the page left alone, as a visitor's tab is
    took = time.monotonic() - started
    return (page.evaluate("() => window.__frames") - frames) / took, (busy() - task) / took


def one(browser, url: str, case: str, seconds: float) -> tuple[float, float]:
    context = browser.new_context(reduced_motion="reduce", viewport={"width": 1366, "height": 768})
    context.add_init_script(COUNT_FRAMES)
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        if case == CASES[0]:
            page.get_by_role("button", name="Echo", exact=True).wait_for()
        else:
            page.get_by_role("button", name="Generate", exact=True).wait_for()
        if case == CASES[2]:
            fill_in(page, "a woman smiles")
            page.get_by_role("button", name="Generate", exact=True).click()
            page.get_by_text("Making the video").first.wait_for()
        elif case == CASES[3]:
            write_storyboard(page)
            page.get_by_role("button", name="Make the film").click()
            page.locator("#film-status").get_by_text("Shot 1").first.wait_for()
        time.sleep(1.0)  # the page's own last work after what it waited for
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        return window(page, cdp, seconds)
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    loopback_only()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0]
    measured: dict[str, list[tuple[float, float]]] = {case: [] for case in CASES}
    from playwright.sync_api import sync_playwright

    port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", GUARD + BARE_GRADIO, str(port)], cwd=ROOT, env=app_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bare_url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 90
        while not http_ok(bare_url):
            if bare.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the bare Gradio page did not answer within 90 s")
            time.sleep(0.2)
        with tempfile.TemporaryDirectory(prefix="bench-frames-") as folder, AppProcess(
            # Slots for every round's run and film at once: a page never waits in line here.
            Path(folder) / "app", SKYREELS_PREVIEW_TIMING="0.2,120", SKYREELS_MAX_CONCURRENT_TASKS="16",
            SKYREELS_VISITOR_RUNS_PER_HOUR="1000",
        ) as app, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for _ in range(args.rounds):
                    for case in CASES:
                        measured[case].append(one(browser, bare_url if case == CASES[0] else app.url, case, args.seconds))
            finally:
                browser.close()
    finally:
        bare.terminate()
        bare.wait(timeout=15)
    print(f"# Animation frames a page asks for (commit {commit}; {machine()}; load average {load:.1f} at start)\n")
    rows = [
        [case, f"{statistics.median(f for f, _ in values):.0f}", f"{100 * statistics.median(b for _, b in values):.1f}%", len(values)]
        for case, values in measured.items()
    ]
    print(markdown_table([f"page, {args.seconds:g} s window", "median animation frames asked per s",
                          "median renderer busy (of one core)", "pages"], rows))
    print("\nA page drawing at 60 frames a second asks for about 60; each of Gradio's timers left running adds"
          " about as many (the app's page paces them on a 100 ms timer instead).")


if __name__ == "__main__":
    main()
