"""structlog set-up: JSON lines to a file, and human-readable (terminal) or JSON (pipe) on stderr.

The two sinks have their own levels: by default the file gets every stage of every file
(debug) while the terminal shows run events, dedupe decisions and problems (info).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

# structlog is imported where it is used, not here: the CLI module imports this one for LEVELS,
# and worker processes import the CLI module (multiprocessing re-imports the main script), so a
# top-level import would cost every worker structlog and asyncio (~12.5 MB, ~90 ms here).

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
# Never written to any log, whatever a caller passes.
SECRET_KEYS = frozenset({"secured", "body"})


def _drop_secrets(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in SECRET_KEYS & event.keys():
        del event[key]
    return event


def _json(event: dict[str, Any]) -> str:
    # orjson: the writer logs every stage of every file, and the standard library's encoder
    # made that ~160 µs a file of the single writer's time
    return orjson.dumps(event, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class _Sinks:
    """Final processor: write to the file and/or stderr by level, then drop the event."""

    def __init__(
        self, console_level: str, console_format: str, file: TextIO | None, file_level: str,
        stream: TextIO,
    ) -> None:
        import structlog

        self.drop = structlog.DropEvent
        self.console_level = LEVELS[console_level]
        self.file_level = LEVELS[file_level]
        self.file = file
        self.stream = stream
        self.console = (
            structlog.dev.ConsoleRenderer(colors=stream.isatty())
            if console_format == "console" else None
        )

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> Any:
        level = LEVELS.get(event.get("level", "info"), 20)
        line = None
        if self.file is not None and level >= self.file_level:
            line = _json(event)
            self.file.write(line + "\n")
            if level >= 20:  # rare events show at once; per-stage debug lines wait for the batch
                self.file.flush()
        if level >= self.console_level:
            if self.console is not None:
                text = self.console(logger, method, dict(event))
            else:
                text = line or _json(event)
            self.stream.write(text + "\n")
            self.stream.flush()
        raise self.drop


_open_file: TextIO | None = None
_sinks: _Sinks | None = None


def configure(
    level: str = "info",
    fmt: str = "auto",
    file: str | os.PathLike[str] | None = None,
    file_level: str = "debug",
    stream: TextIO | None = None,
) -> None:
    """(Re)configure logging for this process."""
    global _open_file, _sinks
    import structlog

    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    if _open_file is not None:
        _open_file.close()
        _open_file = None
    if file is not None:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        # block-buffered (a write per line cost ~13 µs a file's event); the ingest path flushes
        # after every batch, and an exit flushes what is left
        _open_file = open(file, "a", encoding="utf-8")
    min_level = min(LEVELS[level], LEVELS[file_level] if file is not None else 100)
    _sinks = _Sinks(level, fmt, _open_file, file_level, stream)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            _drop_secrets,
            _sinks,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=False,
    )


def flush() -> None:
    """Write out buffered log lines (after each batch, so the file lags the database by at most
    one batch)."""
    if _open_file is not None:
        _open_file.flush()


def get_logger(**bound: Any) -> Any:
    import structlog

    return structlog.get_logger(**bound)


class _FileDebug:
    """A logger whose debug events go straight to the file sink, as the same JSON lines
    (fields, event, level, ts) structlog's processor chain makes; other levels go through it."""

    def __init__(self, logger: Any, file: TextIO) -> None:
        self._file = file
        self.info, self.warning, self.error = logger.info, logger.warning, logger.error
        self._ts, self._ts_until = "", 0.0

    def debug(self, event: str, **fields: Any) -> None:
        now = time.time()
        if now >= self._ts_until:  # formatted at most once a millisecond (~4 µs each time)
            self._ts = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
            self._ts_until = now + 0.001
        fields["event"] = event
        fields["level"] = "debug"
        fields["ts"] = self._ts
        self._file.write(_json(_drop_secrets(None, "debug", fields)) + "\n")


def per_file_logger(logger: Any) -> Any:
    """The logger for events logged for every file (every stage of every file, at debug).

    When only the file sink takes debug events, they skip structlog's processor chain: ~13 µs
    an event there, ~4 µs here (five events a file, written by the single writer's process).
    """
    sinks = _sinks
    if (sinks is None or sinks.file is None or sinks.file_level > LEVELS["debug"]
            or sinks.console_level <= LEVELS["debug"]):
        return logger  # (nobody takes debug events: structlog drops them cheapest)
    return _FileDebug(logger, sinks.file)
