"""The steps every kind of run takes, each in its own order: open it within its caps, fetch its
picture, upload it, submit once, look for a lost answer; and what runs usually take.

A video's walk (studio.py, `Studio.generate`) and a prompt's (prompts.py) take these steps;
they are apart from the studio's walk and its unwatched runs so each reads on its own. `RunSteps` is the part of `Studio` that holds them: it uses the parts the studio
builds (named below), nothing else.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from skyreels_demo import images
from skyreels_demo.config import Settings, is_loopback_url
from skyreels_demo.errors import AuthError, Stopped, SubmitUnconfirmed
from skyreels_demo.images.remote import ImageAddress
from skyreels_demo.models import CheckRule, ModelSpec
from skyreels_demo.status import RunStatus
from skyreels_demo.store.records import Mode, Run
from skyreels_demo.store.retention import forget_image
from skyreels_demo.store.runs import RunStore
from skyreels_demo.studio.access import Access, Backend
from skyreels_demo.studio.caps import limits_for
from skyreels_demo.studio.finisher import Finisher
from skyreels_demo.studio.keys import KeyRefusals, checked_key
from skyreels_demo.studio.recorder import STOPPED_BEFORE_SUBMIT, RunRecorder
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.wavespeed.client import Job
from skyreels_demo.wavespeed.schedule import Ended, Expectation, PollSchedule, schedule_from_setting

log = logging.getLogger(__name__)
FETCH_STOP_CHECK_S = 0.5  # how soon a run waiting for its picture's fetch hears Stop


class RunSteps:
    """The steps of a run, on the parts `Studio.__init__` builds."""

    settings: Settings
    model: ModelSpec
    store: RunStore
    recorder: RunRecorder
    access: Access
    finisher: Finisher
    key_refusals: KeyRefusals

    # -- what runs usually take --

    def expectation(self, mode: Mode | None = None, model: ModelSpec | None = None) -> Expectation:
        """How long this model's runs on this backend usually take, from the store, else a prior."""
        mode = mode or self.access.default_mode
        model = model or self.model
        if mode == Mode.PREVIEW:
            queue_s, processing_s = self.settings.preview_timing
            # The preview keeps to its clock exactly: its end can be aimed at from the start.
            prior = Expectation(queue_s=queue_s, processing_s=processing_s, spread_s=0.5)
        else:
            prior = Expectation.prior(model)
        seen = self.store.durations(model.name, self.access.host_for(mode))
        return Expectation.learn([Ended(*end) for end in seen.ends], prior=prior)

    def check_rule(self, mode: Mode | None = None, model: ModelSpec | None = None) -> CheckRule:
        """The model's rule for checks of a task; on a faster clock only where the settings ask
        for it (tests) and the backend is this machine's (never WaveSpeed's own)."""
        rule = (model or self.model).checks
        local = mode == Mode.PREVIEW or is_loopback_url(self.settings.base_url)
        return rule.scaled(self.settings.check_scale) if local and self.settings.check_scale != 1.0 else rule

    def schedule_for(self, mode: Mode) -> PollSchedule:
        return schedule_from_setting(self.settings.poll, self.expectation(mode), self.check_rule(mode))

    # -- the steps every kind of run shares --

    def open_run(self, request: RunRequest, model: ModelSpec, *, prompt: str, seed: int) -> tuple[Run, Backend]:
        """Record a new run within its caps (or refuse it), before any money is spent."""
        if checked_key(request.api_key):
            self.key_refusals.check(request.requester.key)  # before any request at all
        backend = self.access.backend_for(request.api_key)
        try:
            run = self.recorder.open(
                prompt=prompt,
                seed=seed,
                model=model.name,
                mode=backend.mode,
                api_host=backend.host,
                key_source=backend.key_source,
                requester=request.requester.key,
                visitor=request.visitor,
                sweep=request.sweep,
                within=limits_for(self.settings, backend, request.requester),
                fit=request.fit,
                fps_prefix=request.fps_prefix,
                continued_from=request.continued_from,
                film_id=request.film_id,
                shot=request.shot,
            )
        except BaseException:
            if backend.is_visitors:
                backend.client.close()
            raise
        return run, backend

    def fetch_admitted(self, address: ImageAddress, model: ModelSpec, request: RunRequest) -> images.PreparedImage:
        """The model's frame from a picture named by its address, for a run the caps have just
        admitted (`open_run`): fetched and prepared on the address pool (remote_images.py),
        within its time and size bounds, once for every run that shares the address; Stop ends
        the wait (the fetch itself ends within its bounds)."""
        future = address.fetch(
            lambda data: images.prepare(data, fit=request.fit, frames=model.frames),
            allow_loopback=self.settings.allow_loopback_images,
        )
        while True:
            try:
                return future.result(timeout=FETCH_STOP_CHECK_S)
            except FutureTimeout:
                if request.stop is not None and request.stop.is_set():
                    raise Stopped(STOPPED_BEFORE_SUBMIT) from None

    def hand_over_image(self, run: Run, backend: Backend, source: images.PreparedImage | str) -> tuple[Run, str]:
        """The image's URL for the submit: the prepared frame uploaded, then kept (a run refused
        at the upload, for its key say, keeps nothing), or a URL as given."""
        if isinstance(source, str):
            return self.recorder.image_sent(run, source), source
        url = backend.client.upload(source.data, source.filename, source.content_type)
        path = keep_image(self.settings.images_dir, source)
        run = self.recorder.image_kept(run, source.sha256, path)
        return self.recorder.image_sent(run, url, source.sha256), url

    def launch(
        self,
        run: Run,
        backend: Backend,
        model: ModelSpec,
        inputs: Mapping[str, Any],
        *,
        webhook: str | None = None,
        paced: bool = False,
    ) -> tuple[Run, Job]:
        """Submit once; the task id is durable before anyone hears of it. `paced`: a 429 is
        raised at once, for the line to wait out in view, not retried inside the transport."""
        run = self.recorder.submitting(run)
        job = backend.client.submit(model, inputs, webhook=webhook, paced=paced)
        return self.recorder.submitted(run, job.id), job

    def recover(self, run: Run, backend: Backend, lost: SubmitUnconfirmed) -> tuple[Run, Job]:
        """A submit's answer was lost: the run is `unconfirmed` (durably, first), then its task
        is looked for in the list of predictions (recovery.py) and, found, followed as if the
        answer had come. Not found: `SubmitUnconfirmed` with a sentence saying why not."""
        run = self.recorder.not_submitted(self.store.get(run.id), lost)
        try:
            run = self.finisher.recover(run, backend.client, original=lost.sentence)
        except Exception:  # looking must never turn a maybe-paid run into a refused one
            log.exception("run %s: looking for its lost task failed", run.id)
            raise lost from None
        if run.task_id is None:
            raise SubmitUnconfirmed(
                run.error_message or lost.sentence, status=lost.status, code=lost.code, detail=lost.detail
            ) from None
        return run, backend.client.job(run.task_id)

    def slot_s(self, mode: Mode | None = None) -> float:
        """How long a run usually holds its slot in the line, from upload to saved video: a
        task's queue and making, and a little."""
        expected = self.expectation(mode)
        return expected.queue_s + expected.processing_s + 2.0

    @contextmanager
    def until_submitted(self, run: Run, backend: Backend, request: RunRequest) -> Iterator[Callable[[], None]]:
        """Ends the run as `refused` (or `unconfirmed`, when a submit's answer was lost) if the
        block fails before the function it gives is called, the moment a task id is recorded;
        a visitor's key that WaveSpeed refused is counted against them."""
        handed_over = False

        def submitted() -> None:
            nonlocal handed_over
            handed_over = True

        try:
            yield submitted
        except BaseException as exc:
            if not handed_over:
                ended = self.recorder.not_submitted(run, exc)
                if ended.status == RunStatus.REFUSED and (isinstance(exc, AuthError) or backend.is_visitors):
                    self.forget_image(ended)
            if isinstance(exc, AuthError) and backend.is_visitors:
                self.key_refusals.refused(request.requester.key)
            raise

    def forget_image(self, run: Run) -> None:
        """A run refused for its key (or on a visitor's own key) keeps nothing: its picture goes,
        unless another run or film uses it too."""
        if run.image_path and forget_image(self.store, run.image_path):
            self.store.update(run.id, image_path=None)


def keep_image(images_dir: Path, prepared: images.PreparedImage) -> Path:
    """The prepared JPEG, kept once per distinct picture (written atomically)."""
    path = images_dir / f"{prepared.sha256}.jpg"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{threading.get_ident()}.part")
        tmp.write_bytes(prepared.data)
        tmp.replace(path)
    return path

