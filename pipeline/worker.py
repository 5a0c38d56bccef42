"""The entry points of the worker processes (``ingest.Ingestor``'s pool).

A module of their own, importing the stages only when a file is prepared: the writer hands
these functions to its pool without importing the stages itself (~6 MB and ~50 ms of every run
that reads files), and the workers import nothing of the writer (the store, the configuration,
structlog: ~30 MB less in each).
"""

from __future__ import annotations

import signal
from typing import Any

from .records import FileFacts, Options, Outcome, Rejection

_options: Options | None = None


def init_worker(options: Options, warmed: Any = None) -> None:
    global _options
    _options = options
    # Ctrl-C reaches the whole process group; the parent decides what stops
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if warmed is not None:  # a semaphore the parent waits on (Ingestor.warm_up)
        warm(options)
        warmed.release()


# A sample article run through the stages (never stored) so that the first real file does not
# pay for their lazy set-up (the public-suffix list, the language model, validators): ~0.4 s.
_SAMPLE = """---
title: "Warm-up &amp; sample"
excerpt: "Not stored: this text only warms up the stages."
publishedDateTime: 2020-01-01T00:00:00Z
webUrl: "https://www.example.com/warm-up?utm_source=x"
provider:
  name: Example
  domain: example.com
images:
  - url: "https://example.com/a.jpg"
related:
  - title: "Other"
    webUrl: "https://example.org/other"
---
"""


def warm(options: Options) -> None:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".md", encoding="utf-8") as fh:
        fh.write(_SAMPLE)
        fh.flush()
        work(fh.name, options)


def work(path: str, options: Options | None = None) -> Outcome:
    """``prepare_file`` with the worker's options (or the given ones, in the writer's process);
    a bug must cost one file, never the run."""
    from .prepare import prepare_file

    try:
        return prepare_file(path, options or _options)  # type: ignore[arg-type]
    except Exception as exc:
        return Rejection(FileFacts(path, 0, 0), "parse", f"internal error: {type(exc).__name__}: {exc}")
