"""Tests of trading_api.settings: ENABLED_MODULES and the TRADING_API_* variables."""

from __future__ import annotations

import pytest

from trading_api.settings import Settings, SettingsError, parse_enabled_modules

KNOWN = ("broker", "datafeed")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ()),
        ("  ", ()),
        ("all", ("broker", "datafeed")),
        ("datafeed", ("datafeed",)),
        ("datafeed,broker", ("broker", "datafeed")),
        (" broker , ", ("broker",)),
        ("broker,broker", ("broker",)),
    ],
)
def test_parse_enabled_modules_valid(value: str, expected: tuple[str, ...]) -> None:
    assert parse_enabled_modules(value, KNOWN) == expected


def test_parse_enabled_modules_unknown_lists_known() -> None:
    with pytest.raises(SettingsError) as excinfo:
        parse_enabled_modules("broker,chat", KNOWN)

    assert str(excinfo.value) == (
        "ENABLED_MODULES='broker,chat' names unknown module(s) 'chat'; "
        "known modules: broker, datafeed (or 'all', or empty for core routes only)"
    )


def test_from_env_defaults() -> None:
    settings = Settings.from_env({}, KNOWN)

    assert settings.enabled_modules == ()
    assert settings.update_interval_s == 0.2
    assert settings.seed == 42
    assert settings.ws_queue_size == 256


def test_from_env_reads_variables() -> None:
    environ = {
        "ENABLED_MODULES": "all",
        "TRADING_API_UPDATE_INTERVAL_S": "0.05",
        "TRADING_API_SEED": "9",
        "TRADING_API_WS_QUEUE_SIZE": "10",
    }

    settings = Settings.from_env(environ, KNOWN)

    assert settings.enabled_modules == KNOWN
    assert settings.update_interval_s == 0.05
    assert settings.seed == 9
    assert settings.ws_queue_size == 10


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "TRADING_API_UPDATE_INTERVAL_S",
            "fast",
            "TRADING_API_UPDATE_INTERVAL_S='fast' is invalid: Input should be a valid number",
        ),
        (
            "TRADING_API_UPDATE_INTERVAL_S",
            "0",
            "TRADING_API_UPDATE_INTERVAL_S='0' is invalid: Input should be greater than 0",
        ),
        ("TRADING_API_SEED", "1.5", "TRADING_API_SEED='1.5' is invalid: Input should be a valid integer"),
        (
            "TRADING_API_WS_QUEUE_SIZE",
            "0",
            "TRADING_API_WS_QUEUE_SIZE='0' is invalid: Input should be greater than or equal to 1",
        ),
    ],
)
def test_from_env_invalid_value_names_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env({variable: value}, KNOWN)

    assert str(excinfo.value).startswith(message)
    assert str(excinfo.value).endswith("; fix or unset the variable")
