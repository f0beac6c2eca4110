"""Pillow: open, validate, orient, crop or fit to the model's frame, encode.

(Skeleton: the frame choice is final; `prepare` is being written.)
"""

from __future__ import annotations

import math

# SkyReels V1's native frames (width, height).
LANDSCAPE = (960, 544)
PORTRAIT = (544, 960)
SQUARE = (720, 720)
FRAMES = (LANDSCAPE, PORTRAIT, SQUARE)


def choose_frame(width: int, height: int) -> tuple[int, int]:
    """The model frame whose aspect is nearest the picture's, on a log scale.

    Nearest on a log scale means the least of the picture is cropped away, so the cut-overs
    fall at the geometric means of neighbouring aspects: wider than about 1.33:1 is landscape,
    taller than about 1:1.33 is portrait, and anything between is square.
    """
    ratio = math.log(width / height)
    return min(FRAMES, key=lambda frame: abs(math.log(frame[0] / frame[1]) - ratio))
