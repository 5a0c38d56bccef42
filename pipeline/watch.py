"""The daemon, ``pipeline watch``: every complete article file that appears, changes, moves or
disappears under the watched folders is reflected in the database, exactly once.

Two threads matter. The watchdog observer thread only classifies an event by its path and puts
it on a bounded queue. The writer loop (the thread that calls ``Daemon.run``) owns everything
else: it decides when a file is complete, collapses bursts of events for one path into one
ingest, and writes through the same path as ``backfill`` (``Ingestor`` -> ``Store.write_batch``).

When is a file complete? On its close-after-write event (inotify), or when it was renamed into
place. A file that only got a created/modified event (polling, hard links, a folder moved in)
is complete once its size and mtime have not changed for ``quiet_period_ms`` and, where the
platform can tell (a Linux read lease), no process has it open for writing.

The decision is level-triggered: whatever the events said, the writer looks at the file system
when it acts (a "deleted" file that exists again is ingested, a "created" one that is gone is
skipped), and a reconcile (the same walk as backfill) at start and on a timer heals anything
the events missed.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import heapq
import json
import logging
import os
import queue
import signal
import socket
import stat as stat_mod
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from .config import Settings
from .dberrors import DatabaseDamaged, kind as db_error_kind, retry_locked
from .ingest import Ingestor, folder_matcher, is_candidate, sync, walk
from .logs import get_logger
from .store import COUNTS, Result, Store, now

log = get_logger()

# Events the daemon listens to. Opened/closed-without-write events are left out: the daemon's
# own reads would cause them. Modified events only matter without close events (polling).
_EVENTS = [FileCreatedEvent, FileClosedEvent, FileMovedEvent, FileDeletedEvent,
           DirCreatedEvent, DirMovedEvent, DirDeletedEvent]
_POLLING_EVENTS = [*_EVENTS, FileModifiedEvent]


class AlreadyRunning(Exception):
    """Another daemon holds the database's lock."""


# -- one daemon per database ----------------------------------------------------------------------


class DaemonLock:
    """An flock on ``<db>.lock``. The kernel drops it when the process dies, so a crashed daemon
    never leaves it stuck; the file's content (pid, host, start time) names the holder."""

    def __init__(self, db_path: str) -> None:
        self.path = f"{db_path}.lock"
        self._fd: int | None = None

    def acquire(self, wait_s: float = 2.0) -> None:
        # a short retry: `pipeline status` takes the lock shared for a moment to probe it
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise AlreadyRunning(_describe(holder, self.path)) from None
                time.sleep(0.05)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def holder(db_path: str) -> dict[str, Any] | None:
        """Who holds the lock of this database (pid, host, started_at), or None if nobody."""
        try:
            fd = os.open(f"{db_path}.lock", os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_holder(fd) or {}
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict[str, Any], lock_path: str) -> str:
    who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
    since = f", running since {holder['started_at']}" if holder.get("started_at") else ""
    return (f"another `pipeline watch` ({who}{since}) is already writing to this database "
            f"(lock {lock_path}); stop it first")


# -- "is somebody still writing this file?" ---------------------------------------------------------


def prepare_process() -> None:
    """Process-wide set-up for the daemon; call from the main thread.

    A read lease is how Linux tells whether a file is open for writing; when a writer opens a
    file while we hold a lease (for microseconds), the kernel sends SIGIO, whose default action
    would kill us, so it is ignored."""
    if hasattr(signal, "SIGIO"):
        signal.signal(signal.SIGIO, signal.SIG_IGN)


def open_for_writing(path: str) -> bool | None:
    """Whether a process has the file open for writing: True or False where Linux can tell (a
    read lease: our own files, or as root), None where it cannot (other platforms, network file
    systems, someone else's file, a file that is gone)."""
    if not hasattr(fcntl, "F_SETLEASE") or signal.getsignal(signal.SIGIO) != signal.SIG_IGN:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return True if exc.errno == errno.EAGAIN else None
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


# Under a backlog, one flush takes up to this many transactions' worth of files, so that the
# workers prepare the next transaction while the writer commits one (as in a backfill).
_FLUSH_BATCHES = 4

# A file gone whose bytes appeared elsewhere this recently was moved, not deleted.
_MOVE_WINDOW_S = 10.0

# A file whose mtime is at least this old cannot be rewritten without its mtime changing.
_RACY_NS = 50_000_000


def _full_stat(path: str) -> tuple[int, ...] | None:
    """(size, mtime_ns, ctime_ns, inode): any write or replacement changes one of them."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _stat_key(path: str) -> tuple[int, int] | None:
    """(size, mtime_ns) of a regular file, None if it is gone or not a regular file."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat_mod.S_ISREG(st.st_mode):
        return None
    return st.st_size, st.st_mtime_ns


# -- the watcher thread ---------------------------------------------------------------------------


class _Handler(FileSystemEventHandler):
    """Runs in the observer thread: classify by path, queue, nothing else."""

    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon

    def dispatch(self, event: FileSystemEvent) -> None:
        d = self.d
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if event.dest_path else ""
        if event.is_directory:
            kind = event.event_type
            src_ok = d.watched_folder(src)
            if kind == "moved":
                dest_ok = d.watched_folder(dest)
                if src_ok and dest_ok:
                    d.put(("dir_move", src, dest))
                elif src_ok:
                    d.put(("dir_gone", src, ""))
                elif dest_ok:
                    d.put(("dir_new", dest, ""))
            elif src_ok and kind == "created":
                d.put(("dir_new", src, ""))
            elif src_ok and kind == "deleted":
                d.put(("dir_gone", src, ""))
            return
        kind = event.event_type
        if kind == "moved":
            src_ok, dest_ok = d.watched_file(src), d.watched_file(dest)
            if src_ok and dest_ok:
                d.put(("move", src, dest))
            elif src_ok:
                d.put(("gone", src, ""))
            elif dest_ok:
                d.put(("write", dest, ""))  # renamed into place: complete
        elif d.watched_file(src):
            if kind == "closed":
                d.put(("write", src, ""))
            elif kind == "deleted":
                d.put(("gone", src, ""))
            elif kind in ("created", "modified"):
                d.put(("touch", src, ""))


class _OverflowSignal(logging.Handler):
    """watchdog reports an inotify queue overflow (events lost) only through its log; turn
    that into an immediate reconcile."""

    def __init__(self, daemon: Daemon) -> None:
        super().__init__(logging.WARNING)
        self.d = daemon

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.d.put(("overflow", "", ""))


# -- the writer loop ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    due: float  # monotonic time to look at the file again
    stat: tuple[int, int] | None  # (size, mtime_ns) when last looked at
    trust_stat: bool  # found by a walk: skip reading when size+mtime equal the database's


class Daemon:
    """``pipeline watch`` as an object: ``run()`` blocks until ``stop()`` (or SIGINT/SIGTERM)."""

    def __init__(self, settings: Settings, roots: list[str], *, polling: bool | None = None) -> None:
        self.settings = settings
        self.cfg = settings.watch
        self.roots = [os.path.abspath(r) for r in roots]
        for root in self.roots:
            if not os.path.isdir(root):
                raise FileNotFoundError(f"not a folder: {root}")
        self.polling = self.cfg.polling if polling is None else polling
        self.observer_kind = ""
        self.queue: queue.Queue[tuple[str, str, str]] = queue.Queue(self.cfg.queue_max)
        self.ready = threading.Event()  # set once the start-up reconcile is done
        self.run_id: int | None = None
        self._stopping = threading.Event()
        self._quiet = self.cfg.quiet_period_ms / 1000
        self._patterns, self._ignore = tuple(settings.patterns), tuple(settings.ignore)
        self._folder_ignored = folder_matcher(settings)
        self._waiting: dict[str, _Pending] = {}  # files not known to be complete yet
        self._heap: list[tuple[float, str]] = []  # (due, path) for _waiting; stale entries skipped
        self._ready: dict[str, bool] = {}  # complete files to write, in order -> trust_stat
        self._recent: OrderedDict[str, tuple[int, ...]] = OrderedDict()  # see _remember
        self._last_event = 0.0
        self._last_commit = 0.0
        self._last_reconcile = 0.0
        self._last_beat = 0.0
        self._dirty = True
        self._signalled = 0
        self._next_reconcile = float("inf")
        self._reconcile_reason = "timer"
        self._reconcile_backoff = 0.0
        self._write_backoff = 0.0
        self.counts: Counter[str] = Counter({k: 0 for k in COUNTS})

    # -- called from other threads --------------------------------------------------------------

    def stop(self) -> None:
        """Stop taking events, finish the batch in hand, record the run and return from run()."""
        self._stopping.set()
        try:
            self.queue.put_nowait(("stop", "", ""))
        except queue.Full:
            pass  # the loop looks at the flag at least twice a second

    def put(self, item: tuple[str, str, str]) -> None:
        # bounded: when full, the observer thread waits here (the kernel buffers meanwhile)
        while not self._stopping.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def watched_file(self, path: str) -> bool:
        rel = self._relative(path)
        if rel is None:
            return False
        *folders, name = rel.split(os.sep)
        return (is_candidate(name, self._patterns, self._ignore)
                and not any(self._folder_ignored(f) for f in folders))

    def watched_folder(self, path: str) -> bool:
        rel = self._relative(path)
        return rel is not None and not any(self._folder_ignored(f) for f in rel.split(os.sep))

    def _relative(self, path: str) -> str | None:
        for root in self.roots:
            if path.startswith(root + os.sep):
                return path[len(root) + 1:]
        return None

    # -- the run -----------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Lock the database, reconcile, then follow events until stopped; returns the counts."""
        lock = DaemonLock(str(self.settings.db))
        lock.acquire()
        restore = self._install_signals()
        store: Store | None = None
        observer: Any = None
        start = time.perf_counter()
        status = "failed"
        counts = self.counts
        try:
            store = self.store = self._retrying(
                lambda: Store(self.settings.db, self.settings.busy_timeout_ms,
                              dedupe=self.settings.dedupe.params()), "open")
            store.checkpoint_in_background()
            self.run_id = self._retrying(lambda: store.begin_run("watch", self.roots), "begin run")
            with Ingestor(self.settings, store, run_id=self.run_id) as ingestor:
                self.ingestor = ingestor
                ingestor.should_stop = lambda: bool(self._signalled) or self._stopping.is_set()
                self.counts = counts = ingestor.counts
                observer = self._start_observer()
                log.info("run.start", kind="watch", roots=self.roots, db=str(self.settings.db),
                         run_id=self.run_id, observer=self.observer_kind, pid=os.getpid())
                store.write_heartbeat({
                    "pid": os.getpid(), "host": socket.gethostname(), "run_id": self.run_id,
                    "roots": json.dumps(self.roots), "observer": self.observer_kind,
                    "started_at": now(), "updated_at": now(), "files_processed": 0, "rejects": 0,
                    "queue_depth": 0, "pending": 0,
                }, reset=True)
                ingestor.warm_up(workers=True)
                self._reconcile_now("start")
                ingestor.warm_up(workers=True)  # again if a bulk catch-up ended the pool
                # what start-up built lives as long as the daemon: out of the collector's way,
                # a full collection at 100 files/s takes 3-4 ms instead of 40-60 ms (a stall
                # that every file arriving meanwhile waited out)
                gc.collect()
                gc.freeze()
                self.ready.set()
                self._loop()
                status = "stopped"
        finally:
            self._stopping.set()
            if observer is not None:
                observer.stop()
                observer.join(timeout=5)
                logging.getLogger("watchdog").removeHandler(self._overflow)
            elapsed = time.perf_counter() - start
            if store is not None:
                try:
                    if self.run_id is not None:
                        store.end_run(self.run_id, counts, elapsed, status)
                except Exception as exc:  # keep the error that stopped the run, if any
                    log.error("run.end", outcome="not recorded", error=str(exc))
                self._beat(force=True, stopped=True)
                store.close()
            lock.release()
            restore()
            self.ready.set()  # never leave a waiter hanging, even after a failed start
        summary = {"run_id": self.run_id, "status": status, "elapsed_s": round(elapsed, 3),
                   **{k: counts[k] for k in COUNTS}}
        log.info("run.end", kind="watch", **summary)
        return summary

    def _install_signals(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        prepare_process()
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, self._on_signal)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Only a flag: the handler runs between two bytecodes of the main thread, which may hold
        # the queue's lock at that moment. The loop looks at the flag at least twice a second.
        self._signalled = signum

    def _start_observer(self) -> Any:
        self._overflow = _OverflowSignal(self)
        logging.getLogger("watchdog").addHandler(self._overflow)
        handler = _Handler(self)
        follow = self.settings.follow_symlinks
        if not self.polling:
            observer = Observer()
            try:
                for root in self.roots:
                    observer.schedule(handler, root, recursive=True, follow_symlink=follow,
                                      event_filter=_EVENTS)
                observer.start()
                self.observer_kind = "inotify" if "Inotify" in type(observer).__name__ else (
                    type(observer).__name__)
                return observer
            except OSError as exc:  # e.g. the inotify watch limit is reached
                log.warning("watch.fallback", observer="polling", error=str(exc),
                            hint="raise fs.inotify.max_user_watches, or run with --polling")
                observer.stop()
                observer.unschedule_all()
        observer = PollingObserver(timeout=self.cfg.poll_interval_s)
        for root in self.roots:
            observer.schedule(handler, root, recursive=True, follow_symlink=follow,
                              event_filter=_POLLING_EVENTS)
        observer.start()
        self.observer_kind = "polling"
        return observer

    def _loop(self) -> None:
        while not self._stopping.is_set():
            if self._signalled:
                log.info("watch.signal", signal=signal.Signals(self._signalled).name)
                self.stop()
                break
            try:
                item = self.queue.get(timeout=self._timeout())
            except queue.Empty:
                item = None
            if item is not None:
                self._guarded(self._handle, item)
                self._drain()
            if self._stopping.is_set() or self._signalled:
                continue  # the batch in hand was committed by the previous iteration
            self._promote()
            if self._ready:
                self._flush()
            if time.monotonic() >= self._next_reconcile:
                self._reconcile_now(self._reconcile_reason)
            self._beat()

    def _guarded(self, func: Any, *args: Any) -> bool:
        """One event or one reconcile failing (a folder gone mid-walk, a full disk) must not
        stop the daemon: log it; the next reconcile heals what it missed. A damaged database
        does stop it: retrying cannot help."""
        try:
            func(*args)
            return True
        except Exception as exc:
            self._fatal(exc)
            log.error("watch.error", step=func.__name__, error=f"{type(exc).__name__}: {exc}",
                      args=[a for a in args if isinstance(a, str)])
            return False

    def _fatal(self, exc: Exception) -> None:
        if db_error_kind(exc) == "damaged":
            raise DatabaseDamaged(str(self.settings.db), exc) from exc

    def _reconcile_now(self, reason: str) -> None:
        """Reconcile; after a failure (the disk is full, the database stays locked) try again
        with backoff, 1 s doubling to a minute, instead of waiting for the timer."""
        if self._guarded(self._reconcile, reason):
            self._reconcile_backoff = 0.0
            self._schedule_reconcile()
            return
        self._reconcile_backoff = min(60.0, max(1.0, 2 * self._reconcile_backoff))
        self._next_reconcile = time.monotonic() + self._reconcile_backoff
        self._reconcile_reason = reason if reason.startswith("retry") else f"retry ({reason})"

    def _retrying(self, func: Any, what: str) -> Any:
        return retry_locked(func, what=what, give_up_after_s=self.settings.lock_retry_s)

    def _timeout(self) -> float:
        if self._ready:
            return 0.0
        wake = min(self._heap[0][0] if self._heap else float("inf"), self._next_reconcile,
                   self._last_beat + (1.0 if self._dirty else self.cfg.heartbeat_s))
        return min(0.5, max(0.0, wake - time.monotonic()))

    def _schedule_reconcile(self) -> None:
        interval = self.cfg.reconcile_interval_s
        self._next_reconcile = time.monotonic() + interval if interval > 0 else float("inf")
        self._reconcile_reason = "timer"

    def _drain(self) -> None:
        """Take what else is queued: batching happens only when there is a backlog."""
        limit = time.monotonic() + self.cfg.batch_max_ms / 1000
        while (len(self._ready) < self.cfg.batch_max_files * _FLUSH_BATCHES
               and len(self._waiting) + len(self._ready) < self.cfg.queue_max
               and time.monotonic() < limit):
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            self._guarded(self._handle, item)

    # -- events ----------------------------------------------------------------------------------

    def _handle(self, item: tuple[str, str, str]) -> None:
        kind, path, dest = item
        if kind == "overflow":
            self._next_reconcile, self._reconcile_reason = 0.0, "inotify queue overflow"
        if kind in ("stop", "overflow"):
            return
        self._last_event = time.time()
        self._dirty = True
        log.debug("watch.event", kind=kind, path=path, **({"dest": dest} if dest else {}))
        if kind == "write":
            self._waiting.pop(path, None)
            self._ready[path] = False
        elif kind in ("touch", "gone"):
            self._ready.pop(path, None)
            # a created or modified file nobody writes any more is complete: its close event
            # may never come (created in a new folder before its watch was set; that wait of a
            # quiet period was 1% of the files in bench_watch, its p99)
            self._wait(path, trust_stat=False, now_if_idle=kind == "touch")
        elif kind == "move":
            self._move(path, dest)
        elif kind == "dir_new":
            for found in walk([path], self.settings):
                if found.path not in self._ready:
                    self._wait(found.path, trust_stat=True, now_if_idle=True)
        elif kind == "dir_gone":
            for known in self.store.live_paths_under(path):
                self._wait(known, trust_stat=True)
        elif kind == "dir_move":
            moved = self._retrying(lambda: self.store.move_tree(path, dest), "move")
            log.info("watch.move", kind="folder", path=path, dest=dest, sources=moved)
            prefix = path + os.sep
            for old in [p for p in self._waiting if p.startswith(prefix)]:
                self._wait(dest + os.sep + old[len(prefix):], self._waiting.pop(old).trust_stat)
            for old in [p for p in self._ready if p.startswith(prefix)]:
                self._ready[dest + os.sep + old[len(prefix):]] = self._ready.pop(old)

    def _wait(self, path: str, trust_stat: bool, delay: float | None = None,
              now_if_idle: bool = False) -> None:
        """Hold a file until it is complete: after the quiet period, or with ``now_if_idle`` at
        once where Linux can tell that nobody has it open for writing (files found in a folder
        that just appeared, whose close events may have come before its watch; polling)."""
        prev = self._waiting.pop(path, None)
        trust_stat = trust_stat and (prev is None or prev.trust_stat)
        if now_if_idle and delay is None and open_for_writing(path) is False:
            self._ready[path] = trust_stat and self._ready.get(path, True)
            return
        due = time.monotonic() + (self._quiet if delay is None else max(delay, self._quiet))
        self._waiting[path] = _Pending(due, _stat_key(path), trust_stat)
        heapq.heappush(self._heap, (due, path))

    def _move(self, src: str, dest: str) -> None:
        """A rename inside the tree re-points the source; the new path is then checked like any
        file found by a walk, so changed bytes still become a new version."""
        self._waiting.pop(src, None)
        self._ready.pop(src, None)
        moved = self._retrying(lambda: self.store.move_source(src, dest), "move")
        if moved:
            log.info("watch.move", kind="file", path=src, dest=dest)
        self._waiting.pop(dest, None)
        self._ready[dest] = True

    def _promote(self) -> None:
        """Files whose quiet period is over: complete if unchanged and nobody writes them."""
        clock = time.monotonic()
        heap = self._heap
        while heap and heap[0][0] <= clock:
            due, path = heapq.heappop(heap)
            pending = self._waiting.get(path)
            if pending is None or pending.due != due:
                continue  # already handled, or re-armed by a later event
            key = _stat_key(path)
            if key is None or (key == pending.stat and not open_for_writing(path)):
                del self._waiting[path]
                self._ready[path] = pending.trust_stat
            else:
                pending.stat, pending.due = key, clock + self._quiet
                heapq.heappush(heap, (pending.due, path))

    # -- writing -----------------------------------------------------------------------------------

    def _flush(self) -> None:
        """Write one batch of complete files (and record vanished ones) in the shared path."""
        batch: list[tuple[str, bool]] = []
        while self._ready and len(batch) < self.cfg.batch_max_files * _FLUSH_BATCHES:
            path = next(iter(self._ready))
            batch.append((path, self._ready.pop(path)))
        to_read: list[str] = []
        gone: list[str] = []
        for path, trust_stat in batch:
            key = _stat_key(path)
            if key is None:
                if not os.path.lexists(path) or os.path.isdir(path):
                    gone.append(path)
                else:
                    to_read.append(path)  # not a regular file: the parser says why, as a reject
                continue
            if trust_stat:
                known = self.store.source_stat(path)
                if known is not None and known[2] != "deleted" and known[:2] == key:
                    continue  # a moved file or one a walk found again: nothing changed
            full = _full_stat(path)
            if full is not None and self._recent.get(path) == full:
                continue  # read already (e.g. found by a walk before its close event came)
            to_read.append(path)
            self._remember(path, full)
        try:
            if to_read:
                self.ingestor.ingest(to_read, on_batch=self._committed,
                                     batch_size=self.cfg.batch_max_files)
            if gone:
                since = _iso(time.time() - _MOVE_WINDOW_S)
                for old, new in self._retrying(
                        lambda: self.store.moved_away(gone, since or ""), "moves"):
                    log.info("watch.move", kind="file", path=old, dest=new, seen_as="delete+create")
                    gone.remove(old)
                deleted = self._retrying(lambda: self.store.mark_deleted(gone), "mark deleted")
                self.ingestor.counts["deleted"] += deleted
                if deleted:
                    log.info("watch.deleted", files=deleted, paths=gone[:20])
                self._last_commit = time.time()
            self._write_backoff = 0.0
        except Exception as exc:  # the disk is full, the database stayed locked: the batch
            self._fatal(exc)      # rolled back, so pause and try it again, backing off
            self._write_backoff = min(60.0, max(1.0, 2 * self._write_backoff))
            log.error("watch.paused", step="write", files=len(batch),
                      reason=db_error_kind(exc) or "error",
                      error=f"{type(exc).__name__}: {exc}", retry_in_s=self._write_backoff)
            for path, trust_stat in batch:
                self._recent.pop(path, None)  # not written: it must be read again
                self._wait(path, trust_stat, delay=self._write_backoff)
        self._dirty = True

    def _remember(self, path: str, full: tuple[int, ...] | None) -> None:
        """Remember the stat of a file we read, to skip reading it again for a late event. Only
        a file quiet for a while is remembered: a write in the same clock tick as our read
        could leave its stat unchanged (the "racy git" problem)."""
        if full is None or full[1] > time.time_ns() - _RACY_NS:
            self._recent.pop(path, None)
            return
        self._recent[path] = full
        self._recent.move_to_end(path)
        while len(self._recent) > self.cfg.queue_max:
            self._recent.popitem(last=False)

    def _committed(self, results: list[Result]) -> None:
        self._last_commit = time.time()

    def _reconcile(self, reason: str) -> None:
        """The backfill walk: catch up on what happened while we were down or blind."""
        started = time.perf_counter()
        before = Counter(self.ingestor.counts)
        horizon = time.time_ns() - int(self._quiet * 1e9)

        def defer(path: str, mtime_ns: int | None) -> bool:
            # files we already follow, or so fresh that a writer may still be busy with them
            return path in self._waiting or path in self._ready or (
                mtime_ns is not None and mtime_ns > horizon)

        found = sync(self.ingestor, self.roots, defer=defer)
        for path in found["deferred"]:
            if path not in self._waiting and path not in self._ready:
                self._wait(path, trust_stat=True)
        delta = Counter(self.ingestor.counts)
        delta.subtract(before)
        self._last_reconcile = time.time()
        self._dirty = True
        log.info("reconcile", reason=reason, files=found["found"], **{k: delta[k] for k in COUNTS},
                 deferred=len(found["deferred"]),
                 ms=round((time.perf_counter() - started) * 1000, 1))

    # -- heartbeat -------------------------------------------------------------------------------

    def _beat(self, force: bool = False, stopped: bool = False) -> None:
        """At most once a second while busy, every ``heartbeat_s`` while idle."""
        clock = time.monotonic()
        if not force and clock - self._last_beat < (1.0 if self._dirty else self.cfg.heartbeat_s):
            return
        counts = self.counts
        fields: dict[str, Any] = {
            "updated_at": now(),
            "last_event_at": _iso(self._last_event),
            "last_commit_at": _iso(self._last_commit),
            "last_reconcile_at": _iso(self._last_reconcile),
            "queue_depth": self.queue.qsize(),
            "pending": len(self._waiting) + len(self._ready),
            "files_processed": sum(counts[k] for k in COUNTS if k != "deleted"),
            "rejects": counts["rejected"],
        }
        if stopped:
            fields["stopped_at"] = now()
        try:
            self.store.write_heartbeat(fields)
        except Exception as exc:  # a busy database must not stop the daemon; next beat retries
            log.warning("heartbeat", outcome="failed", error=str(exc))
        self._dirty = False
        self._last_beat = clock


def _iso(epoch: float) -> str | None:
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")
