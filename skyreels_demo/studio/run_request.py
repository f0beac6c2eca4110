"""What one run is asked to do, as one frozen value, and the checks it passes before any money.

Every kind of run (one take, a variation, a prompt suggestion, a sweep's cell, a film's shot)
is a `RunRequest`: the prompt as typed, the image (a path, bytes, a Pillow image, an http(s) URL
passed on, an `ImageAddress` to fetch once admitted, or an already `PreparedImage`), the seed, the framing, the prompt prefix, the visitor's own key
(memory only), who asks as the server decided it, the browser's History id and a stop switch.
The checks here raise `BadInput` with a sentence; nothing is sent before they pass.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from skyreels_demo import images
from skyreels_demo.images import remote as remote_images
from skyreels_demo.errors import BadInput
from skyreels_demo.models import ModelSpec
from skyreels_demo.studio.visitors import LOCAL, Requester


@dataclass(frozen=True)
class RunRequest:
    prompt: str
    image: Any
    seed: int | float | str | None = -1
    fit: str = "crop"  # "crop" to the model's frame, or "pad" onto a blurred border
    fps_prefix: bool = True  # start the prompt with the model's recommended prefix
    api_key: str | None = field(default=None, repr=False)  # the visitor's own key, memory only
    requester: Requester = Requester(LOCAL)  # who asks, for caps: never from what a client sends
    visitor: str = ""  # the browser's private History id
    stop: threading.Event | None = field(default=None, compare=False)
    deadline_s: float | None = None  # None: the settings' overall deadline
    sweep: str | None = None  # the sweep this run is a cell of
    continued_from: str | None = None  # the run whose frame `image` is (a continued shot)
    film_id: str | None = None  # the film this run is a shot of, and its place there
    shot: int | None = None

    def but(self, **changes: Any) -> "RunRequest":
        """The same request with some fields changed (another seed, the prepared image, ...)."""
        return replace(self, **changes)

    @property
    def own_key(self) -> str | None:
        """The visitor's key as typed, trimmed; None when they gave none."""
        key = (self.api_key or "").strip()
        return key or None


def check_prompt(prompt: str | None, model: ModelSpec) -> str:
    text = (prompt or "").strip() if isinstance(prompt, str) or prompt is None else ""
    if not text:
        raise BadInput("Write a prompt first: describe the people and the motion you want to see.")
    if len(text) > model.max_prompt_chars:
        raise BadInput(f"The prompt is {len(text)} characters long; keep it to {model.max_prompt_chars} or fewer.")
    return text


def choose_seed(seed: int | float | str | None, model: ModelSpec) -> int:
    """A concrete seed: -1 (or nothing) becomes a random one, so every video can be reproduced."""
    value = check_seed(seed, model.seed_range)
    return random.randint(0, model.seed_range[1]) if value == -1 else value


def check_seed(seed: int | float | str | None, seed_range: tuple[int, int]) -> int:
    """The seed asked for as a whole number in `seed_range` (nothing is -1, random), or `BadInput`
    with the one sentence every way in says: the page, the API, MCP and the command line."""
    low, high = seed_range
    if seed is None or seed == "":
        seed = low
    try:
        if isinstance(seed, bool):
            raise ValueError
        value = int(float(seed)) if not isinstance(seed, int) else seed
        if isinstance(seed, float) and not seed.is_integer():
            raise ValueError
        if isinstance(seed, str) and not float(seed).is_integer():
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise BadInput(f"The seed must be a whole number from {low} to {high}, not {seed!r}.") from None
    if not low <= value <= high:
        raise BadInput(f"The seed must be from {low} to {high}; {value} is out of range.")
    return value


def image_source(
    image: Any, fit: str, model: ModelSpec, *, missing: str | None = None, allow_loopback: bool = False
) -> images.PreparedImage | str | remote_images.ImageAddress:
    """The image as the model's frame, an http(s) URL passed on as it is, or an address this
    server fetches itself once the run is admitted (`ImageAddress`); refused if none of these."""
    if image is None or (isinstance(image, str) and not image.strip()):
        raise BadInput(missing or "Add an image first: drop in a photo of the scene to animate.")
    if isinstance(image, images.PreparedImage):
        return image
    if isinstance(image, remote_images.ImageAddress):
        # Refused now if it names a private address outright (no network); fetched only once
        # the caps have admitted its run (Studio.fetch_admitted).
        remote_images.refuse_inward_literal(image.url, allow_loopback=allow_loopback)
        return image
    if isinstance(image, str) and images.is_remote_url(image):
        # Passed on for WaveSpeed to fetch from its own network; an address that names a
        # private one outright (an IP or localhost) is refused, never passed on.
        remote_images.refuse_inward_literal(image, allow_loopback=allow_loopback)
        return image.strip()
    return images.prepare(image, fit=fit, frames=model.frames)
