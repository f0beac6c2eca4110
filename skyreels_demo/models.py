"""The models this studio calls, each with all of its facts in one frozen value.

A second model (SkyReels' own text-to-video, another image-to-video endpoint) is one more
`ModelSpec` here: its endpoint, how its payload is built from the inputs, its frames, and what
it usually costs in time and money. The client, the store, the schedule and the UI read these
facts; none of them writes one down again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from skyreels_demo.errors import BadInput

Payload = dict[str, Any]
# A model's native frames, (width, height) each.
Frames = tuple[tuple[int, int], ...]
# -1 (random) to the top of a signed 32-bit integer, as WaveSpeed's models take seeds.
SEED_RANGE = (-1, 2_147_483_647)


@dataclass(frozen=True)
class DurationPrior:
    """How long a task of this model takes before the store has seen any, in seconds.

    The defaults are a guess for a model nothing is known about."""

    queue_s: float = 5.0
    processing_s: float = 10.0
    spread_s: float = 5.0


PUSH_SAFETY_GAP_S = 15.0  # CheckRule.push_safety_s, unless a test's faster clock scales it


@dataclass(frozen=True)
class CheckRule:
    """How soon a task's result may be asked for (WaveSpeed's "How to get result" page): no
    check sooner than `first_s` after the submit, nor sooner than `apart_s` after the previous
    check of the same task. Image tasks: 2 s apart; video tasks: 5 s."""

    first_s: float = 2.0
    apart_s: float = 2.0
    # Ours, not WaveSpeed's: while a webhook is expected, checks are only a safety net for one
    # that never comes, sparse yet never so sparse that a lost webhook leaves the video waiting
    # longer than this.
    push_safety_s: float = PUSH_SAFETY_GAP_S

    def scaled(self, factor: float) -> "CheckRule":
        """The same rule on a faster clock (tests only: the ratios, and so the rule, still hold)."""
        return CheckRule(self.first_s * factor, self.apart_s * factor, self.push_safety_s * factor)


@dataclass(frozen=True)
class ModelSpec:
    """One WaveSpeed model: where it lives and what it takes."""

    name: str  # WaveSpeed's model id, which is also its route under /api/v3/
    title: str
    build_payload: Callable[["ModelSpec", Mapping[str, Any]], Payload] = field(repr=False)
    price_usd: float = 0.0
    prior: DurationPrior = DurationPrior()
    checks: CheckRule = CheckRule()
    # Video models only: native frames (width, height), frame rate and count.
    frames: Frames = ()
    fps: int = 0
    frame_count: int = 0
    prompt_prefix: str = ""
    seed_range: tuple[int, int] = SEED_RANGE
    max_prompt_chars: int = 2000

    @property
    def path(self) -> str:
        """The submit route, relative to the API's base URL."""
        return f"/api/v3/{self.name}"

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps else 0.0

    @property
    def seed_max(self) -> int:
        return self.seed_range[1]

    def following_seeds(self, first: int, count: int) -> list[int]:
        """`count` seeds from `first`: `first`, `first + 1`, …, wrapping at the top to 0 (the seeds
        of variations, and of a film's shots after its first)."""
        return [(first + n) % (self.seed_max + 1) for n in range(count)]

    @property
    def makes_video(self) -> bool:
        return bool(self.frames)

    def frame_for(self, width: int, height: int) -> tuple[int, int]:
        """The native frame whose aspect is nearest the picture's, on a log scale.

        Nearest on a log scale means the least of the picture is cropped away, so the cut-overs
        fall at the geometric means of neighbouring aspects (for 16:9, 9:16 and 1:1: wider than
        about 1.33:1 is landscape, taller than about 1:1.33 is portrait, between is square).
        """
        return nearest_frame(width, height, self.frames)

    def payload(self, inputs: Mapping[str, Any]) -> Payload:
        """The JSON body for a submit, from the caller's inputs (checked, nothing extra)."""
        return self.build_payload(self, inputs)

    def with_prefix(self, prompt: str, enabled: bool = True) -> str:
        """The prompt as sent: with the model's recommended prefix unless it is there already."""
        text = (prompt or "").strip()
        prefix = self.prompt_prefix
        if enabled and prefix and not text.upper().startswith(prefix.strip(", ").upper()):
            text = prefix + text
        return text

    def without_prefix(self, prompt: str) -> str:
        """The prompt as a person wrote it, for showing and editing again."""
        prefix = self.prompt_prefix
        return prompt[len(prefix):] if prefix and prompt.startswith(prefix) else prompt


def nearest_frame(width: int, height: int, frames: Frames) -> tuple[int, int]:
    """The frame whose aspect is nearest the picture's, on a log scale: the least cropped."""
    ratio = math.log(width / height)
    return min(frames, key=lambda frame: abs(math.log(frame[0] / frame[1]) - ratio))


def _image_to_video(model: ModelSpec, inputs: Mapping[str, Any]) -> Payload:
    prompt, image, seed = inputs.get("prompt"), inputs.get("image"), inputs.get("seed", -1)
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadInput("Write a prompt first: describe the people and the motion you want to see.")
    if not isinstance(image, str) or not image:
        raise BadInput("Add an image first: drop in a photo of the scene to animate.")
    low, high = model.seed_range
    if isinstance(seed, bool) or not isinstance(seed, int) or not low <= seed <= high:
        raise BadInput(f"The seed must be a whole number from {low} to {high}.")
    return {"prompt": prompt, "image": image, "seed": seed}


def _vision_llm(model: ModelSpec, inputs: Mapping[str, Any]) -> Payload:
    prompt = inputs.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadInput("The vision model needs a question to answer.")
    payload: Payload = {"prompt": prompt}
    for name in ("system_prompt", "images", "temperature", "max_tokens", "model"):
        if inputs.get(name) is not None:
            payload[name] = inputs[name]
    # The answer is wanted at once, in the submit's own reply.
    payload["enable_sync_mode"] = bool(inputs.get("enable_sync_mode", True))
    return payload


SKYREELS_V1 = ModelSpec(
    name="wavespeed-ai/SkyReels-V1",
    title="SkyReels V1 image-to-video",
    build_payload=_image_to_video,
    price_usd=0.20,
    # 97 frames at 544p take WaveSpeed about a minute; the spread allows twice the ~5% seen.
    prior=DurationPrior(queue_s=10.0, processing_s=60.0, spread_s=6.0),
    checks=CheckRule(first_s=2.0, apart_s=5.0),  # a video task
    frames=((960, 544), (544, 960), (720, 720)),  # landscape, portrait, square
    fps=24,
    frame_count=97,
    # SkyReels' README asks prompts to start with this.
    prompt_prefix="FPS-24, ",
    seed_range=SEED_RANGE,
    max_prompt_chars=2000,
)

VISION_LLM = ModelSpec(
    name="wavespeed-ai/any-llm/vision",
    title="WaveSpeed vision LLM",
    build_payload=_vision_llm,
    price_usd=0.01,  # priced per call and not listed; far below a video (a reasoned guess)
    prior=DurationPrior(queue_s=1.0, processing_s=4.0, spread_s=3.0),
    max_prompt_chars=1000,
)

MODELS = {spec.name: spec for spec in (SKYREELS_V1, VISION_LLM)}
# What the built-in backend serves unless told otherwise: every video model of the catalogue.
VIDEO_MODELS = tuple(spec for spec in MODELS.values() if spec.makes_video)


@dataclass(frozen=True)
class Tier:
    """A WaveSpeed account level: tasks it may run at once and submits it may start a minute
    ("Account levels & rate limits"); past them WaveSpeed answers 429."""

    name: str
    tasks_at_once: int
    submits_per_minute: float


BRONZE = Tier("Bronze", 2, 2)  # every new account: "a 3rd waits until one finishes"
TIERS = {tier.name.lower(): tier for tier in (BRONZE, Tier("Silver", 300, 500), Tier("Gold", 3000, 3000), Tier("Ultra", 10000, 5000))}
