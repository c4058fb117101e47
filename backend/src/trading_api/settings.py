"""Runtime settings of one server, read from environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MODULES_ENV = "ENABLED_MODULES"
UPDATE_INTERVAL_ENV = "TRADING_API_UPDATE_INTERVAL_S"
SEED_ENV = "TRADING_API_SEED"
WS_QUEUE_SIZE_ENV = "TRADING_API_WS_QUEUE_SIZE"

# Maps each settings field to the environment variable that sets it.
FIELD_ENV_NAMES = {
    "update_interval_s": UPDATE_INTERVAL_ENV,
    "seed": SEED_ENV,
    "ws_queue_size": WS_QUEUE_SIZE_ENV,
}


class SettingsError(ValueError):
    """Error raised for an invalid setting. The message names the environment variable."""


class Settings(BaseModel):
    """Settings of one server process."""

    model_config = ConfigDict(frozen=True)

    enabled_modules: tuple[str, ...] = Field(
        default=(), description="Modules this server runs; empty means core routes only."
    )
    update_interval_s: float = Field(
        default=0.2, gt=0, le=60, description="Seconds between two stream updates and fill simulator ticks."
    )
    seed: int = Field(default=42, description="Seed of the market data generator.")
    ws_queue_size: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="Messages buffered per WebSocket client before the oldest is dropped.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, known_modules: tuple[str, ...] = ()) -> Settings:
        """Build settings from environment variables, raising SettingsError on an invalid value."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {
            "enabled_modules": parse_enabled_modules(environ.get(MODULES_ENV, ""), known_modules),
        }
        for field, env_name in FIELD_ENV_NAMES.items():
            raw = environ.get(env_name, "").strip()
            if raw:
                values[field] = raw

        try:
            return cls(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0])
            env_name = FIELD_ENV_NAMES.get(field, field)
            raise SettingsError(
                f"{env_name}={environ.get(env_name, '')!r} is invalid: {error['msg']}; fix or unset the variable"
            ) from None


def parse_enabled_modules(value: str, known_modules: tuple[str, ...]) -> tuple[str, ...]:
    """Return the module names in a comma-separated ENABLED_MODULES value, in known-module order.

    An empty value means no module (core routes only) and `all` means every known module.
    Raises SettingsError naming the unknown module and listing the known ones.
    """
    names = [name.strip() for name in value.split(",") if name.strip()]
    if names == ["all"]:
        return known_modules

    unknown = [name for name in names if name not in known_modules]
    if unknown:
        raise SettingsError(
            f"{MODULES_ENV}={value!r} names unknown module(s) {', '.join(repr(name) for name in unknown)}; "
            f"known modules: {', '.join(known_modules)} (or 'all', or empty for core routes only)"
        )
    return tuple(name for name in known_modules if name in names)
