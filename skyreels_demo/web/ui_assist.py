"""Help before a run: the frame the model will see, a prompt written from the picture, a pasted
key checked, and how long a run usually takes here."""

from __future__ import annotations

import logging

import gradio as gr

from skyreels_demo import images
from skyreels_demo.studio.account import check_key
from skyreels_demo.errors import StudioError
from skyreels_demo.web.page_input import UNEXPECTED, fit_choice, picture, text
from skyreels_demo.studio.prompts import suggest_prompt
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.store.records import Mode
from skyreels_demo.web.status_board import duration, price_line
from skyreels_demo.web.ui_context import PageContext

log = logging.getLogger(__name__)


class AssistHandlers:
    """Handlers that help before a run."""

    def __init__(self, context: PageContext) -> None:
        self.settings = context.settings
        self.studio = context.studio
        self.model = context.studio.model
        self.requester = context.requester

    def show_prepared(self, image_path: str | None, fit: str):
        """The frame the model will receive, as soon as an image is chosen (a file: an address,
        which the page never sends, is fetched for no preview)."""
        if not image_path or not isinstance(image_path, str):
            return None, ""
        try:
            prepared = images.prepare(image_path, fit=fit_choice(fit), frames=self.model.frames)
        except StudioError as exc:
            return None, f"⚠️ {exc.sentence}"
        except Exception:
            log.exception("preparing a preview frame failed")
            return None, f"⚠️ {UNEXPECTED}"
        notes = " ".join(prepared.notes)
        return prepared.to_pil(), f"{notes} Upload size: {len(prepared.data) // 1024} KB.".strip()

    def suggest_prompt(
        self,
        image: str | None,
        idea: str | None = None,
        api_key: str | None = None,
        request: gr.Request = None,
        profile: gr.OAuthProfile | None = None,
    ) -> str:
        """Write a SkyReels V1 prompt from a still image, ready to edit; no video is made.

        Args:
            image: The still image to describe (JPEG, PNG, WebP, GIF, BMP or TIFF), as an https address or a data URI.
            idea: An optional short idea to steer the prompt, like "she laughs" or "slow dolly in".
            api_key: Your own WaveSpeed API key (optional: without it the app's key or its offline preview is used).

        Returns:
            A prompt of one or two sentences: who is in the frame, their expression and motion, the camera and the light.
        """
        if picture(image) is None:
            raise gr.Error("Add an image first: the prompt is written from the picture.", print_exception=False)
        try:
            ask = RunRequest(text(idea), picture(image), api_key=text(api_key) or None, requester=self.requester(request, profile))
            suggestion = suggest_prompt(self.studio, ask)
        except StudioError as exc:
            raise gr.Error(exc.sentence, print_exception=False) from None
        except Exception:
            log.exception("writing a prompt failed")
            raise gr.Error(UNEXPECTED, print_exception=False) from None
        if suggestion.is_preview:
            # The page takes the "[Offline preview suggestion]" tag out of the box (ui_polish) and
            # says it here instead; an API client keeps the marked text.
            gr.Info(
                "Offline preview: a stand-in prompt, a placeholder written on this machine from the "
                "picture's light and shape (no vision model looks at it without a key). Edit it, or "
                "add a WaveSpeed key for one written from what the picture shows."
            )
        return suggestion.text

    def check_key(self, api_key: str | None, request: gr.Request = None) -> tuple[str, str]:
        """Whether a pasted key works and what it pays for, before anything is spent."""
        key = text(api_key).strip()
        if not key:
            return "", self.price_now()
        who = self.requester(request, None).key
        try:
            self.studio.key_refusals.check(who)  # not even a balance check once cut off
        except StudioError as exc:
            return f"⚠️ {exc.sentence}", self.price_now()
        result = check_key(self.settings, key, self.model)
        if result.refused:
            self.studio.key_refusals.refused(who)
        mark = "✓" if result.ok else "⚠️"
        if not result.ok:
            return f"{mark} {result.sentence}", self.price_now()
        return f"{mark} {result.sentence}", price_line(self.settings, self.model, own_key=True, price=result.price)

    def price_now(self) -> str:
        """What a video costs on the owner's key now, as WaveSpeed answers it (the page's line)."""
        return price_line(self.settings, self.model, price=self.studio.prices.owner(self.model))

    def expectations(self) -> str:
        """How long a run usually takes here, learned from the runs this app has made."""
        mode = self.studio.access.default_mode
        expected = self.studio.expectation(mode)
        typical = expected.queue_s + expected.processing_s
        if expected.samples:
            basis = "from the last run" if expected.samples == 1 else f"from the last {expected.samples} runs"
        else:
            basis = "a first estimate"
        what = "An offline preview" if mode == Mode.PREVIEW else f"A {self.model.title} video"
        return (
            f"{what} usually takes about {duration(typical)} here ({basis}). Stop ends the wait; "
            + ("a task already sent still runs and is paid for, and " if mode == Mode.API else "")
            + "its video is saved to History."
        )

