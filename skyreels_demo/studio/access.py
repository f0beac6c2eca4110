"""Who pays for a run and where its requests go.

A key a visitor typed pays for their own runs; otherwise the owner's key (WAVESPEED_API_KEY)
does; with no key at all, runs go to the offline preview. The preview server itself is started
by the entry points (the app, the command line), which hand over a function that starts it on
first use and returns its base URL: nothing here imports it.

A visitor's key lives only in this process's memory, in their run's client, for as long as the
run needs it (and in the log mask for as long: keys.in_use).
"""

from __future__ import annotations

import threading
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from skyreels_demo.wavespeed.client import WaveSpeedClient
from skyreels_demo.config import Settings
from skyreels_demo.errors import BadInput
from skyreels_demo.studio.keys import checked_key, in_use, remember
from skyreels_demo.store.records import KeySource, Mode, Run

PREVIEW_HOST = "offline-preview"
# The preview accepts any key; this one says what it is in any log of the preview server.
PREVIEW_TOKEN = "offline-preview"


@dataclass(frozen=True)
class Backend:
    """Where a run's requests go, and whose key pays."""

    mode: Mode
    host: str
    key_source: KeySource
    client: WaveSpeedClient

    @property
    def is_preview(self) -> bool:
        return self.mode is Mode.PREVIEW

    @property
    def is_visitors(self) -> bool:
        """Paid by a key the visitor typed: its client is theirs alone, closed after their run."""
        return self.key_source is KeySource.VISITOR


class Access:
    """Chooses a backend for each run and keeps the clients that runs in flight need."""

    def __init__(self, settings: Settings, *, start_preview: Callable[[], str] | None = None) -> None:
        self.settings = settings
        self._start_preview = start_preview
        self._lock = threading.Lock()
        self._owner: WaveSpeedClient | None = None
        self._preview: WaveSpeedClient | None = None
        self._visitors: dict[str, WaveSpeedClient] = {}  # run id -> client; memory only
        self._masked: dict[str, ExitStack] = {}  # run id -> its key's hold on the log mask
        if settings.api_key:
            remember(settings.api_key)  # masked in every log line

    @property
    def api_host(self) -> str:
        return urlsplit(self.settings.base_url).netloc or self.settings.base_url

    @property
    def default_mode(self) -> Mode:
        """What a run with no typed key uses."""
        return Mode.API if self.settings.has_key else Mode.PREVIEW

    def host_for(self, mode: Mode) -> str:
        return PREVIEW_HOST if mode == Mode.PREVIEW else self.api_host

    def backend_for(self, api_key: str | None = None) -> Backend:
        """A visitor's key, else the owner's key, else the built-in offline preview.

        A visitor's key that cannot be a key is refused (`BadInput`) before any request."""
        key = checked_key(api_key)
        if key:
            client = WaveSpeedClient(self.settings.with_key(key))
            return Backend(Mode.API, self.api_host, KeySource.VISITOR, client)
        if self.settings.has_key:
            with self._lock:
                if self._owner is None:
                    self._owner = WaveSpeedClient(self.settings)
            return Backend(Mode.API, self.api_host, KeySource.OWNER, self._owner)
        return Backend(Mode.PREVIEW, PREVIEW_HOST, KeySource.PREVIEW, self.preview_client())

    def preview_client(self) -> WaveSpeedClient:
        with self._lock:
            if self._preview is None:
                if self._start_preview is None:
                    raise RuntimeError("no offline preview was configured for this process")
                base_url = self._start_preview()
                settings = self.settings.with_key(PREVIEW_TOKEN).with_base_url(base_url)
                self._preview = WaveSpeedClient(settings)
            return self._preview

    # -- clients for runs in flight --

    def keep(self, run_id: str, backend: Backend) -> None:
        """Remember a visitor's client while their run may still need following."""
        if backend.is_visitors:
            masked = ExitStack()
            masked.enter_context(in_use(backend.client.settings.api_key))  # masked while kept
            with self._lock:
                self._visitors[run_id] = backend.client
                previous = self._masked.pop(run_id, None)
                self._masked[run_id] = masked
            if previous is not None:
                previous.close()

    def forget(self, run_id: str) -> None:
        """Drop a visitor's key from memory (and from the log mask): their run no longer needs it."""
        with self._lock:
            client = self._visitors.pop(run_id, None)
            masked = self._masked.pop(run_id, None)
        if client is not None:
            client.close()
        if masked is not None:
            masked.close()

    def client_with_key(self, run: Run, api_key: str) -> WaveSpeedClient:
        """A client for a visitor's own run, from the key they pasted again (memory only)."""
        if run.key_source != KeySource.VISITOR or run.mode != Mode.API or run.api_host != self.api_host:
            raise BadInput("This run was not made with a key of your own, so there is nothing to paste.")
        key = checked_key(api_key)
        if not key:
            raise BadInput("Paste the WaveSpeed key this run was made with, then press Finish.")
        return WaveSpeedClient(self.settings.with_key(key))

    def client_for_run(self, run: Run) -> WaveSpeedClient | None:
        """The client that can follow a stored run, or None (a visitor's key is not kept)."""
        if run.mode == Mode.PREVIEW:
            return self.preview_client()
        with self._lock:
            client = self._visitors.get(run.id)
        if client is not None:
            return client
        if run.key_source != KeySource.VISITOR and self.settings.has_key and run.api_host == self.api_host:
            return self.backend_for(None).client
        return None

    def made_elsewhere(self, run: Run) -> bool:
        """A preview run another process made on its own offline preview, which still serves:
        that process follows it to its video, this one leaves it alone."""
        if run.mode != Mode.PREVIEW or not run.task_id:
            return False
        ask = getattr(self._start_preview, "made_elsewhere", None)
        return bool(ask(run.task_id)) if ask is not None else False

    def close(self) -> None:
        with self._lock:
            clients = [c for c in (self._owner, self._preview, *self._visitors.values()) if c]
            self._visitors.clear()
            masks = list(self._masked.values())
            self._masked.clear()
        for client in clients:
            client.close()
        for masked in masks:
            masked.close()
