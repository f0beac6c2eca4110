"""A shot continued from an offline preview starts from a clean frame: the preview's corner mark
is not carried into the next shot, where the next preview would draw it again over a second,
zoomed copy of itself. Holds the app's idea of where the mark sits (films.PREVIEW_MARK_BAND)
to where the built-in backend really draws it."""

from __future__ import annotations

import io
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from skyreels_demo.films import PREVIEW_MARK_BAND, frame_of, frame_to_continue_from
from skyreels_demo.local_api.render import render_preview
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.runs import Mode

COLOUR = (120, 140, 160)
SHORT = replace(SKYREELS_V1, frame_count=3)  # the mark is the same on every frame


def flat_preview(tmp_path, size: tuple[int, int]):
    buffer = io.BytesIO()
    Image.new("RGB", size, COLOUR).save(buffer, "PNG")
    return render_preview(buffer.getvalue(), tmp_path / f"{size[0]}x{size[1]}.mp4", SHORT, frame=size)


def off_colour(picture: Image.Image) -> np.ndarray:
    """How far each pixel is from the flat colour (a codec moves it a little)."""
    return np.abs(np.asarray(picture.convert("RGB"), dtype=int) - COLOUR).max(axis=2)


@pytest.mark.parametrize("size", [(720, 720), (960, 544), (544, 960)])
def test_a_frame_taken_from_an_offline_preview_starts_without_its_mark(tmp_path, size):
    video = flat_preview(tmp_path, size)
    last = frame_of(video)
    band = int(min(size) * PREVIEW_MARK_BAND) + 1
    marked = off_colour(last)
    assert marked[-band:].max() > 60  # the mark's letters, in the bottom band
    assert marked[:-band].max() < 12  # and nowhere above it
    clean = frame_to_continue_from(SimpleNamespace(mode=Mode.PREVIEW), video)
    assert clean.size == last.size  # the next shot's frame keeps its shape and size
    assert off_colour(clean).max() < 12  # no mark left to be drawn over again
    # A take made by WaveSpeed is continued from its frame as it is.
    kept = frame_to_continue_from(SimpleNamespace(mode=Mode.API), video)
    assert kept.tobytes() == last.tobytes()
