"""A director's film, read from its records: each shot's plan, its takes, the picked one, and
which shots follow an old frame.

A shot's plan (in the film's `shots_json`) says what to make: its prompt, its first seed, how
many takes (1 to 4, seeds following the first), how it starts (from the previous shot's picked
take's last frame, or a cut: the film's first picture again, or a picture of its own) and which
take the director picked. Its takes are ordinary runs recorded with the film's id and the shot's
place. The runs are the truth; this module only reads them:

- a shot's *current* takes are the runs of its prompt and seeds made from the start it has now
  (for a continuous shot: the previous shot's picked take); older runs stay in History;
- a shot's pick is the take the director chose, else the first current take to finish;
- a continuous shot whose picked take started from another frame than the previous shot's
  pick, or that follows such a shot, is *stale*: it follows an old frame until it is made again.

Nothing here sends anything; `films.py` makes what `missing` counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from skyreels_demo.errors import BadInput
from skyreels_demo.models import ModelSpec
from skyreels_demo.status import RunStatus, Word
from skyreels_demo.store.records import Run
from skyreels_demo.studio.takes import typed_prompt

MIN_TAKES, MAX_TAKES = 1, 4


class Start(Word):
    """Where a shot's takes start."""

    CONTINUOUS = "continuous"  # the previous shot's picked take's last frame
    FIRST = "first"  # a cut: the film's first picture again (to keep a face as it was)
    OWN = "own"  # a cut: a picture of its own


@dataclass(frozen=True)
class ShotPlan:
    """What one shot should be; stored as a dict in the film's shots_json."""

    prompt: str
    seed: int
    takes: int = 1
    start: Start = Start.CONTINUOUS
    image: str | None = None  # its own picture (prepared, in the data dir), for Start.OWN
    picked: str | None = None  # the run id of the take the director picked

    @classmethod
    def of(cls, raw: dict, index: int) -> "ShotPlan":
        start = Start(raw.get("start") or (Start.FIRST if index == 0 else Start.CONTINUOUS))
        return cls(
            prompt=raw["prompt"], seed=int(raw["seed"]), takes=int(raw.get("takes") or 1),
            start=Start.FIRST if index == 0 and start == Start.CONTINUOUS else start,
            image=raw.get("image"), picked=raw.get("picked"),
        )

    def as_dict(self) -> dict:
        return {"prompt": self.prompt, "seed": self.seed, "takes": self.takes, "start": str(self.start),
                "image": self.image, "picked": self.picked}

    def seeds(self, model: ModelSpec) -> list[int]:
        """Each take's seed: the shot's seed and the ones after it, wrapping at the top."""
        return model.following_seeds(self.seed, self.takes)

    @property
    def is_cut(self) -> bool:
        return self.start != Start.CONTINUOUS


def check_takes(takes: object) -> int:
    """How many takes a shot has, from a number a form may send as 2, 2.0 or "2"."""
    try:
        value = float(takes)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(takes, bool) or not value.is_integer() or not MIN_TAKES <= value <= MAX_TAKES:
        raise BadInput(f"A shot has {MIN_TAKES} to {MAX_TAKES} takes, not {takes!r}.")
    return int(value)


@dataclass(frozen=True)
class ShotState:
    """One shot as the records have it now."""

    index: int
    plan: ShotPlan
    takes: tuple[Run | None, ...]  # the current take of each seed, in take order (None: not made)
    picked: Run | None  # the director's pick, else the first current take to finish
    source: Run | None  # the run whose last frame the current takes start from (None: a cut)
    stale: bool = False  # follows an old frame: its pick started from another frame than `source`
    older: tuple[Run, ...] = field(default=())  # this shot's other runs, kept in History

    @property
    def take_number(self) -> int | None:
        """The picked take's number (from 1) among the current takes; None if it is not one."""
        for number, take in enumerate(self.takes, start=1):
            if take is not None and self.picked is not None and take.id == self.picked.id:
                return number
        return None

    @property
    def done(self) -> list[Run]:
        return [take for take in self.takes if take is not None and is_made(take)]

    @property
    def missing(self) -> int:
        """Takes of the current start still to make (none submitted, none made)."""
        return sum(1 for take in self.takes if take is None or take.status in _REMAKE)


_REMAKE = {RunStatus.FAILED, RunStatus.REFUSED, RunStatus.LOST}


def is_made(run: Run | None) -> bool:
    return run is not None and run.status == RunStatus.DONE and run.has_video


def _current_take(runs: Iterable[Run], prompt: str, seed: int, source: Run | None, model: ModelSpec) -> Run | None:
    """The latest run of this prompt (as typed) and seed made from `source` (None: a picture)."""
    wanted = source.id if source is not None else None
    same = [r for r in runs if typed_prompt(r, model) == prompt and r.seed == seed and r.continued_from == wanted]
    made = [r for r in same if is_made(r)]
    return (made or same or [None])[-1]


def film_state(plans: Sequence[ShotPlan], runs: Sequence[Run], model: ModelSpec) -> list[ShotState]:
    """Every shot's state, in order, from the film's runs (oldest first, as store.shots_of)."""
    states: list[ShotState] = []
    for index, plan in enumerate(plans):
        mine = [run for run in runs if run.shot == index]
        before = states[-1] if states else None
        source = before.picked if (before is not None and not plan.is_cut) else None
        takes = tuple(_current_take(mine, plan.prompt, seed, source, model) for seed in plan.seeds(model))
        picked = next((run for run in mine if run.id == plan.picked and is_made(run)), None)
        if picked is None:
            finished = sorted((t for t in takes if is_made(t)), key=lambda t: (t.finished_at or t.updated_at))
            picked = finished[0] if finished else None
        follows_old = not plan.is_cut and picked is not None and (
            source is None or picked.continued_from != source.id or (before is not None and before.stale)
        )
        current = {t.id for t in takes if t is not None}
        older = tuple(run for run in mine if run.id not in current)
        states.append(ShotState(index, plan, takes, picked, source, stale=follows_old, older=older))
    return states


def stale_from(states: Sequence[ShotState]) -> int | None:
    """The first shot that follows an old frame, or None."""
    return next((s.index for s in states if s.stale), None)


def takes_to_make(states: Sequence[ShotState], plans: Sequence[ShotPlan], start: int = 0) -> int:
    """How many takes making the film from shot `start` onward submits: a shot whose start frame
    will change (it follows one being made anew) needs all its takes; another, what it misses."""
    count = 0
    changing = False
    for state, plan in zip(states[start:], plans[start:]):
        if state.stale or (changing and not plan.is_cut):
            count += plan.takes
            changing = True
        else:
            missing = state.missing
            count += missing
            # A shot picked anew when its takes are made changes what follows it.
            changing = (missing > 0 and state.picked is None) or (changing and not plan.is_cut)
    return count


def with_pick(plans: Sequence[ShotPlan], index: int, run_id: str | None) -> list[ShotPlan]:
    """The plans with shot `index`'s pick changed (None: the first to finish)."""
    changed = list(plans)
    changed[index] = replace(changed[index], picked=run_id)
    return changed
