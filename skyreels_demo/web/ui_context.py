"""What every group of page handlers is given: the studio, the settings, who is asking, and the
page's Stop switches. Handlers get it explicitly (composition), never from a host class."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Callable

import gradio as gr

from skyreels_demo.config import Settings
from skyreels_demo.web.page_input import session_of
from skyreels_demo.studio.studio import Studio
from skyreels_demo.studio.visitors import Requester


class StopSwitches:
    """Stop switches of live runs, by the page session that started them: Stop ends them all."""

    def __init__(self) -> None:
        self._switches: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()

    def hold(self, request: gr.Request | None, stop: threading.Event) -> str:
        session = session_of(request) or uuid.uuid4().hex  # no page session: only closing stops it
        with self._lock:
            self._switches.setdefault(session, set()).add(stop)
        return session

    def release(self, session: str, stop: threading.Event) -> None:
        with self._lock:
            switches = self._switches.get(session, set())
            switches.discard(stop)
            if not switches:
                self._switches.pop(session, None)

    def stop_all(self, request: gr.Request | None) -> None:
        with self._lock:
            switches = list(self._switches.get(session_of(request) or "", ()))
        for switch in switches:
            switch.set()


@dataclass(frozen=True)
class PageContext:
    settings: Settings
    studio: Studio
    # Who is asking, as the server decides it (visitors.py): from the request and the signed-in profile.
    requester: Callable[[gr.Request | None, gr.OAuthProfile | None], Requester]
    stops: StopSwitches = field(default_factory=StopSwitches)
