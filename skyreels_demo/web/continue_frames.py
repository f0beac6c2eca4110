"""The frames a shot continues from, as files: named by the run they came from (or by the
clip's own bytes), written whole, and read back as the run they name.

A frame picked to continue a shot is kept in the data directory's frames/ folder, named by the
run it came from ("<run id>-last.png", "<run id>-12.png"), or, for a clip that is not one of
this app's, by the clip's own bytes ("clip-<sha-256>-last.png"): never a name two visitors
could share, so one visitor's frame is never another's picture. Separate from the handlers
(ui_runs.py) because the name is a contract: a run made from such a frame records the run it
continued by reading the name back.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

from PIL import Image

from skyreels_demo.store.records import Run

_RUN_FRAME = re.compile(r"([0-9a-f]{32})-(?:last|[0-9]{1,6})\.png")


def frame_name(run: Run | None, clip: Path, index: int | None) -> str:
    """The file name of a continue frame: by its run, else by its clip's bytes."""
    which = "last" if index is None else str(index)
    if run is not None:
        return f"{run.id}-{which}.png"
    digest = hashlib.sha256()
    with open(clip, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return f"clip-{digest.hexdigest()[:40]}-{which}.png"


def continued_from_frame(image_path: str, frames_dir: Path) -> str | None:
    """The run id a continue frame names, if the image is one of frames/ named by a run."""
    path = Path(image_path)
    try:
        if path.parent.resolve() != frames_dir.resolve():
            return None
    except OSError:
        return None
    match = _RUN_FRAME.fullmatch(path.name)
    return match[1] if match else None


def save_frame(picture: Image.Image, dest: Path) -> Path:
    """`picture` as a PNG at `dest`, written whole, then put in place: a frame is never read half written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    try:
        picture.save(part, "PNG")
        part.replace(dest)
    finally:
        part.unlink(missing_ok=True)
    return dest
