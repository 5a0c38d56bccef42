"""Stage 5, store: the single writer.

Everything that touches the database happens here, one transaction per batch: the dedupe
decision (is this a new article, a new source of a known one, a new version?), the article
upsert, its source and version rows, child rows, and related-article links. A crash rolls back
the whole batch, so no file is ever half-recorded; the next run redoes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .enrichers.dates import age_seconds
from .enrichers.topics import slug as topic_slug
from . import dedupe
from .clusters import Clusters, Placement, chunks
from .records import Outcome, Prepared, Rejection, Skipped
from .schema import WAL_AUTOCHECKPOINT, Checkpointer, article_columns, connect, migrate, transaction

# Outcomes of one file, as counted in run summaries and ingest_runs.
COUNTS = ("new", "updated", "unchanged", "duplicate", "rejected", "skipped", "deleted")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Result:
    """What the writer did with one file; ``decision`` explains the dedupe outcome."""

    path: str
    outcome: str  # one of COUNTS
    article_id: int | None = None
    decision: str = ""
    version: int | None = None
    changed_fields: list[str] = field(default_factory=list)
    ms: float = 0.0
    # the dedupe decision: level (1 same article, 2 exact text, 3 near-duplicate), the article
    # matched, the similarity score, and the story cluster the article is now in
    level: int | None = None
    matched_id: int | None = None
    score: float | None = None
    cluster_id: int | None = None

    def place(self, placement: Placement | None) -> None:
        if placement is None:
            return
        if placement.level is not None:
            self.decision += "; " + placement.describe()
            self.level, self.matched_id, self.score = (
                placement.level, placement.matched_id, placement.score)
        self.cluster_id = placement.cluster_id


class _Rows:
    """Rows that nothing reads back while a batch is written, collected across the batch and
    written with one ``executemany`` per table (``write``): at the batch's end, or before the
    writer reads one of these tables back (an article that changes again, an orphan check).

    Per file, these were ~10 statements; per batch, the single writer saves ~N µs a file
    (measured on 20,000 files). Rows keep their order, so rowids are the same as row by row.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything: at the start and the end of each transaction."""
        # path -> (article_id, sha256, status) of the batch's files: read in one query per
        # batch, then kept up to date by ``upsert_source``
        self.known: dict[str, tuple[Any, Any, Any] | None] = {}
        # provider domain -> (a name was written, the last logo written) in this transaction
        self.providers: dict[str, tuple[bool, str | None]] = {}
        self.clear()

    def clear(self) -> None:
        """Forget the rows collected (written, or rolled back)."""
        self.sources: dict[str, tuple[Any, ...]] = {}  # path -> its row (the last one wins)
        self.versions: list[tuple[Any, ...]] = []
        self.topics: dict[str, str] = {}  # slug -> name (the first one wins, as in the table)
        self.article_topics: list[tuple[int, str]] = []
        self.images: list[tuple[Any, ...]] = []
        self.related: list[tuple[Any, ...]] = []
        self.mentioned: dict[str, None] = {}  # provider domains named by related items
        self.arrived: list[int] = []  # new articles that older related items may point at

    def load_sources(self, conn: sqlite3.Connection, paths: list[str]) -> None:
        for chunk in chunks(paths):
            self.known.update((p, None) for p in chunk)
            self.known.update(
                (r[0], r[1:]) for r in conn.execute(
                    "SELECT path, article_id, sha256, status FROM sources WHERE path IN "
                    f"({', '.join('?' for _ in chunk)})", chunk))

    def source(self, conn: sqlite3.Connection, path: str) -> tuple[Any, Any, Any] | None:
        """(article_id, sha256, status) of a file's source row, or None."""
        if path not in self.known:
            self.load_sources(conn, [path])
        return self.known[path]

    def upsert_source(self, facts: Any, aid: int | None, status: str, stamp: str) -> None:
        sha256 = facts.sha256 or None
        self.known[facts.path] = (aid, sha256, status)
        self.sources[facts.path] = (facts.path, aid, sha256, facts.size, facts.mtime_ns, status,
                                    stamp, stamp)

    def write(self, conn: sqlite3.Connection) -> None:
        """Write what was collected; providers and topics before the rows that name them."""
        if not (self.sources or self.versions or self.related or self.images or self.arrived
                or self.article_topics):
            return
        conn.executemany("INSERT INTO providers (domain) VALUES (?) ON CONFLICT(domain) "
                         "DO NOTHING", [(d,) for d in self.mentioned])
        conn.executemany("INSERT INTO topics (slug, name, articles) VALUES (?, ?, 0) "
                         "ON CONFLICT(slug) DO NOTHING", list(self.topics.items()))
        conn.executemany(
            "INSERT INTO sources (path, article_id, sha256, size, mtime_ns, status, "
            "first_seen_at, last_ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(path) DO UPDATE SET article_id = excluded.article_id, "
            "sha256 = excluded.sha256, size = excluded.size, mtime_ns = excluded.mtime_ns, "
            "status = excluded.status, last_ingested_at = excluded.last_ingested_at",
            list(self.sources.values()))
        conn.executemany(
            "INSERT INTO article_versions (article_id, version, sha256, source_path, "
            "changed_fields, snapshot, observed_at) VALUES (?, ?, ?, ?, ?, ?, ?)", self.versions)
        conn.executemany("INSERT INTO article_topics (article_id, topic) VALUES (?, ?)",
                         self.article_topics)
        conn.executemany(
            "INSERT INTO images (article_id, position, kind, url, width, height, is_cached, "
            "title, attribution) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self.images)
        conn.executemany(
            "INSERT INTO related (article_id, position, url, canonical_url, target_id, "
            "related_article_id, title, excerpt, provider_name, provider_domain, published_at, "
            "quality) VALUES (?, ?, ?, ?, ?, "
            "(SELECT id FROM articles WHERE id = ?), ?, ?, ?, ?, ?, ?)", self.related)
        # earlier articles that listed a new one as related now link to it
        conn.executemany(
            "UPDATE related SET related_article_id = ? "
            "WHERE target_id = ? AND related_article_id IS NULL",
            [(aid, aid) for aid in self.arrived])
        self.clear()


class Store:
    """The database, opened and migrated; one instance per process that writes."""

    def __init__(
        self, path: str | os.PathLike[str], busy_timeout_ms: int = 30_000,
        dedupe: dedupe.DedupeParams | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self._checkpointer: Checkpointer | None = None
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self.db = connect(self.path, busy_timeout_ms)
        interrupted_bulk = migrate(self.db)
        self.conn = self.db.conn
        # during a bulk load, provider and topic aggregates, and the links of related items to
        # articles that arrived after them, are settled once at its end
        self.defer_counts = False
        self._article_cols = list(article_columns())
        cols = ", ".join(f'"{c}"' for c in self._article_cols)
        marks = ", ".join("?" for _ in self._article_cols)
        self._insert_article = f"INSERT INTO articles ({cols}) VALUES ({marks})"
        updatable = [c for c in self._article_cols if c not in ("id", "first_seen_at")]
        self._update_article = (
            "UPDATE articles SET "
            + ", ".join(f'"{c}" = ?' for c in updatable)
            + " WHERE id = ?"
        )
        self._updatable = updatable
        self._rows = _Rows()
        # dedupe_keys is a random-key index: a page cache that holds its hot part keeps batch
        # commits from rewriting most of it. Bounded whatever the database size: 32 MiB; 64 MiB
        # was 2-8 % faster at 100,000 files (477-478 vs 442-469 files/s) but kept a backfill
        # over its 300 MB budget (321 vs 285 MB, the sum of its processes' RSS)
        self.conn.execute("PRAGMA cache_size = -32768")
        self.clusters = Clusters(self.conn, dedupe or _default_dedupe_params())
        self.ensure_dedupe_current()
        if interrupted_bulk:  # its aggregates were never settled
            self.refresh_all_counts()

    def ensure_dedupe_current(self) -> int:
        """Re-file every article once if the stored dedupe keys were made with other settings."""
        with transaction(self.conn):
            return self.clusters.ensure_current()

    def checkpoint_in_background(self, interval_s: float = 1.0) -> None:
        """Leave WAL checkpoints to a thread (see ``schema.Checkpointer``), for the daemon.

        The writer's own automatic checkpoint is off meanwhile: at 100 files/s the log gains
        ~10,000 pages a second, and while readers keep the log from restarting, any page limit
        there made every second's crossing commit copy and fsync it (30-45 ms, the daemon's p99).
        Should the thread ever die, ``_tend_log`` gives the writer its own back."""
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._checkpointer = Checkpointer(self.path, interval_s)
        self._checkpointer.start()

    def _tend_log(self) -> None:
        """After a commit, with the checkpointer thread on: finish its pass, or take over."""
        assert self._checkpointer is not None
        if not self._checkpointer.is_alive():
            self._checkpointer = None
            self.conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}")
            from .logs import get_logger

            get_logger().error("checkpoint", outcome="thread stopped",
                               action="the writer checkpoints the log itself from now on")
        elif self._checkpointer.restart_due:
            # only the frames committed since its last pass are left to copy, and no commit can
            # come in meanwhile: the log is then complete, and the next transaction reuses it
            self._checkpointer.restart_due = False
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.conn.close()  # the last connection to close checkpoints the rest

    # -- runs ---------------------------------------------------------------------------------

    def begin_run(self, kind: str, paths: list[str]) -> int:
        cur = self.conn.execute(
            "INSERT INTO ingest_runs (kind, paths, started_at, status, pid, host) "
            "VALUES (?, ?, ?, 'running', ?, ?)",
            (kind, json.dumps(paths), now(), os.getpid(), socket.gethostname()),
        )
        return int(cur.lastrowid)

    def end_run(self, run_id: int, counts: dict[str, int], elapsed: float, status: str) -> None:
        seen = sum(counts.get(k, 0) for k in COUNTS if k != "deleted")
        self.conn.execute(
            "UPDATE ingest_runs SET ended_at = ?, status = ?, seen = ?, new = ?, updated = ?, "
            "unchanged = ?, duplicate = ?, rejected = ?, skipped = ?, deleted = ?, "
            "elapsed_s = ?, files_per_s = ? WHERE id = ?",
            (
                now(), status, seen, *(counts.get(k, 0) for k in COUNTS),
                round(elapsed, 3), round(seen / elapsed, 1) if elapsed > 0 else None, run_id,
            ),
        )

    # -- what we already know -------------------------------------------------------------------

    def article_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM articles").fetchone()[0])

    def source_stats_in(self, folder: str) -> dict[str, tuple[int, int, str]]:
        """path -> (size, mtime_ns, status) of the files directly in a folder, for the stat-only
        skip of unchanged files (one range of the primary key)."""
        prefix = folder.rstrip(os.sep) + os.sep
        return {
            row[0]: (row[1], row[2], row[3])
            for row in self.conn.execute(
                "SELECT path, size, mtime_ns, status FROM sources WHERE path > ? AND path < ? "
                "AND instr(substr(path, ?), ?) = 0",
                (prefix, _after(prefix), len(prefix) + 1, os.sep))
        }

    def count_sources_under(self, roots: list[str]) -> int:
        """Source rows (any status) at or below the roots (files or folders)."""
        where, args = _under_roots(roots)
        return int(self.conn.execute(f"SELECT count(*) FROM sources WHERE {where}", args)
                   .fetchone()[0])

    def sources_under(self, roots: list[str]) -> Iterator[tuple[str, str]]:
        """(path, status) of the source rows at or below the roots."""
        where, args = _under_roots(roots)
        yield from self.conn.execute(f"SELECT path, status FROM sources WHERE {where}", args)

    # -- the batch ------------------------------------------------------------------------------

    def write_batch(
        self, outcomes: list[Outcome], *, run_id: int | None = None, force: bool = False
    ) -> list[Result]:
        """Record a batch of files in one transaction; all of it commits or none of it."""
        results: list[Result] = []
        touched_providers: set[str] = set()
        keys = [k for item in outcomes if isinstance(item, Prepared) for k in _keys(item)]
        with transaction(self.conn), self._batch_rows(), self.clusters.batch(keys):
            start = time.perf_counter()
            self.clusters.touched.clear()
            self._rows.load_sources(self.conn, [item.facts.path for item in outcomes])
            stamp = now()
            for item in outcomes:
                file_start = time.perf_counter()
                if isinstance(item, Prepared):
                    result = self._store_article(item, stamp, force, touched_providers)
                elif isinstance(item, Rejection):
                    result = self._store_rejection(item, stamp, run_id)
                else:
                    assert isinstance(item, Skipped)
                    result = Result(item.facts.path, "skipped", decision=item.reason)
                result.ms = (time.perf_counter() - file_start) * 1000
                results.append(result)
            self._rows.write(self.conn)
            self.clusters.flush()
            if not self.defer_counts:
                self._refresh_counts(touched_providers)
            # each file's share of the work done once for the whole batch
            shared = (time.perf_counter() - start) * 1000 - sum(r.ms for r in results)
            for result in results:
                result.ms += shared / len(results)
        if self._checkpointer is not None:
            self._tend_log()
        return results

    @contextlib.contextmanager
    def _batch_rows(self) -> Iterator[None]:
        """Rows collected for one transaction only: never carried over into the next one."""
        self._rows.reset()
        try:
            yield
        finally:
            self._rows.reset()

    def _store_rejection(self, item: Rejection, stamp: str, run_id: int | None) -> Result:
        facts = item.facts
        previous = self._rows.source(self.conn, facts.path)  # (article_id, sha256, status)
        # the same bytes rejected again (read twice, a forced run) are one rejection, not two
        again = (previous is not None and previous[2] == "rejected" and facts.sha256
                 and previous[1] == facts.sha256)
        if not again:
            self.conn.execute(
                "INSERT INTO rejects (path, sha256, stage, reason, details, at, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (facts.path, facts.sha256 or None, item.stage, item.reason,
                 json.dumps(item.details, ensure_ascii=False, default=str), stamp, run_id),
            )
        self._rows.upsert_source(facts, None, "rejected", stamp)
        if previous and previous[0] is not None:
            self._tombstone_if_orphaned(previous[0], stamp)
        return Result(facts.path, "rejected", decision=f"{item.stage}: {item.reason}")

    def _store_article(
        self, item: Prepared, stamp: str, force: bool, providers: set[str]
    ) -> Result:
        conn = self.conn
        facts = item.facts
        aid = item.article_id
        source = self._rows.source(conn, facts.path)
        same_bytes = (
            source is not None and source[1] == facts.sha256 and source[2] == "ingested"
            and source[0] == aid
        )
        if same_bytes and not force:
            self._rows.upsert_source(facts, aid, "ingested", stamp)
            return Result(facts.path, "unchanged", aid, "same bytes as last time")

        existing = conn.execute(
            "SELECT version, content_hash, deleted_at, dedupe_keys, published_at, provider_id "
            "FROM articles WHERE id = ?", (aid,)
        ).fetchone()
        row = {**item.article}
        changed: list[str] = []
        if existing is None:
            outcome, decision, version = "new", "new canonical URL", 1
            row.update(version=1, first_seen_at=stamp, updated_at=stamp, deleted_at=None)
            self._age_from_first_sight(aid, row)
            self._ensure_provider(item, providers, new=True)
            conn.execute(self._insert_article, [_sql(row.get(c)) for c in self._article_cols])
            self._insert_version(item, 1, [], stamp)
            self._replace_children(item, new=True)
            placement: Placement | None = self._attach(item)
            if not self.defer_counts:  # (a bulk load links them all at its end)
                self._rows.arrived.append(aid)
        else:
            version, old_hash, deleted_at, old_keys, old_published, old_provider = existing
            placement = None
            is_new_source = source is None or source[0] != aid
            content_changed = old_hash != item.content_hash and not same_bytes
            if content_changed:
                version += 1
                changed = self._changed_fields(aid, json.loads(item.snapshot))
                self._insert_version(item, version, changed, stamp)
            if is_new_source:
                outcome = "duplicate"
                decision = "level 1: another file of a known article (same canonical URL)"
            elif content_changed:
                outcome, decision = "updated", "file changed"
            else:
                outcome, decision = "unchanged", "file changed, article content did not"
            if content_changed or force or deleted_at is not None:
                row.update(version=version, updated_at=stamp, deleted_at=None)
                self._age_from_first_sight(aid, row)
                self._ensure_provider(item, providers)
                conn.execute(
                    self._update_article,
                    [_sql(row.get(c)) for c in self._updatable] + [aid],
                )
                self._replace_children(item)
                if content_changed:
                    decision += f"; version {version}"
                placement = self._reattach(
                    item, dedupe.unpack_keys(old_keys), (old_published, old_provider),
                    revived=deleted_at is not None,
                )
        if source is not None and source[0] is not None and source[0] != aid:
            # the file now holds another article: the old one may have lost its last file
            self._rows.upsert_source(facts, aid, "ingested", stamp)
            self._tombstone_if_orphaned(source[0], stamp)
        else:
            self._rows.upsert_source(facts, aid, "ingested", stamp)
        result = Result(facts.path, outcome, aid, decision, row.get("version"), changed)
        if outcome == "duplicate":
            result.level, result.matched_id, result.score = 1, aid, 1.0
        result.place(placement)
        return result

    def _attach(self, item: Prepared) -> Placement:
        return self.clusters.attach(item.article_id, item.article, _keys(item))

    def _reattach(
        self, item: Prepared, old_keys: list[int], old_facts: tuple[Any, ...], revived: bool
    ) -> Placement | None:
        new_facts = (item.article.get("published_at"), item.article.get("provider_id"))
        return self.clusters.replace(item.article_id, item.article, _keys(item), old_keys,
                                     old_facts, new_facts, revived)

    def mark_deleted(self, paths: list[str]) -> int:
        """Files that are gone: their sources become 'deleted', orphaned articles tombstoned."""
        if not paths:
            return 0
        conn = self.conn
        with transaction(conn):
            self.clusters.touched.clear()
            stamp = now()
            count = 0
            for path in paths:
                row = conn.execute(
                    "SELECT article_id FROM sources WHERE path = ? AND status != 'deleted'", (path,)
                ).fetchone()
                if row is None:
                    continue
                conn.execute(
                    "UPDATE sources SET status = 'deleted', last_ingested_at = ? WHERE path = ?",
                    (stamp, path),
                )
                if row[0] is not None:
                    self._tombstone_if_orphaned(row[0], stamp)
                count += 1
            self.clusters.flush()
        return count

    def refresh_batch(
        self, items: list[Prepared], columns: list[str], *, children: bool, dry_run: bool = False
    ) -> list[dict[str, Any]]:
        """Rewrite the enrichment of stored articles in one transaction (``pipeline reprocess``).

        Only ``columns`` of each article row are written, plus its child rows when ``children``;
        no version row, no source row, no timestamps: the content did not change. Returns, per
        article, the columns and child tables whose values changed. ``dry_run`` rolls back.
        """
        conn = self.conn
        assign = ", ".join(f'"{c}" = ?' for c in columns)
        changes: list[dict[str, Any]] = []
        touched_providers: set[str] = set()
        conn.execute("BEGIN IMMEDIATE")
        self._rows.reset()
        try:
            for item in items:
                aid = item.article_id
                cur = conn.execute("SELECT * FROM articles WHERE id = ?", (aid,))
                names = [d[0] for d in cur.description]
                old = dict(zip(names, cur.fetchone(), strict=True))
                new = [_sql(item.article.get(c)) for c in columns]
                changed = [c for c, v in zip(columns, new, strict=True) if old[c] != v]
                before = self._children_of(aid) if children else {}
                if "provider_id" in columns or children:
                    self._ensure_provider(item, touched_providers)
                if changed:
                    conn.execute(f"UPDATE articles SET {assign} WHERE id = ?", [*new, aid])
                if children:
                    self._replace_children(item)
                after = self._children_of(aid) if children else {}
                changes.append({"id": aid, "columns": changed,
                                "children": [t for t in before if before[t] != after[t]]})
            self._rows.write(conn)
            self._refresh_counts(touched_providers)
            conn.execute("ROLLBACK" if dry_run else "COMMIT")
        except BaseException:
            self._rows.reset()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return changes

    def _children_of(self, aid: int) -> dict[str, list[tuple[Any, ...]]]:
        self._rows.write(self.conn)
        return {
            table: self.conn.execute(
                f"SELECT * FROM {table} WHERE article_id = ? ORDER BY 2", (aid,)).fetchall()
            for table in ("article_topics", "images", "related")
        }

    # -- the daemon: single-path lookups, moves, heartbeat ----------------------------------------

    def source_stat(self, path: str) -> tuple[int, int, str] | None:
        """(size, mtime_ns, status) of one file's source row, as in ``source_stats``."""
        row = self.conn.execute(
            "SELECT size, mtime_ns, status FROM sources WHERE path = ?", (path,)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def live_paths_under(self, folder: str) -> list[str]:
        """Paths of not-deleted sources below a folder (a folder that vanished or moved away)."""
        prefix = folder.rstrip(os.sep) + os.sep
        return [r[0] for r in self.conn.execute(
            "SELECT path FROM sources WHERE status != 'deleted' AND substr(path, 1, ?) = ?",
            (len(prefix), prefix),
        )]

    def move_source(self, src: str, dst: str) -> bool:
        """A file renamed inside the watched tree: its source row now names the new path, so no
        new article and no new version. False when ``src`` was not a live source (the caller
        then treats ``dst`` as a new file)."""
        return self._moves([(src, dst)]) == 1

    def move_tree(self, src_dir: str, dst_dir: str) -> int:
        """A folder renamed inside the watched tree: every live source below it moves along."""
        src_prefix = src_dir.rstrip(os.sep) + os.sep
        dst_prefix = dst_dir.rstrip(os.sep) + os.sep
        pairs = [(p, dst_prefix + p[len(src_prefix):]) for p in self.live_paths_under(src_dir)]
        return self._moves(pairs)

    def _moves(self, pairs: list[tuple[str, str]]) -> int:
        conn = self.conn
        with transaction(conn):
            stamp = now()
            moved = 0
            for src, dst in pairs:
                row = conn.execute(
                    "SELECT article_id FROM sources WHERE path = ? AND status != 'deleted'", (src,)
                ).fetchone()
                if row is None or src == dst:
                    continue
                # a file moved over another one (mv a.md b.md) replaces b.md's source
                replaced = conn.execute(
                    "SELECT article_id FROM sources WHERE path = ?", (dst,)
                ).fetchone()
                if replaced is not None:
                    conn.execute("DELETE FROM sources WHERE path = ?", (dst,))
                conn.execute("UPDATE sources SET path = ? WHERE path = ?", (dst, src))
                if replaced is not None and replaced[0] not in (None, row[0]):
                    self._tombstone_if_orphaned(replaced[0], stamp)
                moved += 1
        return moved

    def moved_away(self, paths: list[str], since: str) -> list[tuple[str, str]]:
        """Gone files whose exact bytes appeared at another path since ``since``: a move the
        watcher saw as a deletion plus a creation (into a folder not watched yet, or across file
        systems). Their rows are dropped, as a rename would have re-pointed them; returns
        (old path, new path) pairs. The other gone files are for ``mark_deleted``."""
        conn = self.conn
        moved: list[tuple[str, str]] = []
        with transaction(conn):
            for path in paths:
                row = conn.execute(
                    "SELECT article_id, sha256 FROM sources WHERE path = ? AND status = 'ingested'",
                    (path,),
                ).fetchone()
                if row is None or row[1] is None:
                    continue
                other = conn.execute(
                    "SELECT path FROM sources WHERE sha256 = ? AND article_id = ? AND path != ? "
                    "AND status = 'ingested' AND first_seen_at >= ? LIMIT 1",
                    (row[1], row[0], path, since),
                ).fetchone()
                if other is not None:
                    conn.execute("DELETE FROM sources WHERE path = ?", (path,))
                    moved.append((path, other[0]))
        return moved

    def write_heartbeat(self, fields: dict[str, Any], *, reset: bool = False) -> None:
        """Update the daemon's heartbeat row; ``reset`` starts it afresh for a new daemon."""
        if reset:
            self.conn.execute("DELETE FROM daemon_heartbeat")
        cols = ["id", *fields]
        self.conn.execute(
            f"INSERT INTO daemon_heartbeat ({', '.join(cols)}) "
            f"VALUES ({', '.join('?' for _ in cols)}) ON CONFLICT(id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in fields),
            [1, *(_sql(v) for v in fields.values())],
        )

    # -- helpers --------------------------------------------------------------------------------

    def _tombstone_if_orphaned(self, aid: int, stamp: str) -> None:
        """An article none of whose files still holds it gets deleted_at (nothing is removed);
        it leaves its story cluster (whose next member may take over as representative)."""
        self._rows.write(self.conn)  # the batch's sources rows count
        cur = self.conn.execute(
            "UPDATE articles SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM sources WHERE article_id = ? AND status = 'ingested')",
            (stamp, aid, aid),
        )
        if cur.rowcount:
            self.clusters.detach(aid)

    def _changed_fields(self, aid: int, snapshot: dict[str, Any]) -> list[str]:
        self._rows.write(self.conn)  # the previous version may be the batch's own
        prev = self.conn.execute(
            "SELECT snapshot FROM article_versions WHERE article_id = ? "
            "ORDER BY version DESC LIMIT 1",
            (aid,),
        ).fetchone()
        if prev is None:
            return sorted(snapshot)
        old = json.loads(prev[0])
        keys = set(old) | set(snapshot)
        return sorted(k for k in keys if old.get(k) != snapshot.get(k) and k != "secured")

    def _insert_version(self, item: Prepared, version: int, changed: list[str], stamp: str) -> None:
        self._rows.versions.append(
            (item.article_id, version, item.facts.sha256, item.facts.path, json.dumps(changed),
             item.snapshot, stamp))

    def _ensure_provider(self, item: Prepared, providers: set[str], *, new: bool = False) -> None:
        """Provider rows for the article and for the providers its related items name (evidence,
        no article is created from them); triggers keep their counts, ``_refresh_counts`` settles
        their names and logos. ``new``: the article is not in the database yet (so it counted for
        no provider)."""
        conn = self.conn
        aid = item.article_id
        if not new:
            self._rows.write(conn)  # its related rows may be the batch's own
            # the domains this article counted for until now may lose their name or logo too
            providers.update(r[0] for r in conn.execute(
                "SELECT provider_id FROM articles WHERE id = ? AND provider_id IS NOT NULL "
                "UNION SELECT provider_domain FROM related WHERE article_id = ? "
                "AND provider_domain IS NOT NULL", (aid, aid)))
        for r in item.related:
            if r.get("provider_domain"):
                self._rows.mentioned[r["provider_domain"]] = None
                providers.add(r["provider_domain"])
        if not item.provider:
            return
        domain, name, logo = item.provider["domain"], item.provider["name"], item.provider.get("logo")
        providers.add(domain)
        # the first name sticks, the latest logo wins: the batch's earlier articles of this
        # provider may have left nothing to change (most do: ~13 µs a file saved)
        named, last_logo = self._rows.providers.get(domain, (False, None))
        if (domain in self._rows.providers and (name is None or named)
                and (logo is None or logo == last_logo)):
            return
        conn.execute(
            "INSERT INTO providers (domain, name, logo_url) VALUES (?, ?, ?) ON CONFLICT(domain) "
            "DO UPDATE SET name = coalesce(providers.name, excluded.name), "
            "logo_url = coalesce(excluded.logo_url, providers.logo_url)",
            (domain, name, logo),
        )
        self._rows.providers[domain] = (named or name is not None, logo or last_logo)

    def _age_from_first_sight(self, aid: int, row: dict[str, Any]) -> None:
        """``age_at_ingest_s`` counts to the article's first sight (``first_seen_at``), so that it
        does not depend on when a worker happened to read this file."""
        if row.get("age_at_ingest_s") is None:
            return
        first = row.get("first_seen_at") or self.conn.execute(
            "SELECT first_seen_at FROM articles WHERE id = ?", (aid,)).fetchone()[0]
        if first:
            row["age_at_ingest_s"] = age_seconds(row.get("published_at"), first)

    def _replace_children(self, item: Prepared, *, new: bool = False) -> None:
        """The article's topics, images and related items (``new``: it has none yet)."""
        conn = self.conn
        rows = self._rows
        aid = item.article_id
        if not new:
            rows.write(conn)  # its current rows may be the batch's own
            for table in ("article_topics", "images", "related"):
                conn.execute(f"DELETE FROM {table} WHERE article_id = ?", (aid,))
        seen: dict[str, str] = {}
        for name in item.topics:
            slug = topic_slug(name)
            if slug and slug not in seen:
                seen[slug] = name.strip()
        for slug, name in seen.items():
            rows.topics.setdefault(slug, name)
        rows.article_topics += [(aid, slug) for slug in seen]
        rows.images += [(aid, pos, i["kind"], i["url"], i["width"], i["height"],
                         _sql(i["is_cached"]), i["title"], i["attribution"])
                        for pos, i in enumerate(item.images)]
        rows.related += [(aid, pos, r["url"], r["canonical_url"], r["target_id"], r["target_id"],
                          r["title"], r["excerpt"], r["provider_name"], r["provider_domain"],
                          r["published_at"], r["quality"]) for pos, r in enumerate(item.related)]

    def refresh_all_counts(self) -> None:
        """Settle every provider's and topic's aggregates from scratch, and link related items to
        the articles that arrived after them (after a bulk load, which runs without the triggers
        that keep the counts, or on the start after one was interrupted): one pass, O(database)."""
        with transaction(self.conn) as conn:
            conn.execute("UPDATE related SET related_article_id = target_id "
                         "WHERE related_article_id IS NULL AND target_id IN (SELECT id FROM articles)")
            conn.execute("DELETE FROM provider_names")
            conn.execute(
                "INSERT INTO provider_names (domain, name, uses) SELECT domain, name, count(*) "
                "FROM (SELECT provider_id AS domain, provider_name AS name FROM articles UNION ALL "
                "SELECT provider_domain, provider_name FROM related) "
                "WHERE domain IS NOT NULL AND name IS NOT NULL GROUP BY domain, name")
            conn.execute("UPDATE topics SET articles = (SELECT count(*) FROM article_topics "
                         "WHERE topic = topics.slug)")
            conn.execute(
                "UPDATE providers SET articles = (SELECT count(*) FROM articles WHERE provider_id "
                "= providers.domain), mentions = (SELECT count(*) FROM related "
                "WHERE provider_domain = providers.domain)")
            self._refresh_counts({p for (p,) in conn.execute("SELECT domain FROM providers")})

    def _refresh_counts(self, providers: set[str]) -> None:
        """The name and logo of the providers a batch touched (the counts themselves are kept
        by triggers, see ``schema._aggregate_sql``)."""
        self.conn.executemany(
            "UPDATE providers SET "
            # the best display name: the most frequent one (a one-off odd name loses), shorter
            # on a tie
            "name = coalesce((SELECT name FROM provider_names WHERE domain = ?1 "
            "ORDER BY uses DESC, length(name), name LIMIT 1), name), "
            # the logo of its latest-published article that has one: the same whatever order
            # the files came in (the last file written would depend on it)
            "logo_url = coalesce((SELECT i.url FROM articles a JOIN images i ON i.article_id "
            "= a.id AND i.kind = 'provider' WHERE a.provider_id = ?1 AND i.url IS NOT NULL "
            "ORDER BY a.published_at DESC, a.id DESC LIMIT 1), logo_url) "
            "WHERE domain = ?1",
            [(p,) for p in providers],
        )


def _after(prefix: str) -> str:
    """The least string above every string that starts with ``prefix`` (which ends in a
    separator): the end of its range in an index."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _under_roots(roots: list[str]) -> tuple[str, list[str]]:
    """A WHERE clause for paths equal to or below any of the roots (as ``ingest._under``)."""
    terms, args = [], []
    for root in roots:
        prefix = root.rstrip(os.sep) + os.sep
        terms.append("path = ? OR (path > ? AND path < ?)")
        args += [root, prefix, _after(prefix)]
    return "(" + " OR ".join(f"({t})" for t in terms) + ")", args


def _default_dedupe_params() -> dedupe.DedupeParams:
    from .config import DedupeSettings

    return DedupeSettings().params()


def _keys(item: Prepared) -> list[int]:
    """The dedupe look-up keys the worker packed into the article row."""
    return dedupe.unpack_keys(item.article.get("dedupe_keys"))


_PLAIN = frozenset({str, int, float, bytes, type(None)})


def _sql(value: Any) -> Any:
    if type(value) in _PLAIN:  # most values: one test instead of two (~20 µs a file)
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value
