"""The one ingest path shared by ``backfill`` and ``watch``.

Pure stages (read, parse, validate, dedupe identity, enrich) run in worker processes; their
records come back in order and the single writer (``Store``) commits them batch by batch. At most
two batches are in flight, so memory stays flat whatever the number of files.
"""

from __future__ import annotations

import fnmatch
import multiprocessing
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .config import Settings
from .logs import get_logger
from .prepare import Options, prepare_file
from .records import STAGES, FileFacts, Outcome, Prepared, Rejection, Skipped
from .store import COUNTS, Result, Store

log = get_logger()


# -- which files count ------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], Any]:
    if not patterns:
        return lambda name: None
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)).match


def is_candidate(name: str, patterns: Iterable[str], ignore: Iterable[str]) -> bool:
    """An article file by name: matches a pattern and no ignore pattern (hidden, temp, swap)."""
    return bool(_matcher(tuple(patterns))(name)) and not _matcher(tuple(ignore))(name)


@dataclass(slots=True)
class Found:
    path: str
    size: int
    mtime_ns: int


def walk(roots: Iterable[str], settings: Settings) -> Iterator[Found]:
    """Article files under the roots, recursively, in a stable (sorted) order.

    Hidden folders are skipped; symlinks are followed only when ``follow_symlinks`` is set.
    A root may also be a single file.
    """
    patterns, ignore = tuple(settings.patterns), tuple(settings.ignore)
    follow = settings.follow_symlinks
    dir_ignore = _matcher(tuple(p for p in ignore if p.startswith(".")))
    seen_dirs: set[tuple[int, int]] = set()

    def scan(folder: str) -> Iterator[Found]:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            log.warning("walk.unreadable", path=folder, error=exc.strerror)
            return
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=follow):
                    if dir_ignore(entry.name):
                        continue
                    st = entry.stat(follow_symlinks=follow)
                    key = (st.st_dev, st.st_ino)
                    if key in seen_dirs:  # a symlink loop or a folder reached twice
                        continue
                    seen_dirs.add(key)
                    yield from scan(entry.path)
                elif is_candidate(entry.name, patterns, ignore):
                    if entry.is_symlink() and not follow:
                        continue
                    st = entry.stat(follow_symlinks=follow)
                    yield Found(os.path.abspath(entry.path), st.st_size, st.st_mtime_ns)
            except OSError:
                continue  # vanished or a dangling link: nothing to ingest

    for root in roots:
        root = os.path.abspath(root)
        if os.path.isfile(root):
            st = os.stat(root)
            yield Found(root, st.st_size, st.st_mtime_ns)
        else:
            seen_dirs.add((os.stat(root).st_dev, os.stat(root).st_ino))
            yield from scan(root)


# -- workers ----------------------------------------------------------------------------------

_worker_options: Options | None = None


def _init_worker(options: Options) -> None:
    global _worker_options
    _worker_options = options


def _work(path: str) -> Outcome:
    assert _worker_options is not None
    try:
        return prepare_file(path, _worker_options)
    except Exception as exc:  # a bug must cost one file, never the run
        return Rejection(FileFacts(path, 0, 0), "parse", f"internal error: {type(exc).__name__}: {exc}")


def options_from(settings: Settings) -> Options:
    return Options(
        max_file_bytes=settings.max_file_bytes,
        tracking_params=tuple(settings.dedupe.tracking_params),
        enrichers=tuple(settings.enrich.enabled),
        dedupe=settings.dedupe.params(),
    )


# -- the ingest path ---------------------------------------------------------------------------


class Ingestor:
    """Drives files through the stages into the store, logging every stage of every file."""

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
        _init_worker(self.options)  # the in-process path uses the same options

    def __enter__(self) -> Ingestor:
        if self.workers > 1:
            ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
            self._pool = ctx.Pool(self.workers, initializer=_init_worker, initargs=(self.options,))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:
            self._pool.terminate() if exc[0] is not None else self._pool.close()
            self._pool.join()
            self._pool = None

    def _prepare_async(self, paths: list[str]) -> Callable[[], list[Outcome]]:
        if self._pool is None or len(paths) < 8:
            return lambda: [_work(p) for p in paths]
        chunk = max(1, min(64, len(paths) // (self.workers * 4)))
        pending = self._pool.map_async(_work, paths, chunksize=chunk)
        return lambda: pending.get()

    def ingest(
        self, paths: Iterable[str], on_batch: Callable[[list[Result]], None] | None = None
    ) -> Counter[str]:
        """Ingest paths in batches; two batches in flight (one being prepared, one written)."""
        size = self.settings.batch_size
        batch: list[str] = []
        in_flight: Callable[[], list[Outcome]] | None = None
        for path in paths:
            batch.append(path)
            if len(batch) >= size:
                next_flight = self._prepare_async(batch)
                if in_flight is not None:
                    self._write(in_flight(), on_batch)
                in_flight, batch = next_flight, []
        if batch:
            next_flight = self._prepare_async(batch)
            if in_flight is not None:
                self._write(in_flight(), on_batch)
            in_flight = next_flight
        if in_flight is not None:
            self._write(in_flight(), on_batch)
        return self.counts

    def _write(self, outcomes: list[Outcome], on_batch: Callable[[list[Result]], None] | None) -> None:
        results = self.store.write_batch(outcomes, run_id=self.run_id, force=self.force)
        for outcome, result in zip(outcomes, results, strict=True):
            self.counts[result.outcome] += 1
            log_stages(outcome, result)
        if on_batch is not None:
            on_batch(results)


def log_stages(outcome: Outcome, result: Result) -> None:
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


def plan(
    found: Iterable[Found], known: dict[str, tuple[int, int, str]], force: bool
) -> tuple[list[str], int]:
    """Split walked files into those to read and the count skipped on stat alone."""
    todo: list[str] = []
    unchanged = 0
    for f in found:
        prev = known.get(f.path)
        if (
            not force and prev is not None and prev[0] == f.size and prev[1] == f.mtime_ns
            and prev[2] != "deleted"
        ):
            unchanged += 1
        else:
            todo.append(f.path)
    return todo, unchanged


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
        store = Store(db_path, settings.busy_timeout_ms, dedupe=settings.dedupe.params())
    run_id = None if dry_run else store.begin_run("backfill", roots)
    log.info("run.start", kind="backfill", roots=roots, db=db_path, run_id=run_id,
             force=force, dry_run=dry_run, workers=settings.effective_workers)
    found = list(walk(roots, settings))
    known = store.source_stats()
    todo, unchanged = plan(found, known, force)
    if on_total:
        on_total(len(found))
    if progress and unchanged:
        progress(unchanged)
    status = "failed"
    try:
        with Ingestor(settings, store, force=force, run_id=run_id) as ingestor:
            ingestor.counts["unchanged"] += unchanged
            ingestor.ingest(todo, on_batch=(lambda r: progress(len(r))) if progress else None)
            seen_paths = {f.path for f in found}
            gone = [p for p in known if p not in seen_paths and _under(p, roots)
                    and known[p][2] != "deleted"]
            ingestor.counts["deleted"] += store.mark_deleted(gone)
            counts = ingestor.counts
        status = "completed"
    finally:
        elapsed = time.perf_counter() - start
        if run_id is not None:
            store.end_run(run_id, ingestor.counts if "ingestor" in locals() else {}, elapsed, status)
        store.close()
    seen = sum(counts[k] for k in COUNTS if k != "deleted")
    summary: dict[str, Any] = {
        "run_id": run_id, "db": db_path, "dry_run": dry_run, "seen": seen,
        **{k: counts[k] for k in COUNTS},
        "elapsed_s": round(elapsed, 3),
        "files_per_s": round(seen / elapsed, 1) if elapsed > 0 else None,
    }
    log.info("run.end", kind="backfill", **summary)
    return summary


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _dry_store(db_path: str, params: Any = None) -> Store:
    """An in-memory copy of the database, so a dry run computes real decisions and writes nothing."""
    import sqlite3

    store = Store(":memory:", dedupe=params)
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        src.backup(store.conn)
    finally:
        src.close()
    from .schema import migrate

    migrate(store.db)
    store.ensure_dedupe_current()
    return store
