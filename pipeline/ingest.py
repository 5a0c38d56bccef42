"""The one ingest path shared by ``backfill`` and ``watch``.

Pure stages (read, parse, validate, dedupe identity, enrich) run in worker processes; their
records come back in order and the single writer (``Store``) commits them batch by batch. At most
two batches are in flight, so memory stays flat whatever the number of files.
"""

from __future__ import annotations

import errno
import fnmatch
import multiprocessing
import operator
import os
import re
import stat as stat_mod
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import logs
from .config import Settings, enricher_options
from .dberrors import retry_locked
from .logs import get_logger
from .records import STAGES, FileFacts, Limits, Options, Outcome, Prepared, Rejection, Skipped
from .schema import begin_bulk, end_bulk, migrate
from .store import COUNTS, Result, Store
from .worker import init_worker, warm, work

# The stages (parse, validate, enrich: YAML, pydantic models, ftfy, the language model) are not
# imported here: the workers import them, and this process only for a batch it prepares itself;
# a run over an unchanged tree never needs them (they were ~0.4 s of its start-up).

log = get_logger()


# -- which files count ------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], Any]:
    if not patterns:
        return lambda name: None
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)).match


@lru_cache(maxsize=16)
def _candidate(patterns: tuple[str, ...], ignore: tuple[str, ...]) -> Callable[[str], Any]:
    """One regex for "matches a pattern and no ignore pattern": one match per name, not two."""
    if not patterns:
        return lambda name: None
    keep = "|".join(fnmatch.translate(p) for p in patterns)
    if not ignore:
        return re.compile(keep).match
    drop = "|".join(fnmatch.translate(p) for p in ignore)
    return re.compile(f"(?!{drop})(?:{keep})").match


def is_candidate(name: str, patterns: Iterable[str], ignore: Iterable[str]) -> bool:
    """An article file by name: matches a pattern and no ignore pattern (hidden, temp, swap)."""
    return _candidate(tuple(patterns), tuple(ignore))(name) is not None


def folder_matcher(settings: Settings) -> Callable[[str], Any]:
    """Folder names never descended into: the hidden ones among the ignore patterns."""
    return _matcher(tuple(p for p in settings.ignore if p.startswith(".")))


_name = operator.attrgetter("name")


@dataclass(slots=True)
class Found:
    path: str
    size: int
    mtime_ns: int
    problem: str | None = None  # why this article-named entry cannot be read as a file


_KINDS = (
    (stat_mod.S_ISFIFO, "a FIFO (named pipe)"),
    (stat_mod.S_ISSOCK, "a socket"),
    (stat_mod.S_ISCHR, "a character device"),
    (stat_mod.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def walk(roots: Iterable[str], settings: Settings) -> Iterator[Found]:
    """Article files under the roots, recursively, in a stable (sorted) order.

    Hidden folders are skipped. Symbolic links to files inside the roots are followed; links
    leading outside them only with ``follow_symlinks`` (a link could expose any file on the
    machine); linked folders are entered only with ``follow_symlinks``. Entries with an article's
    name that cannot be read as one (a folder, a FIFO, a dangling link, a link loop) are yielded
    with ``problem`` set, so they get a rejection that says why. A root may be a single file.
    """
    patterns, ignore = tuple(settings.patterns), tuple(settings.ignore)
    candidate_name = _candidate(patterns, ignore)  # looked up once, not per name
    follow = settings.follow_symlinks
    dir_ignore = folder_matcher(settings)
    real_roots = [os.path.realpath(r) for r in roots]
    seen_dirs: set[tuple[int, int]] = set()

    def linked(entry: os.DirEntry[str], candidate: bool) -> Iterator[Found]:
        path = os.path.abspath(entry.path)
        try:
            st = os.stat(entry.path)
        except OSError as exc:
            if candidate:
                lst = entry.stat(follow_symlinks=False)
                what = "a symlink loop" if exc.errno == errno.ELOOP else (
                    f"a dangling symlink (to {os.readlink(entry.path)!r})"
                )
                yield Found(path, lst.st_size, lst.st_mtime_ns, what)
            return
        target = os.path.realpath(entry.path)
        if stat_mod.S_ISDIR(st.st_mode):
            if follow and not dir_ignore(entry.name):
                yield from folder(entry.path, st)
            return
        if not candidate:
            return
        if not follow and not _under(target, real_roots):
            lst = entry.stat(follow_symlinks=False)
            yield Found(path, lst.st_size, lst.st_mtime_ns,
                        f"a symlink to {target}, outside the watched folders (not followed; "
                        "set follow_symlinks to follow such links)")
        elif stat_mod.S_ISREG(st.st_mode):
            yield Found(path, st.st_size, st.st_mtime_ns)
        else:
            yield Found(path, st.st_size, st.st_mtime_ns, f"a symlink to {_kind(st.st_mode)}")

    def folder(path: str, st: os.stat_result) -> Iterator[Found]:
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:  # a folder reached twice (through a followed link)
            return
        seen_dirs.add(key)
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=_name)
        except OSError as exc:
            log.warning("walk.unreadable", path=path, error=exc.strerror)
            return
        # entry.path is already absolute and normal (a normalised root joined with plain names),
        # so no os.path.abspath per file (~1 µs each)
        for entry in entries:
            candidate = candidate_name(entry.name) is not None
            try:
                if entry.is_symlink():
                    yield from linked(entry, candidate)
                elif entry.is_dir(follow_symlinks=False):
                    if candidate:
                        est = entry.stat(follow_symlinks=False)
                        yield Found(entry.path, 0, est.st_mtime_ns,
                                    "a folder, not a file (its contents are still ingested)")
                    if not dir_ignore(entry.name):
                        yield from folder(entry.path, entry.stat(follow_symlinks=False))
                elif candidate:
                    est = entry.stat(follow_symlinks=False)
                    if stat_mod.S_ISREG(est.st_mode):
                        yield Found(entry.path, est.st_size, est.st_mtime_ns)
                    else:
                        yield Found(entry.path, 0, est.st_mtime_ns,
                                    f"{_kind(est.st_mode)}, not a regular file")
            except OSError:
                continue  # vanished while we looked: nothing to ingest

    for root in roots:
        root = os.path.abspath(root)
        st = os.stat(root)
        if stat_mod.S_ISDIR(st.st_mode):
            yield from folder(root, st)
        else:
            yield Found(root, st.st_size, st.st_mtime_ns)


# -- workers ----------------------------------------------------------------------------------


def options_from(settings: Settings) -> Options:
    return Options(
        max_file_bytes=settings.max_file_bytes,
        tracking_params=tuple(settings.dedupe.tracking_params),
        enrichers=tuple(settings.enrich.enabled),
        limits=Limits(**settings.limits.model_dump()),
        enrich_options=enricher_options(settings.enrich),
        dedupe=settings.dedupe.params(),
    )


def _context() -> Any:
    """Workers start as fresh interpreters that import only the pure stages. A forkserver that
    preloaded them started each worker ~0.3 s sooner, but was itself a ~40 MB process for the
    whole run: at 20,000 files the run's processes summed 378 MB that way, 341 MB so."""
    return multiprocessing.get_context("spawn")


# -- the ingest path ---------------------------------------------------------------------------


class Ingestor:
    """Drives files through the stages into the store, logging every stage of every file."""

    # Batches smaller than this are prepared in this process: a round trip to a worker costs
    # more than it saves, and the daemon's latency is mostly made of small batches.
    pool_min = 8

    def __init__(
        self, settings: Settings, store: Store, *, force: bool = False,
        workers: int | None = None, run_id: int | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.force = force
        self.run_id = run_id
        self.options = options_from(settings)
        self.workers = workers if workers is not None else settings.effective_workers
        self.counts: Counter[str] = Counter({k: 0 for k in COUNTS})
        self._pool: Any = None
        self._warm = False  # this process has run the stages once (``warm_up``)
        self.should_stop: Callable[[], bool] = lambda: False

    def __enter__(self) -> Ingestor:
        return self

    def _workers(self) -> Any:
        """The worker pool, started on first need (a run with nothing to read starts none).

        Workers are spawned (see ``_context``): forked from this process they would share, and
        count in their memory, whatever it holds by then (the walked file list, the SQLite page
        cache), and fork is unsafe once the daemon's watcher threads run.
        """
        if self._pool is None:
            self._pool = self._start_pool(_context())
        return self._pool

    def _start_pool(self, ctx: Any, warmed: Any = None) -> Any:
        return ctx.Pool(self.workers, initializer=init_worker, initargs=(self.options, warmed))

    def warm_up(self, workers: bool = False) -> None:
        """Pay the stages' set-up now, not on the first files: in this process and, with
        ``workers``, in a started pool too (the daemon: else its first batch big enough for the
        pool waited ~1 s for the pool to start, a latency spike measured in bench_watch). Called
        again, it only starts a pool that has been ended since (``stop_workers``)."""
        if not self._warm:
            warm(self.options)
            self._warm = True
        if workers and self.workers > 1 and self._pool is None:
            ctx = _context()
            warmed = ctx.Semaphore(0)
            self._pool = self._start_pool(ctx, warmed)
            for _ in range(self.workers):
                if not warmed.acquire(timeout=60):
                    log.warning("workers.warm_up", outcome="slow", workers=self.workers)
                    break

    def __exit__(self, *exc: Any) -> None:
        self.stop_workers(abort=exc[0] is not None)

    def stop_workers(self, abort: bool = False) -> None:
        """End the pool (the next batch that needs one starts another)."""
        if self._pool is not None:
            self._pool.terminate() if abort else self._pool.close()
            self._pool.join()
            self._pool = None

    def _prepare_async(self, paths: list[str]) -> Callable[[], list[Outcome]]:
        if self.workers <= 1 or len(paths) < self.pool_min:
            options = self.options
            return lambda: [work(p, options) for p in paths]
        chunk = max(1, min(64, len(paths) // (self.workers * 4)))
        pending = self._workers().map_async(work, paths, chunksize=chunk)
        return lambda: pending.get()

    def ingest(
        self, paths: Iterable[str], on_batch: Callable[[list[Result]], None] | None = None,
        batch_size: int | None = None,
    ) -> Counter[str]:
        """Ingest paths in batches (one transaction each; ``batch_size`` files, by default the
        setting's); two batches in flight (one being prepared, one written).

        When ``should_stop()`` turns true (the daemon got SIGTERM), the batch in flight is
        committed and the rest is left for the next run."""
        size = batch_size or self.settings.batch_size
        batch: list[str] = []
        in_flight: Callable[[], list[Outcome]] | None = None
        for path in paths:
            batch.append(path)
            if len(batch) >= size:
                if self.should_stop():
                    batch = []
                    break
                next_flight = self._prepare_async(batch)
                if in_flight is not None:
                    self.write(in_flight(), on_batch)
                in_flight, batch = next_flight, []
        if batch and not self.should_stop():
            next_flight = self._prepare_async(batch)
            if in_flight is not None:
                self.write(in_flight(), on_batch)
            in_flight = next_flight
        if in_flight is not None:
            self.write(in_flight(), on_batch)
        return self.counts

    def write(self, outcomes: list[Outcome], on_batch: Callable[[list[Result]], None] | None) -> None:
        results = retry_locked(
            lambda: self.store.write_batch(outcomes, run_id=self.run_id, force=self.force),
            what="write", give_up_after_s=self.settings.lock_retry_s)
        logger = logs.per_file_logger(log.bind())  # resolved once per batch, not per event
        for outcome, result in zip(outcomes, results, strict=True):
            self.counts[result.outcome] += 1
            log_stages(outcome, result, logger)
        logs.flush()
        if on_batch is not None:
            on_batch(results)


def log_stages(outcome: Outcome, result: Result, log: Any = log) -> None:
    """One event per stage the file went through, then the store event."""
    path = outcome.facts.path
    if isinstance(outcome, Skipped):
        log.info("parse", path=path, outcome="skipped", reason=outcome.reason)
        return
    timings = outcome.timings
    aid = getattr(outcome, "article_id", None) if isinstance(outcome, Prepared) else None
    for stage in STAGES[:-1]:
        if stage not in timings:
            break
        if isinstance(outcome, Rejection) and stage == outcome.stage:
            log.warning(stage, path=path, outcome="rejected", reason=outcome.reason,
                        ms=round(timings[stage], 3))
            break
        fields: dict[str, Any] = {"path": path, "outcome": "ok", "ms": round(timings[stage], 3)}
        if aid is not None and stage in ("dedupe", "enrich"):
            fields["article_id"] = aid
        if stage == "dedupe":
            fields["decision"] = result.decision
            fields["canonical_url"] = outcome.article["canonical_url"]  # type: ignore[union-attr]
            if result.level is not None:
                fields.update(dedupe_level=result.level, matched_id=result.matched_id,
                              score=result.score)
            if result.cluster_id is not None:
                fields["cluster_id"] = result.cluster_id
        if stage == "enrich" and isinstance(outcome, Prepared):
            fields["enrichers"] = {
                k.split(".", 1)[1]: round(v, 3) for k, v in timings.items() if k.startswith("enrich.")
            }
            for err in outcome.errors:
                log.warning("enrich", path=path, article_id=aid, outcome="enricher failed", error=err)
        log.debug(stage, **fields)
    if isinstance(outcome, Rejection) and outcome.stage not in timings:
        log.warning(outcome.stage, path=path, outcome="rejected", reason=outcome.reason)
    log.debug("store", path=path, article_id=result.article_id, outcome=result.outcome,
              version=result.version, ms=round(result.ms, 3))


# -- backfill -------------------------------------------------------------------------------------


def backfill(
    settings: Settings,
    roots: list[str],
    *,
    force: bool = False,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Walk the roots and ingest every new or changed file; returns the run summary."""
    start = time.perf_counter()
    roots = [os.path.abspath(r) for r in roots]
    for root in roots:
        if not os.path.exists(root):
            raise FileNotFoundError(f"no such file or folder: {root}")
    db_path = str(settings.db)
    if dry_run:
        # run everything against a throw-away copy of what we know, so counts are exact
        params = settings.dedupe.params()
        store = (Store(":memory:", dedupe=params) if not os.path.exists(db_path)
                 else _dry_store(db_path, params))
    else:
        store = retry_locked(
            lambda: Store(db_path, settings.busy_timeout_ms, dedupe=settings.dedupe.params()),
            what="open", give_up_after_s=settings.lock_retry_s)
    run_id = None if dry_run else retry_locked(
        lambda: store.begin_run("backfill", roots), what="begin run",
        give_up_after_s=settings.lock_retry_s)
    log.info("run.start", kind="backfill", roots=roots, db=db_path, run_id=run_id,
             force=force, dry_run=dry_run, workers=settings.effective_workers)
    status = "failed"
    ingestor = Ingestor(settings, store, force=force, run_id=run_id)
    try:
        with ingestor:
            sync(ingestor, roots, force=force, progress=progress, on_total=on_total)
        status = "completed"
    finally:
        elapsed = time.perf_counter() - start
        try:
            if run_id is not None:
                retry_locked(lambda: store.end_run(run_id, ingestor.counts, elapsed, status),
                             what="end run", give_up_after_s=settings.lock_retry_s)
        except Exception as exc:  # e.g. the disk is full: keep the error that stopped the run
            log.error("run.end", outcome="not recorded", error=str(exc))
        finally:
            store.close()
    counts = ingestor.counts
    seen = sum(counts[k] for k in COUNTS if k != "deleted")
    summary: dict[str, Any] = {
        "run_id": run_id, "db": db_path, "dry_run": dry_run, "seen": seen,
        **{k: counts[k] for k in COUNTS},
        "elapsed_s": round(elapsed, 3),
        "files_per_s": round(seen / elapsed, 1) if elapsed > 0 else None,
    }
    log.info("run.end", kind="backfill", **summary)
    return summary


def sync(
    ingestor: Ingestor,
    roots: list[str],
    *,
    force: bool = False,
    defer: Callable[[str, int | None], bool] | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Bring the database in line with the files under the roots: walk, skip files unchanged by
    stat, ingest the rest, mark vanished files deleted. ``backfill`` is one sync; the daemon
    syncs on start and on a timer. ``defer(path, mtime_ns or None if gone)`` lets the daemon
    keep files it already tracks (or that are still being written) out of this pass; the
    deferred paths are returned.

    Memory does not grow with the number of files: the stored stats are read folder by folder
    as the walk reaches each one (``_Known``) and the files to read wait in a ``_Spool``.
    """
    store = ingestor.store
    known = _Known(store, roots)
    found = unchanged = 0
    problems: list[Found] = []
    deferred: list[str] = []
    todo = _Spool()
    try:
        for f in walk(roots, ingestor.settings):
            found += 1
            prev = known.pop(f.path)
            if (
                not force and prev is not None and prev[0] == f.size and prev[1] == f.mtime_ns
                and prev[2] != "deleted"
            ):
                unchanged += 1
            elif f.problem:
                problems.append(f)
            elif defer is not None and defer(f.path, f.mtime_ns):
                deferred.append(f.path)
            else:
                todo.add(f.path)
        gone = [p for p in known.unseen() if not (defer is not None and defer(p, None))]
        if on_total:
            on_total(found)
        if progress and unchanged:
            progress(unchanged)
        ingestor.counts["unchanged"] += unchanged
        on_batch = (lambda r: progress(len(r))) if progress else None
        if problems:  # not readable as files: rejected with the reason the walk found
            ingestor.write([Rejection(FileFacts(f.path, f.size, f.mtime_ns), "parse", f.problem)
                            for f in problems], on_batch)
        threshold = ingestor.settings.bulk_min_files
        bulk = (threshold > 0 and len(todo) >= threshold and store.path != ":memory:"
                and len(todo) >= store.article_count())
        if bulk:
            log.info("bulk.start", files=len(todo))
            autocheckpoint = begin_bulk(store.db)
            store.defer_counts = True
        try:
            ingestor.ingest(todo, on_batch=on_batch)
        finally:
            store.defer_counts = False
    finally:
        todo.close()
    if bulk:  # (on an error the next start's migrate and Store settle it instead)
        # the index rebuilds sort in this process's memory (+35 MB at 100,000 files): the idle
        # workers' memory is given back first, so that the two never add up
        ingestor.stop_workers()
        start = time.perf_counter()
        end_bulk(store.db, autocheckpoint)
        store.refresh_all_counts()
        log.info("bulk.end", rebuild_s=round(time.perf_counter() - start, 3))
    deleted = retry_locked(lambda: store.mark_deleted(gone), what="mark deleted",
                           give_up_after_s=ingestor.settings.lock_retry_s)
    ingestor.counts["deleted"] += deleted
    return {"found": found, "unchanged": unchanged, "ingested": len(problems) + len(todo),
            "deleted": deleted, "deferred": deferred}


class _Known:
    """The stored (size, mtime_ns, status) of the files under the roots, read folder by folder as
    the walk reaches each one and forgotten as it meets them: memory holds the rows of the
    folders being walked, not the whole ``sources`` table (at 100,000 files the table as a dict
    plus the walked list held ~70 MB)."""

    def __init__(self, store: Store, roots: list[str]) -> None:
        self.store = store
        self.roots = roots
        self.dirs = [r.rstrip(os.sep) + os.sep for r in roots]
        self.folders: dict[str, dict[str, tuple[int, int, str]]] = {}
        self.rows = 0  # rows read, under the roots
        self.root_files: dict[str, tuple[int, int, str] | None] = {}

    def pop(self, path: str) -> tuple[int, int, str] | None:
        """The stored stats of a walked file, or None for a file not seen before."""
        if path in self.root_files:  # a root named twice, or also inside a folder root
            return self.root_files[path]
        folder = path.rpartition(os.sep)[0] or os.sep
        rows = self.folders.get(folder)
        if rows is None:
            rows = self.folders[folder] = self.store.source_stats_in(folder)
            inside = (folder + os.sep).startswith(tuple(self.dirs))
            self.rows += len(rows) if inside else sum(_under(p, self.roots) for p in rows)
        prev = rows.pop(path, None)
        if path in self.roots:
            self.root_files[path] = prev
        return prev

    def unseen(self) -> list[str]:
        """Live rows under the roots that the walk did not meet: left in the folders it read, or
        in folders it never reached (gone, unreadable, hidden), found by a second scan when the
        row counts say there are such."""
        gone = [p for rows in self.folders.values() for p, st in rows.items()
                if st[2] != "deleted" and _under(p, self.roots)]
        if self.store.count_sources_under(self.roots) != self.rows:
            gone += [p for p, status in self.store.sources_under(self.roots)
                     if status != "deleted" and (p.rpartition(os.sep)[0] or os.sep) not in self.folders]
        return gone


class _Spool:
    """The paths to read, in walk order: in memory up to ``in_memory`` of them, then in a
    temporary file, so that no list of every file is held (100,000 paths: ~15 MB)."""

    in_memory = 10_000

    def __init__(self) -> None:
        self.tail: list[str] = []
        self.file: Any = None
        self.count = 0

    def add(self, path: str) -> None:
        self.tail.append(path)
        self.count += 1
        if len(self.tail) >= self.in_memory:
            if self.file is None:
                self.file = tempfile.TemporaryFile(
                    "w+", encoding="utf-8", errors="surrogateescape", prefix="pipeline-")
            self.file.write("\0".join(self.tail) + "\0")  # a path never holds a NUL
            self.tail = []

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[str]:
        if self.file is not None:
            self.file.seek(0)
            rest = ""
            while chunk := self.file.read(1 << 16):
                *paths, rest = (rest + chunk).split("\0")
                yield from paths
        yield from self.tail

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _dry_store(db_path: str, params: Any = None) -> Store:
    """An in-memory copy of the database, so a dry run computes real decisions and writes nothing."""
    store = Store(":memory:", dedupe=params)
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        src.backup(store.conn)
    finally:
        src.close()
    migrate(store.db)  # the copy may predate this version's schema
    store.ensure_dedupe_current()
    return store
