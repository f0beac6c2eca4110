"""The offline preview as the entry points start it: the built-in backend, on first use.

The app and the command line hand an `OfflinePreview` to `Studio` as its `start_preview`; the
first run with no key starts the server on a loopback port and gets its base URL. Each process
has its own server on the one data directory; a run one of them made is followed by that one
while it serves (`made_elsewhere`), by any of them once it has stopped. Importing the
server (FastAPI, uvicorn, PyAV) waits until then, so a run on a real key never pays for it.
"""

from __future__ import annotations

import threading

from skyreels_demo.config import Settings
from skyreels_demo.models import ModelSpec


class OfflinePreview:
    def __init__(self, settings: Settings, model: ModelSpec) -> None:
        self.settings = settings
        self.model = model
        self._lock = threading.Lock()
        self._backend = None

    def __call__(self) -> str:
        """Start the server if it is not running yet; return its base URL."""
        with self._lock:
            if self._backend is None:
                from skyreels_demo.local_api import LocalBackend, TaskTiming

                queue_s, processing_s = self.settings.preview_timing
                self._backend = LocalBackend(
                    timing=TaskTiming(queue_s=queue_s, processing_s=processing_s),
                    data_dir=self.settings.preview_dir,
                    models=(self.model,),
                    render=self.settings.preview_renders,
                ).start()
            return self._backend.base_url

    def made_elsewhere(self, task_id: str) -> bool:
        """Whether another process's offline preview made this task and still serves it (a
        command line's, on the same data directory): that process follows it, this one does not."""
        self()  # ours answers for every task no live backend holds
        return self._backend.made_elsewhere(task_id)

    def stop(self) -> None:
        with self._lock:
            if self._backend is not None:
                self._backend.stop()
                self._backend = None

    def __enter__(self) -> "OfflinePreview":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
