"""The `fasterapi` command: a thin click layer over `Config`. Every option can also be set
through the environment as `FASTERAPI_<OPTION>` (and the app as `FASTERAPI_APP`)."""

from __future__ import annotations

import platform
import sys
from typing import Any

import click

from fasterapi.config import INTERFACES, LIFESPAN_MODES, LOOP_CHOICES, Config
from fasterapi.logging import LOG_LEVELS


def _version() -> str:
    from fasterapi import __version__

    return __version__


def print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(
        f"Running fasterapi {_version()} with {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()}"
    )
    ctx.exit()


@click.command(context_settings={"auto_envvar_prefix": "FASTERAPI"})
@click.argument("app", envvar="FASTERAPI_APP")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind socket to this host.")
@click.option(
    "--port",
    default=8000,
    type=click.IntRange(0, 65535),
    show_default=True,
    help="Bind socket to this port. If 0, an available port will be picked.",
)
@click.option(
    "--app-dir",
    default=".",
    show_default=True,
    help="Look for APP in the specified directory, by adding this to the PYTHONPATH.",
)
@click.option(
    "--factory",
    is_flag=True,
    default=False,
    help="Treat APP as an application factory, i.e. a () -> <ASGI app> callable.",
)
@click.option(
    "--lifespan",
    type=click.Choice(LIFESPAN_MODES),
    default="auto",
    show_default=True,
    help="Lifespan implementation.",
)
@click.option(
    "--interface",
    type=click.Choice(INTERFACES),
    default="auto",
    show_default=True,
    help="Select ASGI3 or ASGI2 as the application interface.",
)
@click.option(
    "--log-level",
    type=click.Choice(list(LOG_LEVELS)),
    default=None,
    help="Log level. [default: info]",
)
@click.option("--access-log/--no-access-log", default=True, help="Enable/Disable access log.")
@click.option(
    "--loop",
    type=click.Choice(LOOP_CHOICES),
    default="auto",
    show_default=True,
    help="Event loop implementation.",
)
@click.option(
    "--root-path",
    default="",
    help="Set the ASGI 'root_path' for applications submounted below a given URL path.",
)
@click.option(
    "--timeout-keep-alive",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Close Keep-Alive connections if no new data is received within this timeout.",
)
@click.option(
    "--timeout-graceful-shutdown",
    type=click.IntRange(min=0),
    default=None,
    help="Maximum number of seconds to wait for graceful shutdown.",
)
@click.option(
    "--server-header/--no-server-header",
    default=True,
    help="Enable/Disable default Server header.",
)
@click.option("--date-header/--no-date-header", default=True, help="Enable/Disable default Date header.")
@click.option(
    "--version",
    is_flag=True,
    callback=print_version,
    expose_value=False,
    is_eager=True,
    help="Display the fasterapi version and exit.",
)
def main(app: str, **options: Any) -> None:
    """Serve the ASGI application APP, given as "module:attribute"."""
    try:
        config = Config(app, **options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    from fasterapi.server import Server

    sys.exit(Server(config).run())


if __name__ == "__main__":  # pragma: no cover
    main()
