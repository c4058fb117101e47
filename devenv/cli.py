"""The `devenv` command line: parse flags, load the config, call one function."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from devenv import lifecycle, logs, manager, nginx, render, status as status_report, stopping
from devenv.config import DEFAULT_CONFIG_PATH, load_config
from devenv.errors import DevenvError
from devenv.processes import KILL_WAIT_S

CONFIG_ARGUMENT = click.argument(
    "config_path",
    metavar="[CONFIG]",
    required=False,
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CONFIG_PATH,
)
OUTPUT_OPTION = click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file instead of stdout."
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
    """Validate CONFIG, write the Procfile and nginx.conf, and run `nginx -t`.

    While a stack runs from CONFIG's state_dir, its files are left as they are.
    """
    config = load_config(config_path)
    click.echo(f"{config_path}: {lifecycle.check(config)}")


@cli.group()
def gen() -> None:
    """Render one generated file to stdout or to a file."""


@gen.command("procfile")
@CONFIG_ARGUMENT
@OUTPUT_OPTION
def gen_procfile(config_path: Path, output: Path | None) -> None:
    """Render the Procfile for CONFIG."""
    config = load_config(config_path)
    text = render.render_procfile(config, nginx.find_nginx(config))
    _emit(text, output)


@gen.command("nginx")
@CONFIG_ARGUMENT
@OUTPUT_OPTION
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


# Lifecycle: start, stop, status, restart, logs.

STOP_TIMEOUT_OPTION = click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=KILL_WAIT_S,
    show_default=True,
    help="Seconds each stop stage waits after SIGTERM before it sends SIGKILL.",
)
NO_WAIT_OPTION = click.option(
    "--no-wait", is_flag=True, help="Return once the processes are launched, without waiting for health checks."
)


def start_timeout_option(name: str):
    """Return the option `name` that sets how long a start waits for its health checks."""
    return click.option(
        name,
        type=click.FloatRange(min=0),
        default=lifecycle.START_TIMEOUT_S,
        show_default=True,
        help="Maximum seconds to wait until every health check passes.",
    )


@cli.command()
@CONFIG_ARGUMENT
@click.option("--foreground", is_flag=True, help="Run attached with prefixed output; Ctrl+C stops every process.")
@NO_WAIT_OPTION
@start_timeout_option("--timeout")
@click.pass_context
def start(ctx: click.Context, config_path: Path, foreground: bool, no_wait: bool, timeout: float) -> None:
    """Start nginx and every uvicorn instance of CONFIG and wait until they are healthy."""
    config = load_config(config_path)
    ctx.exit(lifecycle.start(config, foreground=foreground, wait=not no_wait, timeout_s=timeout))


@cli.command()
@CONFIG_ARGUMENT
@STOP_TIMEOUT_OPTION
def stop(config_path: Path, timeout: float) -> None:
    """Stop the gateway, then the module servers, then core, and wait until their ports are free.

    When CONFIG fails validation, stops what the PID files in the state_dir it names record.
    """
    stopping.stop_config_file(config_path, timeout_s=timeout)


@cli.command()
@CONFIG_ARGUMENT
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
def status(ctx: click.Context, config_path: Path, as_json: bool) -> None:
    """Show each process's pid, port, health and uptime.

    Exit status: 0 every process healthy, 1 degraded, 3 not running.
    """
    config = load_config(config_path)
    ctx.exit(status_report.status(config, as_json=as_json))


@cli.command()
@CONFIG_ARGUMENT
@STOP_TIMEOUT_OPTION
@click.option("--foreground", is_flag=True, help="Run attached after the restart; Ctrl+C stops every process.")
@NO_WAIT_OPTION
@start_timeout_option("--start-timeout")
@click.pass_context
def restart(
    ctx: click.Context, config_path: Path, timeout: float, foreground: bool, no_wait: bool, start_timeout: float
) -> None:
    """Stop whatever runs for CONFIG, wait until its ports are free, then start again."""
    config = load_config(config_path)
    ctx.exit(
        lifecycle.restart(
            config, timeout_s=timeout, foreground=foreground, wait=not no_wait, start_timeout_s=start_timeout
        )
    )


@cli.command("logs")
@click.argument("names", nargs=-1, metavar="[NAME ...]")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CONFIG_PATH,
    show_default=True,
    help="Config file whose state_dir contains the logs.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl+C.")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=logs.DEFAULT_TAIL_LINES, show_default=True, help="Number of past lines to print first.")
@click.option("--nginx", "nginx_log", is_flag=True, help="Show the nginx access log instead of process output.")
@click.option("--clean", is_flag=True, help="Truncate every log file (the files stay).")
def logs_command(config_path: Path, names: tuple[str, ...], follow: bool, lines: int, nginx_log: bool, clean: bool) -> None:
    """Print process output: the unified log, or only the NAMEs given (process or server names)."""
    config = load_config(config_path)
    if clean:
        logs.clean_logs(config)
        return
    try:
        logs.print_logs(config, list(names), lines=lines, follow=follow, nginx=nginx_log)
    except KeyboardInterrupt:
        pass


@cli.command(hidden=True)
@click.argument("config_path", type=click.Path(dir_okay=False, path_type=Path))
def supervise(config_path: Path) -> None:
    """Run the supervisor of a detached start (launched by `devenv start`)."""
    config = load_config(config_path)
    manager.supervise(config)


def main() -> None:
    """Run the CLI; a DevenvError becomes its message on stderr and its exit status."""
    try:
        # Without standalone mode, click returns the code of ctx.exit(code) instead of exiting.
        exit_code = cli.main(standalone_mode=False)
    except DevenvError as exc:
        # A ConfigError has one line per problem, so each line gets the prefix and reads on its own.
        for line in str(exc).splitlines():
            click.echo(f"devenv: {line}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("devenv: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(exit_code if isinstance(exit_code, int) else 0)
