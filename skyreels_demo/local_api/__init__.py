"""The built-in WaveSpeed-compatible backend: offline preview for the app, a real server for tests.

It speaks the endpoints and envelopes of `wavespeed-api.md` over loopback HTTP, walks each task
through created, processing and completed on a clock, and renders a preview MP4 from the
uploaded image. Fault switches (`LocalBackend.faults`) make it misbehave on purpose, one
request at a time, so the client's retries and error sentences can be tested for real. Tasks,
uploads and renders are kept on disk, so a new backend on the same data directory (on any
port) answers for the tasks of an old one; what is older than seven days goes when it starts.

    from pathlib import Path
    from skyreels_demo.wavespeed.client import WaveSpeedClient
    from skyreels_demo.config import Settings
    from skyreels_demo.local_api import LocalBackend, TaskTiming
    from skyreels_demo.models import MODELS
    from skyreels_demo.wavespeed.schedule import FixedSchedule

    with LocalBackend(timing=TaskTiming(queue_s=0.2, processing_s=0.5)) as backend:
        client = WaveSpeedClient(Settings(api_key="anything", base_url=backend.base_url))
        image_url = client.upload(Path("photo.jpg").read_bytes())
        job = client.submit(MODELS["wavespeed-ai/SkyReels-V1"], {"prompt": "a quiet lake at dawn", "image": image_url, "seed": 42})
        done = list(job.follow(schedule=FixedSchedule(0.2)))[-1]
        client.download(done.video_url, Path("preview.mp4"))

Which module holds what:
    backend.py   LocalBackend: start, stop, serve; creating tasks and making their videos
    server.py    the port bound, uvicorn built and run in a daemon thread until it answers
    fetch.py     fetching a task's image: our own uploads from disk, else loopback HTTP only
    clock.py     TaskTiming and TaskRecord: a task's status read off the clock
    faults.py    Faults: the switches tests arm, and the canned answers they give
    storage.py   tasks, uploads and renders on disk across restarts; seven-day retention
    render.py    the preview MP4 itself, rendered once per distinct image and move
    moves.py     the camera's move over the still, from the seed and the prompt
    limits.py    an account tier's limits (tasks at once, submits a minute), off unless given
    pusher.py    webhooks: a task's end POSTed where its submit asked, signed, with fault switches
    routes/      the HTTP routes, one module per group; `routes/common.py` has what they share
"""

from skyreels_demo.local_api.backend import LocalBackend, serve
from skyreels_demo.local_api.clock import TaskRecord, TaskTiming
from skyreels_demo.local_api.faults import Faults
from skyreels_demo.local_api.limits import Limits

__all__ = ["Faults", "LocalBackend", "Limits", "TaskRecord", "TaskTiming", "serve"]
