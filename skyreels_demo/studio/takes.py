"""Takes: runs as a person sees them. A take exported as a zip that makes it again, and share
links of their own (what differs between takes, in words, is differences.py).

An export is one folder in a zip: `take.json` (the prompt as typed, the prefix setting, seed,
framing, model, task id, when it was made), `image.jpg` (the prepared frame as it was
uploaded) and `video.mp4`. Reading one checks everything a stranger's file could get wrong
before anything is sent: its size, where its entries point, which members it has, and whether
`take.json` fits the model; each refusal is one sentence (`BadInput`).

A share link names a take by a random token (`secrets.token_urlsafe`), never by its task id or
run id, and can be withdrawn; the store keeps it (store/shares.py), so links survive restarts.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image

from skyreels_demo import images
from skyreels_demo.errors import BadInput
from skyreels_demo.models import ModelSpec
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.store.records import Run
from skyreels_demo.store.runs import RunStore

log = logging.getLogger(__name__)

TAKE_FORMAT = "skyreels-studio-take"
TAKE_VERSION = 1
MAX_EXPORT_BYTES = 60 * 1000 * 1000  # a 4-second clip and its frame are a few MB; 60 MB is plenty
MAX_TAKE_JSON_BYTES = 64 * 1024
TAKE_JSON, IMAGE, VIDEO = "take.json", "image.jpg", "video.mp4"
MEMBERS = frozenset({TAKE_JSON, IMAGE, VIDEO})
# secrets.token_urlsafe(16): 128 random bits, 22 URL-safe characters.
TOKEN_BYTES = 16
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")
NOT_SHARED = "This take is not shared: the link is wrong, or its owner withdrew it."
SHARING_OFF = "Sharing is turned off on this app, so this take is not shared."


# --- what a take is made of ---------------------------------------------------------------


@dataclass(frozen=True)
class Take:
    """A take read back from an export: everything it takes to make it again, checked."""

    prompt: str  # as typed, without the model's prefix
    seed: int
    fit: str
    fps_prefix: bool
    model: str
    task_id: str | None
    made_at: str
    image: images.PreparedImage  # the prepared JPEG, byte for byte as it was uploaded

    def request(self, **changes: Any) -> RunRequest:
        """A run of this take again: the same prompt, seed, framing, prefix and upload."""
        request = RunRequest(self.prompt, self.image, self.seed, fit=self.fit, fps_prefix=self.fps_prefix)
        return request.but(**changes) if changes else request


def typed_prompt(run: Run, model: ModelSpec) -> str:
    """The prompt as the person wrote it (the store keeps it as sent, prefix and all)."""
    return model.without_prefix(run.prompt) if run.fps_prefix else run.prompt


def take_record(run: Run, model: ModelSpec) -> dict[str, Any]:
    """What `take.json` says about a run."""
    return {
        "format": TAKE_FORMAT,
        "version": TAKE_VERSION,
        "model": run.model or model.name,
        "task_id": run.task_id,
        "prompt": typed_prompt(run, model),
        "fps_prefix": bool(run.fps_prefix),
        "seed": run.seed,
        "fit": run.fit,
        "made_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(run.created_at)),
        "image": IMAGE,
        "image_sha256": run.image_sha256,
        "video": VIDEO,
    }


def folder_name(run: Run) -> str:
    return f"skyreels-take-{(run.task_id or run.id)[:12]}"


def export_take(run: Run, model: ModelSpec, out: Path | str) -> Path:
    """Write a run's export zip at `out` (atomically); refused with a sentence if it cannot be."""
    video = Path(run.video_path) if run.video_path else None
    image = Path(run.image_path) if run.image_path else None
    if video is None or not video.is_file():
        raise BadInput("This take has no saved video to export (it is not finished, or its video was pruned).")
    if image is None or not image.is_file():
        raise BadInput("This take's prepared image is no longer kept, so it cannot be made again from an export.")
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise BadInput(f"Name the export file with .zip at the end, not {out.name}.")
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = folder_name(run)
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".part")
    os.close(fd)
    partial = Path(name)
    try:
        with zipfile.ZipFile(partial, "w") as zf:
            # JSON compressed; the JPEG and MP4 are compressed already, so stored as they are.
            zf.writestr(f"{folder}/{TAKE_JSON}", json.dumps(take_record(run, model), indent=2), zipfile.ZIP_DEFLATED)
            zf.write(image, f"{folder}/{IMAGE}", zipfile.ZIP_STORED)
            zf.write(video, f"{folder}/{VIDEO}", zipfile.ZIP_STORED)
        partial.chmod(0o644)  # served like the videos
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return out


_zipping = threading.Lock()


def take_zip(run: Run, model: ModelSpec, takes_dir: Path) -> Path:
    """The take's export zip in the data directory (`<takes_dir>/<run id>/`): made the first time
    it is asked for, then the same file every time (made again only once it was pruned)."""
    out = takes_dir / run.id / f"{folder_name(run)}.zip"
    with _zipping:
        if out.is_file():
            return out
        return export_take(run, model, out)


def find_run(store: RunStore, run_or_task_id: str) -> Run:
    """A run by its run id or its task id; refused with a sentence if there is none."""
    key = (run_or_task_id or "").strip()
    if key:
        try:
            return store.get(key)
        except KeyError:
            run = store.by_task(key)
            if run is not None:
                return run
    raise BadInput(f"No recorded run has the id {key!r}: `python -m skyreels_demo runs` lists them.")


# --- reading an export back ---------------------------------------------------------------


def read_take(path: Path | str, model: ModelSpec) -> Take:
    """The take an export zip (or a `take.json` beside its `image.jpg`) makes again.

    Nothing is sent before this returns: every refusal is a `BadInput` with one sentence."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BadInput(f"There is no file at {path}: give the path of a take's .zip (or its take.json).")
    if path.name == TAKE_JSON or path.suffix.lower() == ".json":
        beside = path.parent / IMAGE
        if not beside.is_file():
            raise BadInput(f"There is no {IMAGE} beside {path.name}: keep the take's image next to its take.json.")
        record = _parse_record(_read_limited(path, MAX_TAKE_JSON_BYTES, TAKE_JSON))
        return _take(record, _read_limited(beside, MAX_EXPORT_BYTES, IMAGE), model)
    size = path.stat().st_size
    if size > MAX_EXPORT_BYTES:
        raise BadInput(f"{path.name} is {size / 1e6:.0f} MB; an export of a take is at most {MAX_EXPORT_BYTES // 1_000_000} MB.")
    try:
        with zipfile.ZipFile(path) as zf:
            members = _members(zf, path.name)
            record = _parse_record(_read_member(zf, members[TAKE_JSON], MAX_TAKE_JSON_BYTES))
            image = _read_member(zf, members[IMAGE], MAX_EXPORT_BYTES)
    except zipfile.BadZipFile:
        raise BadInput(f"{path.name} is not a zip file: give the .zip that \"Download this take\" or `export` made.") from None
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as exc:
        log.info("an export could not be read: %r", exc)
        raise BadInput(f"{path.name} could not be read as a take's export: download or export it again.") from None
    return _take(record, image, model)


def _members(zf: zipfile.ZipFile, name: str) -> dict[str, zipfile.ZipInfo]:
    """The export's three members, by name, once every entry is checked."""
    infos = zf.infolist()
    if sum(info.file_size for info in infos) > MAX_EXPORT_BYTES:
        raise BadInput(f"{name} unpacks to more than {MAX_EXPORT_BYTES // 1_000_000} MB; an export of a take is smaller.")
    folders: set[str] = set()
    found: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        entry = info.filename
        parts = PurePosixPath(entry).parts
        if (
            "\\" in entry
            or entry.startswith("/")
            or ":" in (parts[0] if parts else "")
            or any(part in ("..", ".") for part in parts)
        ):
            raise BadInput(f"{name} has an entry outside its folder ({entry!r}): it is not an export of this app.")
        if info.is_dir():
            if len(parts) != 1:
                raise BadInput(f"{name} has a folder this app never writes ({entry!r}): it is not an export of this app.")
            folders.add(parts[0])
            continue
        if len(parts) != 2:
            raise BadInput(f"{name} has an entry outside its folder ({entry!r}): it is not an export of this app.")
        folders.add(parts[0])
        if parts[1] not in MEMBERS or parts[1] in found:
            raise BadInput(f"{name} holds {entry!r}, which a take's export does not: it is not an export of this app.")
        found[parts[1]] = info
    if len(folders) > 1:
        raise BadInput(f"{name} holds more than one folder: a take's export holds one.")
    missing = sorted(MEMBERS - set(found))
    if missing:
        raise BadInput(f"{name} has no {' or '.join(missing)}: it is not a complete export of a take.")
    return found


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, most: int) -> bytes:
    # The declared size can lie; read no more than the limit allows, whatever it says.
    with zf.open(info) as member:
        data = member.read(most + 1)
    if len(data) > most:
        raise BadInput(f"{PurePosixPath(info.filename).name} in the export is larger than a take's ever is.")
    return data


def _read_limited(path: Path, most: int, what: str) -> bytes:
    with open(path, "rb") as file:
        data = file.read(most + 1)
    if len(data) > most:
        raise BadInput(f"{path.name} is larger than a take's {what} ever is.")
    return data


def _parse_record(data: bytes) -> dict[str, Any]:
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadInput("take.json is not readable JSON: it is not an export of this app.") from None
    if not isinstance(record, dict) or record.get("format") != TAKE_FORMAT:
        raise BadInput("take.json does not say it is a SkyReels Studio take: it is not an export of this app.")
    if record.get("version") != TAKE_VERSION:
        raise BadInput(f"take.json is of version {record.get('version')!r}; this app reads version {TAKE_VERSION}.")
    return record


def _take(record: dict[str, Any], image_data: bytes, model: ModelSpec) -> Take:
    """The record checked against the model, and the image against the model's frames."""
    if record.get("model") != model.name:
        raise BadInput(f"This take was made with {record.get('model')!r}; this studio makes {model.name} videos.")
    prompt = record.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadInput("take.json has no prompt: it is not a complete export of a take.")
    if len(prompt.strip()) > model.max_prompt_chars:
        raise BadInput(f"take.json's prompt is {len(prompt.strip())} characters long; {model.title} takes at most {model.max_prompt_chars}.")
    seed = record.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= model.seed_max:
        raise BadInput(f"take.json's seed must be a whole number from 0 to {model.seed_max}, not {seed!r}.")
    fit = record.get("fit", "crop")
    if fit not in images.FITS:
        raise BadInput(f"take.json's framing must be one of {', '.join(images.FITS)}, not {fit!r}.")
    fps_prefix = record.get("fps_prefix", True)
    if not isinstance(fps_prefix, bool):
        raise BadInput(f"take.json's fps_prefix must be true or false, not {fps_prefix!r}.")
    task_id = record.get("task_id")
    if task_id is not None and not isinstance(task_id, str):
        raise BadInput("take.json's task_id must be text.")
    made_at = record.get("made_at") if isinstance(record.get("made_at"), str) else ""
    prepared = _prepared(image_data, fit, model)
    expected = record.get("image_sha256")
    if isinstance(expected, str) and expected and expected != prepared.sha256:
        raise BadInput("The export's image.jpg is not the image its take.json names: it was changed after export.")
    return Take(prompt.strip(), seed, fit, fps_prefix, model.name, task_id, made_at, prepared)


def _prepared(data: bytes, fit: str, model: ModelSpec) -> images.PreparedImage:
    """The export's JPEG as the frame to upload, unchanged, once it decodes at one of the model's frames."""
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG",)) as picture:
            size = picture.size
            if size not in model.frames:
                raise BadInput(
                    f"The export's image.jpg is {size[0]}x{size[1]}, not one of {model.title}'s frames: it is not an export of this app."
                )
            picture.load()  # decodes it whole: a damaged JPEG is refused here, not by WaveSpeed
    except BadInput:
        raise
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError, EOFError) as exc:
        log.info("an export's image did not decode: %r", exc)
        raise BadInput("The export's image.jpg is not a readable JPEG: download or export the take again.") from None
    width, height = size
    return images.PreparedImage(
        data=data,
        content_type=images.CONTENT_TYPE,
        width=width,
        height=height,
        source_size=size,
        source_format="JPEG",
        crop_box=(0, 0, width, height),
        sha256=hashlib.sha256(data).hexdigest(),
        notes=("The image kept with this take, uploaded exactly as it was.",),
        fit=fit,
    )


# --- share links ---------------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_token(value: object) -> bool:
    """Whether `value` has a share token's shape (a malformed one is never looked up)."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def share(store: RunStore, run: Run) -> str:
    """The run's share token: its live one, else a new one."""
    token = store.live_share(run.id)
    if token is None:
        token = new_token()
        store.add_share(token, run.id)
    return token


def shared_take(store: RunStore, token: object, *, sharing: bool = True) -> Run | None:
    """The finished take a live share token names; None for anything else, sharing off included."""
    if not sharing or not is_token(token):
        return None
    run = store.shared_run(token)
    return run if run is not None and run.has_video else None


def share_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/?take={token}"
