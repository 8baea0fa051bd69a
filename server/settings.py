"""Settings: read once at start from the environment (then `.env`, then defaults).

Every setting is named `PARLEY_<NAME>`; `docs/configuration.md` lists them all. Secrets are wrapped
in `Secret` so that they never print. A bad value stops start-up with a message naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Secret", "Settings", "SettingsError", "load_settings"]


class SettingsError(Exception):
    """A setting is missing or has a value we cannot use; the message names the variable."""


class Secret:
    """A string that hides itself from `repr` and `str`, so logs and tracebacks never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


ENVIRONMENTS = ("production", "development", "test", "bench")
BROKER_DEFINITIONS = "broker_definitions"  # the default folder, when it exists
CLOCKS = ("system", "manual")


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/parley.sqlite3"
    environment: str = "development"
    clock: str = "system"
    clock_start: datetime | None = None  # where the manual clock starts (a restarted test server)
    max_webhook_bytes: int = 64 * 1024
    trust_forwarded_headers: bool = False
    public_base_url: str = ""
    broker_definitions: str = ""  # a folder of broker definition files; "" for none
    sqlite_synchronous: str = "FULL"
    group_commit_max: int = 512
    log_level: str = "WARNING"
    noop_route: bool = False
    heartbeat_s: int = 15
    sandbox: bool = True
    sandbox_url: str = "http://127.0.0.1:8000/sandbox"
    media_dir: str = "var/media"
    attachment_ttl_s: int = 7 * 24 * 3600
    max_attachment_bytes: int = 5 * 1024 * 1024
    send_retry_base_s: float = 2.0  # the first wait after a failed send; doubles each time


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip().strip("'\"")
    return values


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name} must be true or false, not {value!r}")


def _broker_definitions(value: str | None) -> str:
    """The folder of broker definitions: the one named (it must exist; "" names none), else
    `broker_definitions` in the working directory when there is one."""
    if value is None:
        return BROKER_DEFINITIONS if Path(BROKER_DEFINITIONS).is_dir() else ""
    if value.strip() and not Path(value.strip()).is_dir():
        raise SettingsError(f"PARLEY_BROKER_DEFINITIONS must name a folder, not {value!r}")
    return value.strip()


def _integer(name: str, value: str, *, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, not {value!r}") from None
    if number < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {number}")
    return number


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _media_dir(value: str) -> str:
    if not value.strip():
        raise SettingsError("PARLEY_MEDIA_DIR must name a folder, not be empty")
    return value.strip()


def load_settings(
    environ: Mapping[str, str] | None = None, *, dotenv: Path | None = Path(".env")
) -> Settings:
    """Read the settings: the environment wins over `.env`, which wins over the defaults.

    Raises `SettingsError` naming the variable when a value cannot be used.
    """
    source: dict[str, str] = _read_dotenv(dotenv) if dotenv is not None else {}
    source.update(os.environ if environ is None else environ)

    def get(name: str, default: str) -> str:
        return source.get(f"PARLEY_{name}", default)

    defaults = Settings()
    environment = _choice("PARLEY_ENV", get("ENV", defaults.environment), ENVIRONMENTS)
    clock = _choice("PARLEY_CLOCK", get("CLOCK", defaults.clock), CLOCKS)
    if clock == "manual" and environment != "test":
        raise SettingsError("PARLEY_CLOCK=manual is only allowed with PARLEY_ENV=test")
    clock_start = _instant("PARLEY_CLOCK_START", get("CLOCK_START", ""))
    if clock_start is not None and clock != "manual":
        raise SettingsError("PARLEY_CLOCK_START is only for PARLEY_CLOCK=manual")
    synchronous = get("SQLITE_SYNCHRONOUS", defaults.sqlite_synchronous).upper()
    _choice("PARLEY_SQLITE_SYNCHRONOUS", synchronous, ("FULL", "NORMAL"))
    database_url = get("DATABASE_URL", defaults.database_url)
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url.removeprefix("postgres://")
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    if not database_url.startswith(("sqlite:///", "postgresql+psycopg://")):
        raise SettingsError(
            "PARLEY_DATABASE_URL must be sqlite:///PATH or postgresql://..., "
            f"not {database_url.split(':', 1)[0]}:..."
        )
    return Settings(
        database_url=database_url,
        environment=environment,
        clock=clock,
        clock_start=clock_start,
        max_webhook_bytes=_integer(
            "PARLEY_MAX_WEBHOOK_BYTES",
            get("MAX_WEBHOOK_BYTES", str(defaults.max_webhook_bytes)),
            minimum=1024,
        ),
        trust_forwarded_headers=_flag(
            "PARLEY_TRUST_FORWARDED_HEADERS", get("TRUST_FORWARDED_HEADERS", "false")
        ),
        public_base_url=get("PUBLIC_BASE_URL", "").rstrip("/"),
        broker_definitions=_broker_definitions(source.get("PARLEY_BROKER_DEFINITIONS")),
        sqlite_synchronous=synchronous,
        group_commit_max=_integer(
            "PARLEY_GROUP_COMMIT_MAX",
            get("GROUP_COMMIT_MAX", str(defaults.group_commit_max)),
            minimum=1,
        ),
        log_level=get("LOG_LEVEL", defaults.log_level).upper(),
        noop_route=_flag("PARLEY_NOOP_ROUTE", get("NOOP_ROUTE", "false")),
        sandbox=_flag(
            "PARLEY_SANDBOX",
            get("SANDBOX", "false" if environment == "production" else "true"),
        ),
        heartbeat_s=_integer("PARLEY_HEARTBEAT_S", get("HEARTBEAT_S", "15"), minimum=1),
        sandbox_url=get(
            "SANDBOX_URL", f"http://127.0.0.1:{source.get('PORT', '8000')}/sandbox"
        ).rstrip("/"),
        media_dir=_media_dir(get("MEDIA_DIR", defaults.media_dir)),
        attachment_ttl_s=_integer(
            "PARLEY_ATTACHMENT_TTL_S",
            get("ATTACHMENT_TTL_S", str(defaults.attachment_ttl_s)),
            minimum=60,
        ),
        max_attachment_bytes=_integer(
            "PARLEY_MAX_ATTACHMENT_BYTES",
            get("MAX_ATTACHMENT_BYTES", str(defaults.max_attachment_bytes)),
            minimum=1024,
        ),
        send_retry_base_s=_seconds(
            "PARLEY_SEND_RETRY_BASE_S", get("SEND_RETRY_BASE_S", str(defaults.send_retry_base_s))
        ),
    )


def _instant(name: str, value: str) -> datetime | None:
    if not value:
        return None
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(f"{name} must be an ISO 8601 time, got {value!r}") from None
    if instant.tzinfo is None:
        raise SettingsError(f"{name} must say its offset, e.g. 2026-01-01T09:00:00Z")
    return instant.astimezone(UTC)


def _seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {value!r}") from None
    if not 0.001 <= seconds <= 3600:
        raise SettingsError(f"{name} must be from 0.001 to 3600 seconds, got {value!r}")
    return seconds
