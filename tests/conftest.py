"""Shared fixtures: a real local backend on loopback, settings pointed at it, pictures to use."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from skyreels_demo.config import Settings
from skyreels_demo.local_api import LocalBackend, TaskTiming
from skyreels_demo.runs import RunStore
from skyreels_demo.studio import Studio

ROOT = Path(__file__).resolve().parent.parent
FAST = TaskTiming(queue_s=0.2, processing_s=0.6)


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


@pytest.fixture
def backend():
    with LocalBackend(timing=FAST) as server:
        yield server


def settings_for(backend: LocalBackend, data_dir: Path, **overrides) -> Settings:
    values = dict(
        api_key="test-key-not-secret",
        base_url=backend.base_url,
        data_dir=data_dir,
        poll="0.1",
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(backend, tmp_path) -> Settings:
    return settings_for(backend, tmp_path / "data")


@pytest.fixture
def studio(settings):
    studio = Studio(settings)
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


BROWSER_FIXTURES = {"browser", "chromium"}


def pytest_collection_modifyitems(config, items) -> None:
    """A test that starts Chromium must say so, or `-m "not browser"` would not mean what it says."""
    unmarked = [
        item.nodeid
        for item in items
        if BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("browser") is None
    ]
    if unmarked:
        raise pytest.UsageError("tests that start Chromium without @pytest.mark.browser: " + ", ".join(unmarked))
