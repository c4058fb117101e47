"""Lines that the lifecycle commands print, and the wording their messages share."""

from __future__ import annotations

import shlex

import click

from devenv import ports
from devenv.config import DEFAULT_CONFIG_PATH, DevConfig


def echo(message: str) -> None:
    click.echo(message)


def warn(message: str) -> None:
    click.echo(f"devenv: {message}", err=True)


def config_option(config: DevConfig, flag: str = "") -> str:
    """Return ` [FLAG]PATH` for hints that must name a config other than the default one."""
    if config.config_path == DEFAULT_CONFIG_PATH.resolve():
        return ""
    return f" {flag}{shlex.quote(str(config.config_path))}"


def those_processes(holders: list[ports.PortHolder]) -> str:
    """Return "that process" or "those processes", counting a pid that listens on several ports once."""
    # A hidden holder (pid None) may be any process, so each one counts.
    distinct = {holder.pid if holder.pid is not None else ("hidden", holder.port) for holder in holders}
    return "that process" if len(distinct) == 1 else "those processes"
