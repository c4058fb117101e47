"""The `devenv` command line: parse flags, load the config, call one function."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from devenv import nginx, render
from devenv.config import DEFAULT_CONFIG_PATH, load_config
from devenv.errors import DevenvError

CONFIG_ARGUMENT = click.argument(
    "config_path",
    metavar="[CONFIG]",
    required=False,
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CONFIG_PATH,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="devenv")
def cli() -> None:
    """Run a modular ASGI backend as uvicorn processes behind an nginx gateway.

    CONFIG defaults to config/dev-config.yaml.
    """


@cli.command()
@CONFIG_ARGUMENT
def check(config_path: Path) -> None:
    """Validate CONFIG, render the Procfile and nginx.conf, and run `nginx -t`."""
    config = load_config(config_path)
    prepared = render.prepare(config)
    click.echo(f"{config_path}: valid; wrote {prepared.procfile_path} and {prepared.nginx_conf_path} (nginx -t passed)")


@cli.group()
def gen() -> None:
    """Render one generated file to stdout or to a file."""


@gen.command("procfile")
@CONFIG_ARGUMENT
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file instead of stdout.")
def gen_procfile(config_path: Path, output: Path | None) -> None:
    """Render the Procfile for CONFIG."""
    config = load_config(config_path)
    text = render.render_procfile(config, nginx.find_nginx(config))
    _emit(text, output)


@gen.command("nginx")
@CONFIG_ARGUMENT
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file instead of stdout.")
@click.option("--validate", is_flag=True, help="Run `nginx -t` on the result before printing or writing it.")
def gen_nginx(config_path: Path, output: Path | None, validate: bool) -> None:
    """Render nginx.conf for CONFIG."""
    config = load_config(config_path)
    text = render.render_nginx_conf(config)
    if validate:
        render.validate_nginx_conf(config, nginx.find_nginx(config), text)
    _emit(text, output)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    changed = render.write_if_changed(output, text)
    click.echo(f"wrote {output}" if changed else f"{output} is up to date", err=True)


def main() -> None:
    """Run the CLI; a DevenvError becomes its message on stderr and its exit status."""
    try:
        cli.main(standalone_mode=False)
    except DevenvError as exc:
        click.echo(f"devenv: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("devenv: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
