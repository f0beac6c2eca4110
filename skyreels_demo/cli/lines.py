"""What the command line says: status lines on stderr (every new stage, a heartbeat while
waiting), the exit codes, and the notice that a run without a key is the offline preview."""

from __future__ import annotations

import time
from typing import TextIO

from skyreels_demo.studio.events import Event, Processing, Queued

EXIT_OK, EXIT_BAD_INPUT, EXIT_API, EXIT_TASK_FAILED, EXIT_GAVE_UP = 0, 2, 3, 4, 5
PREVIEW_NOTICE = (
    "No WAVESPEED_API_KEY is set: running on the built-in offline preview (a camera move over "
    "your image, not SkyReels output). Set WAVESPEED_API_KEY to make real videos."
)


class StatusLines:
    """Events as status lines: every new stage, and a heartbeat while waiting."""

    def __init__(self, out: TextIO, every_s: float = 5.0) -> None:
        self.out = out
        self.every_s = every_s
        self._last_kind: type | None = None
        self._last_at = 0.0
        self._live = out.isatty()

    def show(self, event: Event) -> None:
        waiting = isinstance(event, (Queued, Processing))
        now = time.monotonic()
        if waiting and self._live:
            # On a terminal, one line that counts up in place.
            self.out.write(f"\r\033[K[{event.elapsed_s:5.1f}s] {event.message}")
            self.out.flush()
            self._last_kind = type(event)
            return
        if waiting and type(event) is self._last_kind and now - self._last_at < self.every_s:
            return
        if self._live and self._last_kind in (Queued, Processing):
            self.out.write("\n")
        self.out.write(f"[{event.elapsed_s:5.1f}s] {event.message}\n")
        self.out.flush()
        self._last_kind, self._last_at = type(event), now

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
