"""Shared fixtures: a real local backend on loopback, settings pointed at it, pictures to use,
the app launched as `python app.py`, and Chromium to visit it with."""

from __future__ import annotations

import atexit
import contextlib
import io
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# This test process's scratch folder, removed when it exits, and the temporary folder of everything
# it runs: what a library leaves in the temporary folder (gradio_client an empty folder per file it
# downloads, a killed app its offline preview's data) goes with it, not into the machine's /tmp.
# pytest's own tmp_path folders stay where they were (the last three runs kept, to look into).
os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
SCRATCH = Path(tempfile.mkdtemp(prefix="skyreels-tests-"))
atexit.register(shutil.rmtree, SCRATCH, True)
(SCRATCH / "tmp").mkdir()
os.environ["TMPDIR"] = tempfile.tempdir = str(SCRATCH / "tmp")
# Gradio's folder (uploads, its copies of outputs), this test process's own, and each launched
# app's own below it: Gradio names a file by its content and deletes every file an app made when
# that app stops, so apps sharing <tmp>/gradio deleted each other's copy of the same picture
# mid-run ("There is no file at /tmp/gradio/<sha>/photo.jpg"). Set before Gradio is imported.
GRADIO_FOLDER = SCRATCH / "gradio"
GRADIO_FOLDER.mkdir()
os.environ["GRADIO_TEMP_DIR"] = str(GRADIO_FOLDER)
_app_folders = itertools.count(1)

import av
import numpy as np
import pytest
import requests
from PIL import Image

from skyreels_demo.config import Settings
from skyreels_demo.local_api import LocalBackend, TaskTiming
from skyreels_demo.store.runs import RunStore
from skyreels_demo.studio.studio import Studio
from skyreels_demo.models import SKYREELS_V1

from .warm_start import WarmStarter

ROOT = Path(__file__).resolve().parent.parent
FAST = TaskTiming(queue_s=0.2, processing_s=0.6)
ASTRONAUT = str(ROOT / "assets" / "astronaut.png")
CHELSEA = str(ROOT / "assets" / "chelsea.png")


def photo(width: int = 1200, height: int = 800, seed: int = 0) -> Image.Image:
    """A photo-like picture: smooth colour gradients with a little grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 128 + 100 * np.sin(x / width * 3.1 + seed)
    g = 128 + 100 * np.cos(y / height * 2.7)
    b = 128 + 80 * np.sin((x + y) / (width + height) * 5.0)
    pixels = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def jpeg_bytes(image: Image.Image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, **save)
    return buffer.getvalue()


@pytest.fixture
def photo_path(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_bytes(photo()))
    return path


def renders(request) -> bool:
    """Whether the test is marked `renders` (it looks at the video: its frames, size or picture),
    so its local backend renders each task's real preview rather than handing out its stock clip."""
    return request.node.get_closest_marker("renders") is not None


@pytest.fixture
def backend(request):
    """The local backend on loopback, its tasks quick. It hands every task one small shared clip
    unless the test is marked `renders`, which spares the suite a real 97-frame H.264 render
    (~1 s of a core) per run."""
    with LocalBackend(timing=FAST, render=renders(request)) as server:
        yield server


def settings_for(backend: LocalBackend, data_dir: Path, **overrides) -> Settings:
    values = dict(
        api_key="test-key-not-secret",
        base_url=backend.base_url,
        data_dir=data_dir,
        poll="0.1",
        # WaveSpeed's check rule a tenth as long (first check 0.2 s after submit, then 0.5 s
        # apart): whole runs in under a second, the rule's ratios kept (test_schedule.py has
        # it at its real length too).
        check_scale=0.1,
        # Tests make runs back to back; the line's pacing has tests of its own (test_line.py).
        submits_per_minute=600.0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(backend, tmp_path) -> Settings:
    return settings_for(backend, tmp_path / "data")


@pytest.fixture
def studio(settings):
    studio = Studio(settings, SKYREELS_V1)
    yield studio
    studio.close()


def video_facts(path: Path | str) -> dict:
    """What a person would check about a video: it opens, its frames, rate, size and codec."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return dict(
            frames=frames,
            fps=float(stream.average_rate),
            size=(stream.codec_context.width, stream.codec_context.height),
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child process, without any key or base URL of the developer's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAVESPEED_", "SKYREELS_", "GRADIO_"))}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env["SKYREELS_SUBMITS_PER_MINUTE"] = "600"  # back-to-back test runs; test_line.py paces
    env["SKYREELS_CHECK_SCALE"] = "0.1"  # checks 0.2 s after submit, 0.5 s apart (as conftest.settings_for)
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "skyreels_demo", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,  # a CLI never waits on the developer's terminal
    )


def wait_for(predicate, timeout: float = 30.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"gave up after {timeout}s waiting for {predicate}")


def open_store(data_dir: Path) -> RunStore:
    return RunStore(data_dir / "runs.sqlite3")


def wait_until_serving(url: str, process: subprocess.Popen, log_path: Path | None = None, *,
                       timeout: float = 60, every: float = 0.2) -> None:
    """Until `url` answers 200; if the process exits first, fail with the end of its log."""

    def up() -> bool:
        if process.poll() is not None:
            logged = log_path.read_text(errors="replace")[-3000:] if log_path else ""
            raise AssertionError(f"{process.args} exited {process.returncode}: {logged}")
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_for(up, timeout=timeout, every=every)


def launch_here(blocks, settings: Settings) -> None:
    """The app's Blocks launched in this test's process on loopback, serving files from where the
    app keeps them, as the app allows them (page.mount_options)."""
    from skyreels_demo.web.page import mount_options  # Gradio: only the tests that launch pay for it

    blocks.launch(
        prevent_thread_lock=True, server_name="127.0.0.1", ssr_mode=False, quiet=True,
        allowed_paths=mount_options(settings)["allowed_paths"],
    )


# --- the app as `python app.py` --------------------------------------------------------------

_warm: list[WarmStarter] = []


def warm_starter() -> WarmStarter:
    """This test process's warm interpreter (warm_start.py), started on its first launch."""
    if not _warm:
        # Gradio's folder at import; each launch's own replaces it in the forked app.
        _warm.append(WarmStarter(ROOT, clean_env(GRADIO_TEMP_DIR=str(GRADIO_FOLDER))))
        atexit.register(_warm[0].close)
    return _warm[0]



class LaunchedApp:
    """`python app.py` on a loopback port, its data in `data_dir`, answering once constructed.

    As a context manager it is stopped on leaving the block.
    """

    def __init__(self, data_dir: Path, log_path: Path | None = None, *, port: int | None = None, **env: str) -> None:
        self.data_dir = data_dir
        self.log_path = log_path or data_dir / "app.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            # The same port again when asked: the same origin, the same browser storage.
            self._start(port or free_port(), env)
            try:
                wait_until_serving(self.url, self.process, self.log_path)
                return
            except AssertionError:
                self.stop()
                # A free port can be taken by another test process (xdist's other worker) between
                # free_port() and the app's bind: another port, then, unless this one was asked for.
                taken = "address already in use" in self.log_path.read_text(errors="replace")[-3000:]
                if port is not None or not taken or attempt == 2:
                    raise

    def _start(self, port: int, env: dict[str, str]) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}/"
        self._log = open(self.log_path, "ab")
        # Gradio's folder, the app's own unless the test names one: where it writes uploads and
        # copies (a forked app reads it again where Gradio read it at import: warm_start.py).
        env = clean_env(**{
            "GRADIO_TEMP_DIR": str(GRADIO_FOLDER / f"app-{next(_app_folders)}"),
            "GRADIO_SERVER_PORT": str(self.port),
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "SKYREELS_DATA_DIR": str(self.data_dir),
            "GRADIO_ANALYTICS_ENABLED": "False",
            **env,
        })
        # `python app.py` forked from a warm interpreter: the same app, its imports done.
        self.process = warm_starter().launch("app.py", ROOT, env, self.log_path)

    def __enter__(self) -> LaunchedApp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def peak_memory_kb(self) -> int:
        """The app process's peak resident memory so far (VmHWM), in kB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=15)
        self._log.close()


# --- Chromium, as a visitor ------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# What a page shows after a click travels through Gradio's queue and the server: on two cores
# shared by four workers and Chromium that can pass Playwright's 5 s default (a continued
# shot's frame once did). Every `expect` waits up to 20 s for what it checks; none waits longer
# when the page is quick.
EXPECT_TIMEOUT_MS = 20_000
# And every other step (a click, a full-page screenshot of a page playing its video) up to 60 s
# unless a test sets its own: a screenshot once passed Playwright's 30 s at load average 11.
DEFAULT_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import expect, sync_playwright  # only the browser tests pay for the import

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: scripts/test.sh installs Debian's chromium package.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield StillVisitors(browser)
        browser.close()


class StillVisitors:
    """The browser, each new visitor asking for reduced motion (as the system setting does)
    unless a test says otherwise. The page then honours it (ui.css): Gradio's spinners and
    pulsing bars stand still, which takes a page waiting on a run from about a quarter of a core
    of Chromium to a tenth, measured on this machine, on two cores shared by three workers."""

    def __init__(self, browser) -> None:
        self._browser = browser

    def new_context(self, **options):
        options.setdefault("reduced_motion", "reduce")
        context = self._browser.new_context(**options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        return context

    def new_page(self, **options):
        options.setdefault("reduced_motion", "reduce")
        page = self._browser.new_page(**options)
        page.set_default_timeout(DEFAULT_TIMEOUT_MS)
        return page

    def __getattr__(self, name: str):
        return getattr(self._browser, name)


@contextlib.contextmanager
def browser_page(browser, url: str) -> Iterator:
    """One visitor: a fresh browser context (its own storage, so its own private id)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(url)
        page.get_by_role("button", name="Generate", exact=True).wait_for()
        yield page
    finally:
        context.close()


FILM_SHOTS = ("a woman smiles at the camera", "she turns to look out of the window")


def write_storyboard(page, shots=FILM_SHOTS, image: str = ASTRONAUT) -> None:
    """On the Film tab: the first shot's picture and each shot's prompt, ready for "Make the film"."""
    page.get_by_role("tab", name="Film").click()
    page.get_by_role("button", name="Make the film").wait_for()
    page.locator("#film-image input[type=file]").set_input_files(image)
    for number, prompt in enumerate(shots, start=1):
        page.get_by_label(f"Shot {number}", exact=True).fill(prompt)


def fill_in(page, prompt: str, image: str = ASTRONAUT) -> None:
    """Drop in a picture, wait for its prepared frame, type a prompt."""
    from playwright.sync_api import expect

    page.locator("input[type=file]").first.set_input_files(image)
    # The prepared frame and its upload size appear as soon as the image is chosen.
    expect(page.get_by_text("Upload size")).to_be_visible(timeout=15_000)
    page.get_by_label("Prompt", exact=True).fill(prompt)


def make_run_in_browser(page, prompt: str, image: str = ASTRONAUT, *, wait_for_video: bool = True) -> None:
    """What a visitor does: drop in a picture, type a prompt, press Generate (and watch it play)."""
    fill_in(page, prompt, image)
    page.get_by_role("button", name="Generate", exact=True).click()
    if wait_for_video:
        page.locator("#result-video video").wait_for(timeout=60_000)


BROWSER_FIXTURES = {"browser"}

# The longest files, longest first (from `--durations`): scripts/test.sh runs the suite on its
# workers a file at a time (pytest-xdist's loadfile), and a long file started last would leave
# one worker idle while the other finishes it.
LONGEST_FIRST = (
    "test_films.py",
    "test_browser_polish.py",
    "test_line.py",
    "test_film_takes.py",
    "test_pleasant.py",
    "test_agents.py",
    "test_browser_takes.py",
    "test_cli.py",
    "test_browser.py",
    "test_browser_visitors.py",
    "test_closed_by_default.py",
    "test_client.py",
    "test_resume.py",
    "test_shared_space.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    """The longest files first (the same order on every worker); and a test that starts Chromium
    must say so, or `-m "not browser"` would not mean what it says."""
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
    unmarked = [
        item.nodeid
        for item in items
        if BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("browser") is None
    ]
    if unmarked:
        raise pytest.UsageError("tests that start Chromium without @pytest.mark.browser: " + ", ".join(unmarked))
