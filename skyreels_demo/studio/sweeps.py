"""Sweeps: many prompts x seeds over one image, within a concurrency limit, with a report.

Every cell is an ordinary run (recorded, resumable) tagged with the sweep's key, which depends
only on the image and how it is framed; a cell whose prompt and seed already have a saved video
in that sweep is skipped, so running a sweep again (or a larger one) pays only for what is new.
"""

from __future__ import annotations

import csv
import hashlib
import html
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TextIO
from urllib.parse import quote

from skyreels_demo import images
from skyreels_demo.errors import BadInput, StudioError
from skyreels_demo.models import ModelSpec
from skyreels_demo.studio.events import Done
from skyreels_demo.store.records import Run
from skyreels_demo.status import RunStatus
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.studio.studio import Studio


@dataclass(frozen=True)
class Cell:
    prompt: str
    seed: int
    status: str  # "done", "skipped" (done before), or "failed"
    run: Run | None
    error: str = ""


@dataclass(frozen=True)
class SweepReport:
    key: str
    html_path: Path
    csv_path: Path
    cells: tuple[Cell, ...]

    @property
    def failed(self) -> int:
        return sum(cell.status == "failed" for cell in self.cells)

    @property
    def skipped(self) -> int:
        return sum(cell.status == "skipped" for cell in self.cells)


def read_prompts(path: Path) -> list[str]:
    """One prompt a line; blank lines and lines starting with # are left out."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        raise BadInput(f"Could not read the prompts file {path}: check the path.") from None
    prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise BadInput(f"{path} has no prompts: write one prompt a line.")
    return list(dict.fromkeys(prompts))


def parse_seeds(text: str, model: ModelSpec) -> list[int]:
    """"1,2,3" or "1-4" or a mix; each from 0 to the model's top seed (a sweep needs concrete seeds)."""
    seeds: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            if "-" in part[1:]:
                low, high = (int(x) for x in part.split("-", 1))
                seeds.extend(range(low, high + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise BadInput(f"Seeds must be whole numbers like 1,2,3 or 1-4, not {text!r}.") from None
    top = model.seed_max
    if not seeds or any(not 0 <= s <= top for s in seeds):
        raise BadInput(f"Give at least one seed, each from 0 to {top}.")
    return list(dict.fromkeys(seeds))


def sweep_key(prepared_sha: str, fit: str) -> str:
    return "sweep-" + hashlib.sha256(f"{prepared_sha}:{fit}".encode()).hexdigest()[:12]


class _ProgressBar:
    def __init__(self, out: TextIO | None, total: int) -> None:
        self.out, self.total = out, total
        self.done = self.failed = self.skipped = 0
        self._lock = threading.Lock()

    def step(self, cell: Cell) -> None:
        with self._lock:
            self.done += 1
            self.failed += cell.status == "failed"
            self.skipped += cell.status == "skipped"
            if self.out is None:
                return
            width = 30
            filled = round(width * self.done / self.total)
            line = (
                f"[{'#' * filled}{'-' * (width - filled)}] {self.done}/{self.total} "
                f"({self.skipped} done before, {self.failed} failed) {_short(cell.prompt)!r}, seed {cell.seed}: {cell.status}"
            )
            self.out.write(("\r\033[K" if self.out.isatty() else "") + line + ("" if self.out.isatty() else "\n"))
            if self.out.isatty() and self.done == self.total:
                self.out.write("\n")
            self.out.flush()


def _short(prompt: str, most: int = 40) -> str:
    """A prompt on one progress line: whole when short, else its start."""
    prompt = " ".join(prompt.split())
    return prompt if len(prompt) <= most else prompt[: most - 1] + "…"


def run_sweep(
    studio: Studio,
    request: RunRequest,
    *,
    prompts: Sequence[str],
    seeds: Sequence[int],
    concurrency: int = 3,
    out_dir: Path | None = None,
    progress: TextIO | None = None,
    confirm: Callable[[int], bool] | None = None,
) -> SweepReport:
    """Run every prompt x seed not already done over `request`'s image, then write the HTML and
    CSV reports. Each cell is `request` with its prompt and seed.

    `confirm` hears how many new videos the sweep would make before any is started; when it
    answers False nothing is sent and `BadInput` says so.
    """
    if concurrency < 1:
        raise BadInput("--concurrency must be at least 1.")
    image, fit, fps_prefix = request.image, request.fit, request.fps_prefix
    prepared = images.prepare(image, fit=fit, frames=studio.model.frames)  # a bad image is refused before any cell runs
    key = sweep_key(prepared.sha256, fit)
    cell_request = request.but(image=prepared, sweep=key)
    model_prompt = studio.model.with_prefix
    earlier = {
        (run.prompt, run.seed): run
        for run in studio.store.in_sweep(key)
        if run.status == RunStatus.DONE and run.has_video
    }
    grid = [(prompt, seed) for prompt in prompts for seed in seeds]
    new = sum((model_prompt(p, fps_prefix), s) not in earlier for p, s in grid)
    if confirm is not None and not confirm(new):
        raise BadInput("The sweep was not started, so nothing was spent.")
    bar = _ProgressBar(progress, len(grid))

    def one(prompt: str, seed: int) -> Cell:
        before = earlier.get((model_prompt(prompt, fps_prefix), seed))
        if before is not None:
            cell = Cell(prompt, seed, "skipped", before)
        else:
            try:
                done = None
                for event in studio.generate(cell_request.but(prompt=prompt, seed=seed)):
                    if isinstance(event, Done):
                        done = event
                cell = Cell(prompt, seed, "done", done.run if done else None)
            except StudioError as exc:
                cell = Cell(prompt, seed, "failed", None, exc.sentence)
        bar.step(cell)
        return cell

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sweep") as pool:
        cells = tuple(pool.map(lambda ps: one(*ps), grid))

    out_dir = Path(out_dir) if out_dir else studio.settings.sweeps_dir / key
    out_dir.mkdir(parents=True, exist_ok=True)
    report = SweepReport(key, out_dir / "report.html", out_dir / "report.csv", cells)
    _write_csv(report)
    _write_html(report, prompts, seeds, str(image), _export_cells(report, studio.model))
    return report


def _export_cells(report: SweepReport, model: ModelSpec) -> dict[tuple[str, int], Path]:
    """Each finished cell's take as an export zip beside the report, for `generate --from`."""
    from skyreels_demo.studio.takes import export_take, folder_name

    exports = {}
    for cell in report.cells:
        if cell.run is None or not cell.run.has_video:
            continue
        try:
            exports[(cell.prompt, cell.seed)] = export_take(
                cell.run, model, report.html_path.parent / "takes" / f"{folder_name(cell.run)}.zip"
            )
        except StudioError:
            pass  # its image was pruned: the cell shows its video, with no export to link
    return exports


def _write_csv(report: SweepReport) -> None:
    with open(report.csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["prompt", "seed", "status", "task_id", "video_path", "inference_s", "error"])
        for cell in report.cells:
            run = cell.run
            writer.writerow([
                cell.prompt,
                cell.seed,
                cell.status,
                run.task_id if run else "",
                run.video_path if run else "",
                f"{run.inference_ms / 1000:.1f}" if run and run.inference_ms else "",
                cell.error,
            ])


def _write_html(
    report: SweepReport, prompts: Sequence[str], seeds: Sequence[int], image: str,
    exports: dict[tuple[str, int], Path] | None = None,
) -> None:
    by_cell = {(cell.prompt, cell.seed): cell for cell in report.cells}
    rows = []
    for prompt in prompts:
        tds = []
        for seed in seeds:
            cell = by_cell[(prompt, seed)]
            if cell.run and cell.run.video_path:
                relative = os.path.relpath(cell.run.video_path, report.html_path.parent)
                src = html.escape(quote(Path(relative).as_posix()))
                body = f'<video src="{src}" controls loop muted preload="metadata"></video>'
                export = (exports or {}).get((prompt, seed))
                if export is not None:
                    href = html.escape(quote(export.relative_to(report.html_path.parent).as_posix()))
                    body += f'<a class="export" href="{href}" download>this take\'s export (.zip)</a>'
            else:
                body = f'<p class="error">{html.escape(cell.error or cell.status)}</p>'
            tds.append(f"<td>{body}</td>")
        rows.append(f'<tr><th scope="row">{html.escape(prompt)}</th>{"".join(tds)}</tr>')
    heads = "".join(f'<th scope="col">seed {seed}</th>' for seed in seeds)
    done = sum(cell.status != "failed" for cell in report.cells)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SkyReels sweep {html.escape(report.key)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #1f2937; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #e5e7eb; padding: 8px; vertical-align: top; }}
th[scope=row] {{ max-width: 260px; text-align: left; font-weight: 500; }}
video {{ width: 320px; display: block; border-radius: 6px; background: #000; }}
.error {{ color: #b91c1c; max-width: 320px; }}
</style></head><body>
<h1>SkyReels sweep</h1>
<p>Image: {html.escape(str(image))} · {len(prompts)} prompts × {len(seeds)} seeds ·
{done} of {len(report.cells)} videos · CSV: <a href="{html.escape(report.csv_path.name)}">{html.escape(report.csv_path.name)}</a></p>
<table><thead><tr><th>prompt</th>{heads}</tr></thead><tbody>
{"".join(rows)}
</tbody></table></body></html>
"""
    report.html_path.write_text(page, encoding="utf-8")
