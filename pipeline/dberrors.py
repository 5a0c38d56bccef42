"""What a database error means for us, and the retry every writer uses.

Three kinds of SQLite failure are not bugs and get their own handling:

- *locked*: another connection holds the write lock beyond ``busy_timeout_ms``. Nothing was
  written (the transaction rolled back), so the same batch is retried with backoff.
- *full*: the disk (or a size limit) is full. The transaction rolled back; backfill stops with
  a clear message, the daemon pauses and retries.
- *damaged*: the file is not a database or its pages are malformed. Retrying cannot help:
  every command stops and points at ``pipeline doctor``.
"""

from __future__ import annotations

import errno
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from .logs import get_logger

log = get_logger()

T = TypeVar("T")

_LOCKED = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_FULL = {sqlite3.SQLITE_FULL}
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


def kind(exc: BaseException) -> str | None:
    """'locked', 'full', 'damaged' or None (anything else) for an exception."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "full"
    if not isinstance(exc, sqlite3.Error):
        return None
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # primary code
    text = str(exc).lower()
    if code in _LOCKED or "database is locked" in text or "database table is locked" in text:
        return "locked"
    if code in _FULL or "database or disk is full" in text:
        return "full"
    if code in _DAMAGED or "malformed" in text or "not a database" in text:
        return "damaged"
    return None


class DatabaseDamaged(Exception):
    """The database file is damaged; the message says what to do."""

    def __init__(self, db: str, exc: BaseException) -> None:
        super().__init__(
            f"the database {db} is damaged ({exc}). Nothing more was written to it. Run "
            f"`pipeline doctor --db {db}` to see what is wrong, then `pipeline doctor --db {db} "
            f"--repair --resync PATH...` to rebuild it from the article files (README: Reliability)"
        )


class DiskFull(Exception):
    def __init__(self, db: str, exc: BaseException) -> None:
        super().__init__(
            f"the disk holding {db} is full ({exc}); the batch in progress was rolled back, "
            f"everything committed before it is intact. Free some space and run the same "
            f"command again: it carries on where it stopped"
        )


def describe(db: str, exc: BaseException) -> str:
    """One clear sentence for a command that could not run on the database."""
    better = explain(db, exc)
    return str(better) if better is not exc else f"cannot run on {db}: {exc}"


def explain(db: str, exc: BaseException) -> BaseException:
    """The clear error for a damaged database or a full disk; other exceptions unchanged."""
    k = kind(exc)
    if k == "damaged":
        return DatabaseDamaged(db, exc)
    if k == "full":
        return DiskFull(db, exc)
    return exc


def retry_locked(func: Callable[[], T], *, what: str, give_up_after_s: float) -> T:
    """Run ``func`` (one whole transaction) again, with backoff, while the database stays locked
    by another writer; after ``give_up_after_s`` of trying, the last error is raised."""
    deadline = time.monotonic() + give_up_after_s
    delay = 0.05
    while True:
        try:
            return func()
        except sqlite3.Error as exc:
            if kind(exc) != "locked" or time.monotonic() + delay > deadline:
                raise
            log.warning("db.locked", step=what, retry_in_s=round(delay, 2),
                        hint="another process holds the database's write lock")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
