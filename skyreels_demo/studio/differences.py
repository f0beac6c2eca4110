"""What differs between takes, in words: the words a prompt adds and drops, the seeds, the
framing, the prefix and the picture, each later take against the first.

Apart from takes.py (a take as a file and a link) because this is about reading takes side by
side, for Compare; it only reads runs.
"""

from __future__ import annotations

import difflib
from typing import Sequence

from skyreels_demo.models import ModelSpec
from skyreels_demo.store.records import Run
from skyreels_demo.studio.takes import typed_prompt

# --- what differs between takes, in words --------------------------------------------------


def _quoted(words: Sequence[str]) -> str:
    return "“" + " ".join(words) + "”"


def prompt_changes(before: str, after: str) -> tuple[list[str], list[str]]:
    """Words `after` adds to `before`, and words it drops, as runs of neighbouring words."""
    a, b = before.split(), after.split()
    added, removed = [], []
    matcher = difflib.SequenceMatcher(a=[w.lower() for w in a], b=[w.lower() for w in b], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            removed.append(_quoted(a[i1:i2]))
        if tag in ("replace", "insert"):
            added.append(_quoted(b[j1:j2]))
    return added, removed


def in_words(runs: Sequence[Run], model: ModelSpec) -> list[str]:
    """Sentences saying what differs between takes, each later one against the first."""
    if len(runs) < 2:
        return []
    first = runs[0]
    lines: list[str] = []
    base = typed_prompt(first, model)
    same_prompt = True
    for number, run in enumerate(runs[1:], start=2):
        added, removed = prompt_changes(base, typed_prompt(run, model))
        if added or removed:
            same_prompt = False
            parts = []
            if added:
                parts.append("adds " + ", ".join(added))
            if removed:
                parts.append("drops " + ", ".join(removed))
            lines.append(f"Take {number} (seed {run.seed}) {' and '.join(parts)}, against take 1.")
    if same_prompt:
        lines.append("The prompt is the same in every take.")
    seeds = [run.seed for run in runs]
    lines.append(
        "The seed is the same in every take." if len(set(seeds)) == 1
        else "Seeds: " + ", ".join(f"{seed} (take {n})" for n, seed in enumerate(seeds, start=1)) + "."
    )
    fits = {"crop": "cropped to the frame", "pad": "the whole picture"}
    if len({run.fit for run in runs}) > 1:
        lines.append("Framing: " + ", ".join(f"{fits.get(run.fit, run.fit)} (take {n})" for n, run in enumerate(runs, start=1)) + ".")
    if len({run.fps_prefix for run in runs}) > 1:
        lines.append("Prefix: " + ", ".join(
            f"{'with' if run.fps_prefix else 'without'} {model.prompt_prefix.strip(', ')!r} (take {n})"
            for n, run in enumerate(runs, start=1)) + ".")
    if len({run.image_sha256 for run in runs}) > 1:
        lines.append("The takes start from different pictures.")
    return lines
