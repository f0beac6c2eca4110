"""Settings from arguments and the environment, as one frozen value.

Every variable is optional. The API key is kept out of `repr` so a logged or printed Settings
never shows it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

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


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}.") from None


def _flag(raw: str | None, *, default: bool) -> bool:
    if raw is None or not raw.strip():
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: dict[str, str], name: str, default: int) -> int:
    return int(_float(env, name, default))


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


def _choice(env: dict[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {raw!r}.")
    return raw


def _tier(env: dict[str, str]) -> Tier:
    """The account's tier as SKYREELS_TIER names it (default Bronze, every new account's)."""
    raw = env.get("SKYREELS_TIER", "").strip().lower() or BRONZE.name.lower()
    if raw not in TIERS:
        names = ", ".join(tier.name for tier in TIERS.values())
        raise ValueError(f"SKYREELS_TIER must be one of {names}, not {raw!r}.")
    return TIERS[raw]


def is_loopback_url(url: str) -> bool:
    """Whether an http(s) address names this machine (127.x, ::1, localhost)."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host in {"localhost", "::1"} or host.startswith("127.")


def _timing(env: dict[str, str], name: str, default: tuple[float, float]) -> tuple[float, float]:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        queue_s, processing_s = (float(part) for part in raw.split(","))
    except ValueError:
        raise ValueError(f"{name} must be two numbers of seconds, queue,processing (like 1,3), not {raw!r}.") from None
    if queue_s < 0 or processing_s < 0:
        raise ValueError(f"{name} must not be negative, not {raw!r}.")
    return queue_s, processing_s


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
        tier = _tier(env)
        values = dict(
            api_key=env.get("WAVESPEED_API_KEY", "").strip() or None,
            base_url=(env.get("WAVESPEED_BASE_URL", "").strip() or DEFAULT_BASE_URL).rstrip("/"),
            data_dir=Path(env["SKYREELS_DATA_DIR"]).expanduser()
            if env.get("SKYREELS_DATA_DIR", "").strip()
            else _default_data_dir(env),
            poll=env.get("SKYREELS_POLL", "").strip() or "adaptive",
            run_deadline_s=_float(env, "SKYREELS_RUN_TIMEOUT", cls.run_deadline_s),
            image_transport=_choice(env, "SKYREELS_IMAGE_TRANSPORT", ("auto", "upload", "inline")),
            low_balance_usd=_float(env, "SKYREELS_LOW_BALANCE_USD", cls.low_balance_usd),
            confirm_above_usd=_float(env, "SKYREELS_CONFIRM_ABOVE_USD", cls.confirm_above_usd),
            max_concurrent_tasks=_int(env, "SKYREELS_MAX_CONCURRENT_TASKS", tier.tasks_at_once),
            visitor_runs_per_hour=_int(env, "SKYREELS_VISITOR_RUNS_PER_HOUR", cls.visitor_runs_per_hour),
            signed_in_runs_per_hour=_int(env, "SKYREELS_SIGNED_IN_RUNS_PER_HOUR", cls.signed_in_runs_per_hour),
            app_runs_per_day=_int(env, "SKYREELS_APP_RUNS_PER_DAY", cls.app_runs_per_day),
            preview_runs_per_hour=_int(env, "SKYREELS_PREVIEW_RUNS_PER_HOUR", cls.preview_runs_per_hour),
            preview_runs_per_day=_int(env, "SKYREELS_PREVIEW_RUNS_PER_DAY", cls.preview_runs_per_day),
            queue_size=_int(env, "SKYREELS_QUEUE_SIZE", cls.queue_size),
            max_wait_minutes=_float(env, "SKYREELS_MAX_WAIT_MINUTES", cls.max_wait_minutes),
            submits_per_minute=_float(env, "SKYREELS_SUBMITS_PER_MINUTE", tier.submits_per_minute),
            shared=_flag(
                env.get("SKYREELS_SHARED"),
                default=bool(env.get("SPACE_ID")) or _listens_beyond_loopback(env),
            ),
            sign_in=bool(env.get("OAUTH_CLIENT_ID")) and bool(env.get("SPACE_ID")),
            public_url=_public_url(env),
            proxy_hops=_int(env, "SKYREELS_PROXY_HOPS", 1 if env.get("SPACE_ID") else 0),
            keep_days=_float(env, "SKYREELS_KEEP_DAYS", cls.keep_days),
            disk_budget_mb=_float(env, "SKYREELS_DISK_BUDGET_MB", cls.disk_budget_mb),
            upload_mb_per_hour=_float(env, "SKYREELS_UPLOAD_MB_PER_HOUR", cls.upload_mb_per_hour),
            upload_budget_mb=_float(env, "SKYREELS_UPLOAD_BUDGET_MB", cls.upload_budget_mb),
            preview_timing=_timing(env, "SKYREELS_PREVIEW_TIMING", cls.preview_timing),
            allow_loopback_images=_flag(env.get("SKYREELS_ALLOW_LOOPBACK_IMAGES"), default=False),
            sharing=_flag(env.get("SKYREELS_SHARING"), default=True),
            check_scale=_float(env, "SKYREELS_CHECK_SCALE", cls.check_scale),
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
