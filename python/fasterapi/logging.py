"""Logging set-up compatible with uvicorn's: the `fasterapi`, `fasterapi.error` and
`fasterapi.access` loggers, a coloured level prefix on a TTY, and uvicorn's access line format."""

from __future__ import annotations

import http
import logging
import sys
from copy import copy
from typing import Any, Literal

import click

TRACE_LOG_LEVEL = 5
logging.addLevelName(TRACE_LOG_LEVEL, "TRACE")

LOG_LEVELS: dict[str, int] = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE_LOG_LEVEL,
}


class ColourizedFormatter(logging.Formatter):
    """Adds `%(levelprefix)s`: the level name and a colon, padded to 9 columns, coloured on a TTY."""

    level_colors: dict[int, Any] = {
        TRACE_LOG_LEVEL: lambda name: click.style(str(name), fg="blue"),
        logging.DEBUG: lambda name: click.style(str(name), fg="cyan"),
        logging.INFO: lambda name: click.style(str(name), fg="green"),
        logging.WARNING: lambda name: click.style(str(name), fg="yellow"),
        logging.ERROR: lambda name: click.style(str(name), fg="red"),
        logging.CRITICAL: lambda name: click.style(str(name), fg="bright_red"),
    }

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        use_colors: bool | None = None,
    ) -> None:
        self.use_colors = sys.stdout.isatty() if use_colors is None else use_colors
        super().__init__(fmt=fmt, datefmt=datefmt, style=style)

    def color_level_name(self, level_name: str, level_no: int) -> str:
        color = self.level_colors.get(level_no, str)
        return str(color(level_name))

    def should_use_colors(self) -> bool:
        return True

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - stdlib name
        record = copy(record)
        level_name = record.levelname
        separator = " " * (8 - len(level_name))
        if self.use_colors and self.should_use_colors():
            level_name = self.color_level_name(level_name, record.levelno)
        record.__dict__["levelprefix"] = level_name + ":" + separator
        return super().formatMessage(record)


class DefaultFormatter(ColourizedFormatter):
    def should_use_colors(self) -> bool:
        return sys.stderr.isatty()


class AccessFormatter(ColourizedFormatter):
    """Formats records whose args are (client_addr, method, path, http_version, status_code)."""

    status_code_colours: dict[int, Any] = {
        1: lambda code: click.style(str(code), fg="bright_white"),
        2: lambda code: click.style(str(code), fg="green"),
        3: lambda code: click.style(str(code), fg="yellow"),
        4: lambda code: click.style(str(code), fg="red"),
        5: lambda code: click.style(str(code), fg="bright_red"),
    }

    def get_status_code(self, status_code: int) -> str:
        try:
            phrase = http.HTTPStatus(status_code).phrase
        except ValueError:
            phrase = ""
        text = f"{status_code} {phrase}".rstrip()
        if self.use_colors:
            colour = self.status_code_colours.get(status_code // 100, str)
            return str(colour(text))
        return text

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - stdlib name
        record = copy(record)
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client_addr, method, full_path, http_version, status_code = args
            request_line = f"{method} {full_path} HTTP/{http_version}"
            if self.use_colors:
                request_line = click.style(request_line, bold=True)
            record.__dict__.update(
                {
                    "client_addr": client_addr,
                    "request_line": request_line,
                    "status_code": self.get_status_code(int(status_code)),
                }
            )
        return super().formatMessage(record)


LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "()": "fasterapi.logging.DefaultFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        },
        "access": {
            "()": "fasterapi.logging.AccessFormatter",
            "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
        },
    },
    "handlers": {
        "default": {
            "formatter": "default",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "formatter": "access",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
        },
    },
    "loggers": {
        "fasterapi": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "fasterapi.error": {"level": "INFO"},
        "fasterapi.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


UVICORN_LOGGERS = {
    "uvicorn": "fasterapi",
    "uvicorn.error": "fasterapi.error",
    "uvicorn.access": "fasterapi.access",
}


def adopt_uvicorn_names(config: dict[str, Any] | None) -> dict[str, Any]:
    """Make a log config written for uvicorn drive our loggers.

    For a dict config, `uvicorn.*` loggers are renamed and `uvicorn.logging.*` formatter classes
    point at ours. With `None` (an ini file was already applied), the uvicorn loggers' level and
    handlers are copied onto ours.
    """
    if config is None:
        for theirs, ours in UVICORN_LOGGERS.items():
            source = logging.getLogger(theirs)
            if source.handlers or source.level:
                target = logging.getLogger(ours)
                target.handlers = list(source.handlers)
                target.setLevel(source.level)
                target.propagate = source.propagate
        return {}
    config = {**config}
    loggers = dict(config.get("loggers", {}))
    for theirs, ours in UVICORN_LOGGERS.items():
        if theirs in loggers and ours not in loggers:
            loggers[ours] = loggers.pop(theirs)
    config["loggers"] = loggers
    formatters = {}
    for name, spec in config.get("formatters", {}).items():
        spec = dict(spec)
        for key in ("()", "class"):
            if isinstance(spec.get(key), str) and spec[key].startswith("uvicorn.logging."):
                spec[key] = "fasterapi.logging." + spec[key].removeprefix("uvicorn.logging.")
        formatters[name] = spec
    if formatters:
        config["formatters"] = formatters
    return config


ACCESS_FORMAT = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'


def access_log_stream(access: logging.Logger) -> Any | None:
    """The stream access lines may be written to directly (batched, formatted by the core), when
    the access logger is exactly our default: one plain StreamHandler, the default access format
    without colours, no filters, no propagation. Any other configuration goes through logging."""
    if access.propagate or access.filters or len(access.handlers) != 1:
        return None
    handler = access.handlers[0]
    formatter = handler.formatter
    if (
        type(handler) is not logging.StreamHandler
        or handler.filters
        or handler.level > logging.INFO
        or type(formatter) is not AccessFormatter
        or formatter._fmt != ACCESS_FORMAT
        or formatter.use_colors
    ):
        return None
    return handler.stream
