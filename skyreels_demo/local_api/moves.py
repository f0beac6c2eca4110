"""The camera's move over the still in the offline preview, chosen as a model's output would be.

`camera_move(seed, prompt)` picks the kind of move (a push in, a pan, a tilt, a drift), where it
heads, how far it goes and how fast it gets there from a hash of the two, so the same seed and
prompt always make the same clip (byte for byte) and another seed or another prompt makes
another. A prompt that names a move ("the camera pushes in", "pans left", "tilts up") gets that
kind of move; the seed still chooses its framing. Every move starts on the whole picture, as an
image-to-video model's first frame is its picture, so a film's shots join without a jump.
render.py draws the frames a move sees.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# How far a move may push in (the share of the picture's width the camera ends on is 1/zoom),
# so the move reads as deliberate but the picture never softens much (render.py keeps its
# source a little larger than the frame, so the zoomed-in end stays sharp).
ZOOM_RANGE = (1.08, 1.28)


@dataclass(frozen=True)
class CameraMove:
    """A camera move over the picture, from its whole (zoom 1) at the start.

    `zoom` is how far it pushes in by the end; `zoom_by` the share of the clip (0 to 1] it takes
    to get there; `across` and `down` where the window sits in the room the zoom leaves, at the
    start and at the end (0 the left or top edge, 1 the right or bottom, 0.5 the middle).
    """

    kind: str  # "push in", "pan left", "pan right", "tilt up", "tilt down" or "drift"
    zoom: float
    zoom_by: float
    across: tuple[float, float]
    down: tuple[float, float]

    def window(self, source_size: tuple[int, int], t: float) -> tuple[float, float, float, float]:
        """The part of the source the camera sees at time t in [0, 1], as a float box."""
        sw, sh = source_size
        e = _ease(t)
        zoom = 1.0 + (self.zoom - 1.0) * _ease(min(1.0, t / self.zoom_by))
        ww, wh = sw / zoom, sh / zoom
        x = (self.across[0] + (self.across[1] - self.across[0]) * e) * (sw - ww)
        y = (self.down[0] + (self.down[1] - self.down[0]) * e) * (sh - wh)
        return (x, y, x + ww, y + wh)

    @property
    def key(self) -> str:
        """The move in a few characters, for naming its render."""
        return f"{self.zoom:.4f},{self.zoom_by:.4f},{self.across[0]:.4f},{self.across[1]:.4f},{self.down[0]:.4f},{self.down[1]:.4f}"


# A prompt that names a move gets that kind; "camera" or "shot" need not be said.
_ASKED = (
    ("pan left", re.compile(r"\b(pan(s|ning|ned)?|track(s|ing)?|truck(s|ing)?) (slowly |gently )?(to the )?left\b")),
    ("pan right", re.compile(r"\b(pan(s|ning|ned)?|track(s|ing)?|truck(s|ing)?) (slowly |gently )?(to the )?right\b")),
    ("tilt up", re.compile(r"\b(tilt(s|ing|ed)?|crane(s|ing)?|pedestal(s|ing)?) (slowly |gently )?up(wards?)?\b")),
    ("tilt down", re.compile(r"\b(tilt(s|ing|ed)?|crane(s|ing)?|pedestal(s|ing)?) (slowly |gently )?down(wards?)?\b")),
    ("push in", re.compile(
        r"\b(push(es|ing)?|dolly|dollies|dollying|zoom(s|ing)?|creep(s|ing)?) (slowly |gently )?in\b"
        r"|\b(moves?|push(es|ing)?|creep(s|ing)?|gets?) (slowly |gently )?closer\b|\bclose-?up\b"
    )),
    ("drift", re.compile(r"\b(drift(s|ing)?|handheld|float(s|ing)?|glide(s|ing)?)\b")),
)
KINDS = ("push in", "pan left", "pan right", "tilt up", "tilt down", "drift")


def asked_move(prompt: str) -> str | None:
    """The kind of move a prompt names, if it names one."""
    text = " ".join((prompt or "").lower().split())
    for kind, pattern in _ASKED:
        if pattern.search(text):
            return kind
    return None


def camera_move(seed: int, prompt: str) -> CameraMove:
    """The move for this seed and prompt: always the same for the same two, another for others."""
    digest = hashlib.sha256(f"{int(seed)}\n{prompt or ''}".encode()).digest()
    draw = [int.from_bytes(digest[i:i + 4], "big") / 2**32 for i in range(0, 32, 4)]
    kind = asked_move(prompt) or KINDS[int(draw[0] * len(KINDS))]
    low, high = ZOOM_RANGE
    zoom = low + (high - low) * draw[1]

    def spread(u: float, middle: float, width: float) -> float:
        return middle + (u - 0.5) * width

    if kind == "push in":
        # Toward a point on a third or the middle, a little off it: where the eye would go.
        across = (0.2, 0.5, 0.8)[int(draw[2] * 3)] + (draw[3] - 0.5) * 0.16
        down = (0.3, 0.5, 0.7)[int(draw[4] * 3)] + (draw[5] - 0.5) * 0.16
        return CameraMove(kind, zoom, 1.0, (across, across), (down, down))
    # The others get their room early (half the clip or a little more), then travel through it.
    zoom = max(zoom, 1.14)
    zoom_by = spread(draw[6], 0.55, 0.3)
    start, end = spread(draw[2], 0.18, 0.2), spread(draw[3], 0.82, 0.2)
    level = spread(draw[4], 0.5, 0.4)
    if kind == "pan right":
        return CameraMove(kind, zoom, zoom_by, (start, end), (level, level))
    if kind == "pan left":
        return CameraMove(kind, zoom, zoom_by, (end, start), (level, level))
    if kind == "tilt down":
        return CameraMove(kind, zoom, zoom_by, (level, level), (start, end))
    if kind == "tilt up":
        return CameraMove(kind, zoom, zoom_by, (level, level), (end, start))
    # A drift: corner to corner, slowly, with a gentle push.
    left_first, top_first = draw[4] < 0.5, draw[5] < 0.5
    across = (start, end) if left_first else (end, start)
    down = (spread(draw[7], 0.3, 0.2), spread(draw[6], 0.7, 0.2))
    return CameraMove(kind, zoom, 1.0, across, down if top_first else down[::-1])


# The move a picture gets when nothing chose one (the placeholder clip): a gentle push in.
STILL_PUSH = CameraMove("push in", 1.12, 1.0, (0.78, 0.78), (0.32, 0.32))


def _ease(t: float) -> float:
    # Smoothstep: the camera starts and stops gently instead of jerking at the ends.
    return t * t * (3.0 - 2.0 * t)
