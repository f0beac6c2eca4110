"""Settings from arguments and the environment, as one frozen value: the environment parsed once
(`Environment`, with pydantic-settings), every path the app writes named once (`Settings`).

Every variable is optional. The API key is kept out of `repr` so a logged or printed Settings
never shows it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Mapping
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from skyreels_demo.models import BRONZE, TIERS, Tier

DEFAULT_BASE_URL = "https://api.wavespeed.ai"


PERSISTENT_ROOT = Path("/data")  # where a Space with persistent storage mounts it


def _default_data_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    # A Space's own disk is wiped at every restart; its persistent storage, if on, is not.
    if PERSISTENT_ROOT.is_dir() and os.access(PERSISTENT_ROOT, os.W_OK):
        return PERSISTENT_ROOT / "skyreels-studio"
    # Otherwise a per-user cache directory, as the XDG convention has it.
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "skyreels-studio"


def _listens_beyond_loopback(env: dict[str, str]) -> bool:
    """Whether Gradio will accept visitors from other machines (its default is loopback)."""
    name = env.get("GRADIO_SERVER_NAME", "").strip().strip("[]").lower()
    return bool(name) and name not in {"127.0.0.1", "localhost", "::1"} and not name.startswith("127.")


def _public_url(env: dict[str, str]) -> str | None:
    """The webhook base address, or None (runs poll) when there is none or it is refused."""
    raw = _public_url_raw(env)
    if raw is None or public_url_problem(raw) is not None:
        return None
    return raw.rstrip("/")


def _public_url_raw(env: dict[str, str]) -> str | None:
    raw = env.get("SKYREELS_PUBLIC_URL", "").strip()
    if not raw and env.get("SPACE_HOST", "").strip():
        raw = "https://" + env["SPACE_HOST"].strip()  # a Space's own public address
    return raw or None


def public_url_problem(raw: str | None) -> str | None:
    """Why SKYREELS_PUBLIC_URL cannot be the webhook address, for the log; None when it can.

    WaveSpeed delivers webhooks only to https; plain http is kept for a loopback address, where
    the offline preview and tests deliver them.
    """
    if not raw:
        return None
    try:
        parts = urlsplit(raw)
        host = (parts.hostname or "").lower()
    except ValueError:
        parts, host = None, ""
    scheme = parts.scheme.lower() if parts is not None else ""
    if scheme == "https" and host:
        return None
    if scheme == "http" and (host in {"localhost", "::1"} or host.startswith("127.")):
        return None
    return (
        f"SKYREELS_PUBLIC_URL {raw!r} is not used: WaveSpeed sends webhooks only to an https "
        "address (http only to a loopback address, for local testing), so runs poll instead."
    )


def refused_public_url(env: dict[str, str] | None = None) -> str | None:
    """The log line for a refused SKYREELS_PUBLIC_URL in `env` (default: the environment)."""
    return public_url_problem(_public_url_raw(dict(os.environ if env is None else env)))


def is_loopback_url(url: str) -> bool:
    """Whether an http(s) address names this machine (127.x, ::1, localhost)."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host in {"localhost", "::1"} or host.startswith("127.")


class BadSetting(ValueError):
    """An environment variable whose value does not parse; its text is the sentence to show."""


def _var(name: str, **bounds):
    """A field read from the environment variable `name` (its errors name it); unset, the
    setting keeps Settings' own default."""
    return Field(None, validation_alias=name, **bounds)


class Environment(BaseSettings):
    """The environment's variables, each parsed by its type and bounds; a blank one is unset.

    Its only source is the mapping it is given (`Settings.from_env` passes os.environ, or a
    test's own), so nothing else leaks in. A value that does not parse is an error naming the
    variable: a typo in a flag (`SKYREELS_SHARED=ture`) refuses to start rather than read as off.
    """

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    api_key: SecretStr | None = _var("WAVESPEED_API_KEY")
    base_url: str | None = _var("WAVESPEED_BASE_URL")
    data_dir: Path | None = _var("SKYREELS_DATA_DIR")
    poll: str | None = _var("SKYREELS_POLL")
    run_deadline_s: float | None = _var("SKYREELS_RUN_TIMEOUT", gt=0)
    image_transport: Literal["auto", "upload", "inline"] | None = _var("SKYREELS_IMAGE_TRANSPORT")
    low_balance_usd: float | None = _var("SKYREELS_LOW_BALANCE_USD", ge=0)
    confirm_above_usd: float | None = _var("SKYREELS_CONFIRM_ABOVE_USD", ge=0)
    tier: str | None = _var("SKYREELS_TIER")
    max_concurrent_tasks: int | None = _var("SKYREELS_MAX_CONCURRENT_TASKS", ge=1)
    visitor_runs_per_hour: int | None = _var("SKYREELS_VISITOR_RUNS_PER_HOUR", ge=0)
    signed_in_runs_per_hour: int | None = _var("SKYREELS_SIGNED_IN_RUNS_PER_HOUR", ge=0)
    app_runs_per_day: int | None = _var("SKYREELS_APP_RUNS_PER_DAY", ge=0)
    preview_runs_per_hour: int | None = _var("SKYREELS_PREVIEW_RUNS_PER_HOUR", ge=0)
    preview_runs_per_day: int | None = _var("SKYREELS_PREVIEW_RUNS_PER_DAY", ge=0)
    queue_size: int | None = _var("SKYREELS_QUEUE_SIZE", ge=0)
    max_wait_minutes: float | None = _var("SKYREELS_MAX_WAIT_MINUTES", ge=0)
    submits_per_minute: float | None = _var("SKYREELS_SUBMITS_PER_MINUTE", gt=0)
    shared: bool | None = _var("SKYREELS_SHARED")
    proxy_hops: int | None = _var("SKYREELS_PROXY_HOPS", ge=0)
    keep_days: float | None = _var("SKYREELS_KEEP_DAYS", ge=0)
    disk_budget_mb: float | None = _var("SKYREELS_DISK_BUDGET_MB", ge=0)
    upload_mb_per_hour: float | None = _var("SKYREELS_UPLOAD_MB_PER_HOUR", ge=0)
    upload_budget_mb: float | None = _var("SKYREELS_UPLOAD_BUDGET_MB", ge=0)
    preview_timing: str | None = _var("SKYREELS_PREVIEW_TIMING")
    preview_renders: bool | None = _var("SKYREELS_PREVIEW_RENDERS")
    allow_loopback_images: bool | None = _var("SKYREELS_ALLOW_LOOPBACK_IMAGES")
    sharing: bool | None = _var("SKYREELS_SHARING")
    check_scale: float | None = _var("SKYREELS_CHECK_SCALE", gt=0)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        return (init_settings,)  # only the mapping from_env hands over

    @classmethod
    def read(cls, env: Mapping[str, str]) -> "Environment":
        given = {name: value.strip() for name, value in env.items() if isinstance(value, str) and value.strip()}
        if "SKYREELS_IMAGE_TRANSPORT" in given:
            given["SKYREELS_IMAGE_TRANSPORT"] = given["SKYREELS_IMAGE_TRANSPORT"].lower()
        try:
            return cls(**given)
        except ValidationError as exc:
            raise BadSetting(_sentence(exc.errors()[0], given)) from None


def _sentence(error: dict, given: Mapping[str, str]) -> str:
    """One sentence for a variable that does not parse: which, what it must be, what it was."""
    name = str(error["loc"][0]) if error.get("loc") else "A setting"
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind.startswith("bool"):
        wanted = "a flag: 1, true, yes or on (or 0, false, no, off)"
    elif kind.startswith("int"):
        wanted = "a whole number"
    elif kind in ("float_parsing", "float_type"):
        wanted = "a number"
    elif kind == "literal_error":
        wanted = "one of " + str(ctx.get("expected", "")).replace("'", "")
    elif kind in ("greater_than", "greater_than_equal"):
        wanted = f"more than {ctx['gt']}" if kind == "greater_than" else f"{ctx.get('ge')} or more"
    else:
        wanted = error.get("msg", "valid").lower()
    return f"{name} must be {wanted}, not {given.get(name, '')!r}."


def _timing(name: str, raw: str | None, default: tuple[float, float]) -> tuple[float, float]:
    if raw is None:
        return default
    try:
        queue_s, processing_s = (float(part) for part in raw.split(","))
    except ValueError:
        raise BadSetting(f"{name} must be two numbers of seconds, queue,processing (like 1,3), not {raw!r}.") from None
    if queue_s < 0 or processing_s < 0:
        raise BadSetting(f"{name} must not be negative, not {raw!r}.")
    return queue_s, processing_s


def _tier(raw: str) -> Tier:
    """The account's tier as SKYREELS_TIER names it (default Bronze, every new account's)."""
    if raw.lower() not in TIERS:
        names = ", ".join(tier.name for tier in TIERS.values())
        raise BadSetting(f"SKYREELS_TIER must be one of {names}, not {raw!r}.")
    return TIERS[raw.lower()]


@dataclass(frozen=True)
class Settings:
    """How the studio talks to the API and where it keeps things."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    data_dir: Path = field(default_factory=_default_data_dir)
    # Poll schedule: "adaptive" (learns typical durations) or a fixed interval in seconds.
    poll: str = "adaptive"
    # Per-request timeouts, separate from the whole run's deadline, as the official SDK has
    # them: connect 10 s; a submit's answer 60 s (a slow one is not lost), an upload's 120 s;
    # polls, downloads and other reads 30 s.
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    submit_timeout_s: float = 60.0
    upload_timeout_s: float = 120.0
    run_deadline_s: float = 15 * 60.0
    max_video_bytes: int = 200 * 1024 * 1024
    # How the image reaches WaveSpeed: "auto" (ticket and PUT, then binary, then inline),
    # "upload" (never inline) or "inline" (a data URI in the submit, no upload).
    image_transport: str = "auto"
    # Warn the owner (in the log) when their credit falls below this many dollars.
    low_balance_usd: float = 2.0
    # `sweep` asks before spending more than this many dollars.
    confirm_above_usd: float = 1.0
    # Shared use of the owner's key on a public Space: tasks at once, as the account's tier
    # allows (WaveSpeed's Bronze, every new account's: 2; SKYREELS_TIER names another).
    max_concurrent_tasks: int = BRONZE.tasks_at_once
    visitor_runs_per_hour: int = 5
    signed_in_runs_per_hour: int = 15
    app_runs_per_day: int = 100
    # The offline preview costs this machine's CPU and disk: capped too.
    preview_runs_per_hour: int = 30
    preview_runs_per_day: int = 500
    # The line for the owner's key (line.py): its length, the longest wait worth offering, and
    # submits spread evenly to the account's per-minute limit (Bronze: 2).
    queue_size: int = 100
    max_wait_minutes: float = 30.0
    submits_per_minute: float = BRONZE.submits_per_minute
    # A public deployment (on a Space, or listening beyond loopback): the owner's key and the
    # preview are capped per visitor and per day, and each visitor sees only their own runs.
    shared: bool = False
    # An https address at which WaveSpeed can reach this app (or http on loopback, for local
    # testing): runs then get webhooks. Anything else is refused at start (ui.main logs it).
    public_url: str | None = None
    # Visitors can sign in with Hugging Face (a Space with `hf_oauth: true` sets OAUTH_CLIENT_ID).
    sign_in: bool = False
    # Proxies in front of the app whose X-Forwarded-For entry is trusted (a Space has one).
    proxy_hops: int = 0
    # Retention of videos and images in the data directory (run records always stay).
    keep_days: float = 30.0
    disk_budget_mb: float = 2000.0
    # Gradio's upload route, in shared mode: megabytes a visitor may put through it an hour,
    # and the most the upload folder (Gradio's cache) may hold (door.py).
    upload_mb_per_hour: float = 300.0
    upload_budget_mb: float = 1000.0
    # The offline preview's clock: seconds a task waits queued, then processing.
    preview_timing: tuple[float, float] = (1.0, 3.0)
    # Tests only: off, the offline preview answers every task with one small stock clip instead
    # of rendering a camera move over its picture (about a second of a core a run), for tests
    # that never look at the video.
    preview_renders: bool = True
    # Tests only: image addresses on this machine (127.0.0.1, ::1) may be fetched. Never on a
    # deployment, where an address from a visitor must not reach the server itself.
    allow_loopback_images: bool = False
    # Tests only: the model's check rule (models.CheckRule) on a faster clock, 0.1 making a video's
    # 2 s and 5 s into 0.2 s and 0.5 s. Honoured only for a backend on this machine (the offline
    # preview, a test server): checks of WaveSpeed's own tasks always keep its rule.
    check_scale: float = 1.0
    # Takes may be shared by link (`?take=<token>`); off, every link says the take is not shared.
    sharing: bool = True

    @property
    def has_key(self) -> bool:
        return bool(self.api_key)

    @property
    def runs_db(self) -> Path:
        return self.data_dir / "runs.sqlite3"

    @property
    def videos_dir(self) -> Path:
        """Where finished videos are kept (the folder is called `runs` in every data directory)."""
        return self.data_dir / "runs"

    @property
    def films_dir(self) -> Path:
        """Where cut films are kept."""
        return self.data_dir / "films"

    @property
    def images_dir(self) -> Path:
        """Where prepared images are kept, one file per distinct picture."""
        return self.data_dir / "images"

    @property
    def frames_dir(self) -> Path:
        """Where a frame picked to continue a shot is kept, named by its run (or its clip)."""
        return self.data_dir / "frames"

    @property
    def takes_dir(self) -> Path:
        """Where a take's export zip is kept, one folder per run, made once and reused."""
        return self.data_dir / "takes"

    @property
    def sweeps_dir(self) -> Path:
        """Where `sweep` writes its reports, one folder per sweep."""
        return self.data_dir / "sweeps"

    @property
    def preview_dir(self) -> Path:
        """The offline preview backend's own files: its tasks, uploads and renders."""
        return self.data_dir / "preview-backend"

    @property
    def browser_secret_path(self) -> Path:
        """The key that encrypts each browser's History id."""
        return self.data_dir / "browser-state.secret"

    @property
    def served_dirs(self) -> tuple[Path, ...]:
        """The folders the page serves files from, in place (names unguessable)."""
        return (self.videos_dir, self.images_dir, self.films_dir, self.frames_dir, self.takes_dir)

    @property
    def written_paths(self) -> tuple[Path, ...]:
        """Every file and folder the app writes in the data directory: all of it is counted in
        the disk budget, and everything but the records is swept by retention.py."""
        db = self.runs_db
        return (
            db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), self.browser_secret_path,
            *self.served_dirs, self.sweeps_dir, self.preview_dir,
        )

    def with_key(self, api_key: str | None) -> "Settings":
        return replace(self, api_key=api_key or None)

    def with_base_url(self, base_url: str) -> "Settings":
        return replace(self, base_url=base_url.rstrip("/"))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> "Settings":
        """Read the environment (or `env`), then apply explicit overrides."""
        env = dict(os.environ if env is None else env)
        read = Environment.read(env)
        tier = _tier(read.tier or BRONZE.name)
        special = {"api_key", "base_url", "data_dir", "tier", "shared", "proxy_hops", "preview_timing"}
        values = {k: v for k, v in read.model_dump(exclude=special).items() if v is not None}
        values.update(
            api_key=read.api_key.get_secret_value() if read.api_key else None,
            base_url=(read.base_url or DEFAULT_BASE_URL).rstrip("/"),
            data_dir=read.data_dir.expanduser() if read.data_dir else _default_data_dir(env),
            max_concurrent_tasks=read.max_concurrent_tasks or tier.tasks_at_once,
            submits_per_minute=read.submits_per_minute or tier.submits_per_minute,
            shared=read.shared if read.shared is not None else bool(env.get("SPACE_ID")) or _listens_beyond_loopback(env),
            sign_in=bool(env.get("OAUTH_CLIENT_ID")) and bool(env.get("SPACE_ID")),
            public_url=_public_url(env),
            proxy_hops=read.proxy_hops if read.proxy_hops is not None else (1 if env.get("SPACE_ID") else 0),
            preview_timing=_timing("SKYREELS_PREVIEW_TIMING", read.preview_timing, cls.preview_timing),
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
