"""The `fasterapi` command: a thin click layer over `Config`, with uvicorn's options.

Every option can also be set through the environment as `FASTERAPI_<OPTION>`; when that is unset,
`UVICORN_<OPTION>` is read, so deployment files written for uvicorn keep working."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from typing import Any

import click

from fasterapi.config import (
    HTTP_CHOICES,
    INTERFACES,
    LIFESPAN_MODES,
    LOOP_CHOICES,
    SSL_PROTOCOL_TLS_SERVER,
    WS_CHOICES,
    Config,
)
from fasterapi.logging import LOG_LEVELS


def env(name: str) -> list[str]:
    """The environment variables for an option, ours first."""
    return [f"FASTERAPI_{name}", f"UVICORN_{name}"]


def option(*decls: str, **attrs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A click option whose environment variables are derived from its long name."""
    long = next(d for d in decls if d.startswith("--")).split("/")[0]
    attrs.setdefault("envvar", env(long[2:].replace("-", "_").upper()))
    attrs.setdefault("show_envvar", False)
    return click.option(*decls, **attrs)


def print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from fasterapi import __version__

    click.echo(
        f"Running fasterapi {__version__} with {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()}"
    )
    ctx.exit()


@click.command()
@click.argument("app", envvar=env("APP"))
@option("--host", default="127.0.0.1", show_default=True, help="Bind socket to this host.")
@option(
    "--port",
    default=8000,
    type=click.IntRange(0, 65535),
    show_default=True,
    help="Bind socket to this port. If 0, an available port will be picked.",
)
@option("--uds", default=None, help="Bind to a UNIX domain socket.")
@option("--fd", default=None, type=int, help="Bind to socket from this file descriptor.")
@option("--reload", is_flag=True, default=False, help="Enable auto-reload.")
@option(
    "--reload-dir",
    "reload_dirs",
    multiple=True,
    type=click.Path(exists=True),
    help="Set reload directories explicitly, instead of using the current working directory.",
)
@option(
    "--reload-include",
    "reload_includes",
    multiple=True,
    help="Set glob patterns to include while watching for files. Includes '*.py' by default.",
)
@option(
    "--reload-exclude",
    "reload_excludes",
    multiple=True,
    help="Set glob patterns to exclude while watching for files. "
    "Includes '.*, .py[cod], .sw.*, ~*' by default.",
)
@option(
    "--reload-delay",
    type=float,
    default=0.25,
    show_default=True,
    help="Delay between previous and next check if application needs to be reloaded.",
)
@option(
    "--workers",
    default=None,
    type=click.IntRange(min=1),
    help="Number of worker processes. Defaults to the $WEB_CONCURRENCY environment variable if "
    "available, or 1. Not valid with --reload.",
)
@option(
    "--loop",
    default="auto",
    metavar=f"[{'|'.join(LOOP_CHOICES)}|MODULE:FACTORY]",
    show_default=True,
    help="Event loop: auto (uvloop if installed, else asyncio), none (the asyncio policy's), or a "
    "loop factory as an import string.",
)
@option(
    "--http",
    type=click.Choice(HTTP_CHOICES),
    default="auto",
    show_default=True,
    help="HTTP versions: auto (HTTP/1.1 and h2c), h1, h2. uvicorn's h11, httptools and zttp mean h1.",
)
@option(
    "--http2",
    is_flag=True,
    default=False,
    help="Serve HTTP/2 beside HTTP/1.1 even with --http h11, httptools or zttp (as uvicorn's --http "
    "zttp --http2); --http auto always does.",
)
@option(
    "--ws",
    type=click.Choice(WS_CHOICES),
    default="auto",
    show_default=True,
    help="WebSockets: auto (on) or none (upgrade requests reach the app as HTTP). uvicorn's "
    "websockets, websockets-sansio and wsproto mean auto.",
)
@option(
    "--ws-max-size",
    type=int,
    default=16777216,
    show_default=True,
    help="WebSocket max size message in bytes.",
)
@option(
    "--ws-max-queue",
    type=int,
    default=32,
    show_default=True,
    help="The maximum length of the WebSocket message queue.",
)
@option(
    "--ws-ping-interval",
    type=float,
    default=20.0,
    show_default=True,
    help="WebSocket ping interval in seconds.",
)
@option(
    "--ws-ping-timeout",
    type=float,
    default=20.0,
    show_default=True,
    help="WebSocket ping timeout in seconds.",
)
@option(
    "--ws-per-message-deflate",
    type=bool,
    default=True,
    show_default=True,
    help="WebSocket per-message-deflate compression.",
)
@option(
    "--lifespan",
    type=click.Choice(LIFESPAN_MODES),
    default="auto",
    show_default=True,
    help="Lifespan implementation.",
)
@option(
    "--interface",
    type=click.Choice(INTERFACES),
    default="auto",
    show_default=True,
    help="Select ASGI3 or ASGI2 as the application interface.",
)
@option("--env-file", type=click.Path(exists=True), default=None, help="Environment configuration file.")
@option(
    "--log-config",
    type=click.Path(exists=True),
    default=None,
    help="Logging configuration file. Supported formats: .ini, .json, .yaml.",
)
@option("--log-level", type=click.Choice(list(LOG_LEVELS)), default=None, help="Log level. [default: info]")
@option("--access-log/--no-access-log", default=True, help="Enable/Disable access log.")
@option("--use-colors/--no-use-colors", default=None, help="Enable/Disable colorized logging.")
@option(
    "--proxy-headers/--no-proxy-headers",
    default=True,
    help="Enable/Disable X-Forwarded-Proto, X-Forwarded-For, X-Forwarded-Host and Forwarded to populate "
    "url scheme, remote address and host info.",
)
@option("--server-header/--no-server-header", default=True, help="Enable/Disable default Server header.")
@option("--date-header/--no-date-header", default=True, help="Enable/Disable default Date header.")
@option(
    "--forwarded-allow-ips",
    default=None,
    envvar=[*env("FORWARDED_ALLOW_IPS"), "FORWARDED_ALLOW_IPS"],
    help="Comma separated list of IP addresses, IP networks, or literals (e.g. unix:) to trust with proxy "
    "headers. Defaults to the $FORWARDED_ALLOW_IPS environment variable if available, or '127.0.0.1'. "
    "'*' trusts everyone.",
)
@option(
    "--root-path",
    default="",
    help="Set the ASGI 'root_path' for applications submounted below a given URL path.",
)
@option(
    "--limit-concurrency",
    type=int,
    default=None,
    help="Maximum number of concurrent requests before issuing HTTP 503.",
)
@option(
    "--backlog",
    type=int,
    default=2048,
    show_default=True,
    help="Maximum number of connections to hold in backlog.",
)
@option(
    "--limit-max-requests",
    type=int,
    default=None,
    help="Maximum number of requests to service before terminating the process.",
)
@option(
    "--limit-max-requests-jitter",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Maximum random number of extra requests added to --limit-max-requests, to stagger restarts.",
)
@option(
    "--timeout-keep-alive",
    type=int,
    default=5,
    show_default=True,
    help="Close Keep-Alive connections if no new data is received within this timeout.",
)
@option(
    "--timeout-graceful-shutdown",
    type=int,
    default=None,
    help="Maximum number of seconds to wait for graceful shutdown.",
)
@option(
    "--timeout-worker-healthcheck",
    type=int,
    default=5,
    show_default=True,
    help="Seconds to wait for a worker to respond.",
)
@option("--ssl-keyfile", type=str, default=None, help="SSL key file (PEM).")
@option("--ssl-certfile", type=str, default=None, help="SSL certificate file (PEM, with its chain).")
@option("--ssl-keyfile-password", type=str, default=None, help="SSL keyfile password (encrypted PKCS#8).")
@option(
    "--ssl-version",
    type=int,
    default=SSL_PROTOCOL_TLS_SERVER,
    show_default=True,
    help="SSL version to use (see stdlib ssl module's): 17/2 = TLS 1.2 and 1.3, 5 = TLS 1.2 only.",
)
@option(
    "--ssl-cert-reqs",
    type=int,
    default=0,
    show_default=True,
    help="Whether client certificate is required (see stdlib ssl module's): 0 none, 1 optional, 2 required.",
)
@option("--ssl-ca-certs", type=str, default=None, help="CA certificates file (PEM) for client certificates.")
@option(
    "--ssl-ciphers",
    type=str,
    default="TLSv1",
    show_default=True,
    help="Ciphers to use: TLSv1 for all, or a ':'-separated list of OpenSSL or rustls suite names.",
)
@option(
    "--ssl-handshake-timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds a client may take to complete the TLS handshake.",
)
@option(
    "--header",
    "headers",
    multiple=True,
    envvar=env("HEADER"),
    help="Specify custom default HTTP response headers as a Name:Value pair.",
)
@option(
    "--app-dir",
    default=".",
    show_default=True,
    help="Look for APP in the specified directory, by adding this to the PYTHONPATH.",
)
@option(
    "--h11-max-incomplete-event-size",
    type=int,
    default=None,
    help="Maximum size of an HTTP/1.1 request head in bytes.",
)
@option(
    "--reset-contextvars",
    is_flag=True,
    default=False,
    help="Run each ASGI request in a fresh contextvars.Context. Hides context set at import or in "
    "the lifespan.",
)
@option(
    "--factory",
    is_flag=True,
    default=False,
    help="Treat APP as an application factory, i.e. a () -> <ASGI app> callable.",
)
@option(
    "--limit-max-memory",
    type=click.IntRange(min=1),
    default=None,
    help="Replace a worker whose resident memory exceeds this many MiB (with --workers).",
)
@option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Tokio I/O threads.")
@option(
    "--limit-requests-per-connection",
    type=click.IntRange(min=1),
    default=None,
    help="Close a connection gracefully after this many requests (HTTP/2: GOAWAY).",
)
@option(
    "--h2-max-concurrent-streams",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="HTTP/2 streams a client may open at once on one connection.",
)
@option(
    "--h2-initial-stream-window-size",
    type=click.IntRange(65535, 2**31 - 1),
    default=1024 * 1024,
    show_default=True,
    help="HTTP/2 flow-control window per stream, in bytes.",
)
@option(
    "--h2-initial-connection-window-size",
    type=click.IntRange(65535, 2**31 - 1),
    default=2 * 1024 * 1024,
    show_default=True,
    help="HTTP/2 flow-control window per connection, in bytes.",
)
@option(
    "--h2-max-frame-size",
    type=click.IntRange(16384, 16777215),
    default=16384,
    show_default=True,
    help="Largest HTTP/2 frame payload accepted, in bytes.",
)
@option(
    "--h2-max-header-list-size",
    type=click.IntRange(min=1024),
    default=65536,
    show_default=True,
    help="Largest decoded HTTP/2 header block accepted, in bytes.",
)
@option(
    "--h2-keep-alive-interval",
    type=click.FloatRange(min=0.001),
    default=None,
    help="Send an HTTP/2 PING this often (seconds); off by default.",
)
@option(
    "--h2-keep-alive-timeout",
    type=click.FloatRange(min=0.001),
    default=20.0,
    show_default=True,
    help="Close the connection if a PING is not answered within this many seconds.",
)
@option(
    "--loops",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="App event loops per worker, each on its own thread with its own lifespan; requests are spread "
    "across them.",
)
@option(
    "--gc-freeze/--no-gc-freeze",
    default=True,
    show_default=True,
    help="Once lifespan startup is done, move what is alive then (modules, the app, its pools) out of the "
    "garbage collector's scans with gc.freeze(); its full collections then walk only what requests make.",
)
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
    for name in ("headers", "reload_dirs", "reload_includes", "reload_excludes"):
        options[name] = list(options[name])
    if options["log_config"] is None:
        del options["log_config"]  # keep Config's default logging set-up
    try:
        config = Config(app, **options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    from fasterapi.server import serve_config

    sys.exit(serve_config(config))


if __name__ == "__main__":  # pragma: no cover
    main()
