"""The database schema, in one place, created or migrated on start.

Migration is additive: missing tables, columns, indexes and the full-text index are created;
nothing is dropped. ``PRAGMA user_version`` records the schema version for diagnostics.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from functools import cached_property
from typing import Any

from .enrichers import enrichment_columns

SCHEMA_VERSION = 1

# table -> (columns in order {name: SQLite type}, primary key, foreign keys)
_BASE_ARTICLE_COLUMNS: dict[str, str] = {
    "id": "INTEGER",
    "canonical_url": "TEXT",
    "title": "TEXT",
    "excerpt": "TEXT",
    "body": "TEXT",
    "published_at": "TEXT",
    "category": "TEXT",
    "type": "TEXT",
    "quality": "INTEGER",
    "heat": "INTEGER",
    "published": "INTEGER",
    "provider_id": "TEXT",
    "topics": "TEXT",
    "web_url": "TEXT",
    "original_url": "TEXT",
    "amp_url": "TEXT",
    "cdn_amp_url": "TEXT",
    "extra": "TEXT",
    "content_hash": "TEXT",
    "dedupe_keys": "BLOB",  # the keys this article is filed under in dedupe_keys (packed int64)
    "version": "INTEGER",
    "first_seen_at": "TEXT",
    "updated_at": "TEXT",
    "deleted_at": "TEXT",
}


def article_columns() -> dict[str, str]:
    return {**_BASE_ARTICLE_COLUMNS, **enrichment_columns()}


# Story-cluster columns, kept by ``clusters`` (not by the article upsert, which never touches them).
CLUSTER_COLUMNS: dict[str, str] = {
    "cluster_id": "INTEGER",  # the cluster's representative id; NULL for an article alone
    "duplicate_of": "INTEGER",  # the representative, on every other member; NULL otherwise
}


def tables() -> dict[str, dict[str, Any]]:
    return {
        "providers": {
            # name: the most frequent name seen for the domain (articles and related items);
            # mentions: related items naming the provider; logo_url: its latest logo
            "columns": {"domain": "TEXT", "name": "TEXT", "articles": "INTEGER",
                        "mentions": "INTEGER", "logo_url": "TEXT"},
            "pk": "domain",
        },
        "articles": {
            "columns": {**article_columns(), **CLUSTER_COLUMNS},
            "pk": "id",
            # cluster_id and duplicate_of name the representative article, so Datasette shows
            # its title (articles are never deleted, so the reference always holds)
            "foreign_keys": [("provider_id", "providers", "domain"),
                             ("cluster_id", "articles", "id"), ("duplicate_of", "articles", "id")],
        },
        "sources": {
            "columns": {
                "path": "TEXT",
                "article_id": "INTEGER",
                "sha256": "TEXT",
                "size": "INTEGER",
                "mtime_ns": "INTEGER",
                "status": "TEXT",
                "first_seen_at": "TEXT",
                "last_ingested_at": "TEXT",
            },
            "pk": "path",
            "foreign_keys": [("article_id", "articles", "id")],
        },
        "rejects": {
            "columns": {
                "id": "INTEGER",
                "path": "TEXT",
                "sha256": "TEXT",
                "stage": "TEXT",
                "reason": "TEXT",
                "details": "TEXT",
                "at": "TEXT",
                "run_id": "INTEGER",
            },
            "pk": "id",
        },
        "topics": {
            "columns": {"slug": "TEXT", "name": "TEXT", "articles": "INTEGER"},
            "pk": "slug",
        },
        "article_topics": {
            "columns": {"article_id": "INTEGER", "topic": "TEXT"},
            "pk": ("article_id", "topic"),
            "foreign_keys": [("article_id", "articles", "id"), ("topic", "topics", "slug")],
        },
        "images": {
            "columns": {
                "article_id": "INTEGER",
                "position": "INTEGER",
                "kind": "TEXT",  # 'article' or 'provider' (the provider's logo)
                "url": "TEXT",
                "width": "INTEGER",
                "height": "INTEGER",
                "is_cached": "INTEGER",
                "title": "TEXT",
                "attribution": "TEXT",
            },
            "pk": ("article_id", "position"),
            "foreign_keys": [("article_id", "articles", "id")],
        },
        "related": {
            "columns": {
                "article_id": "INTEGER",
                "position": "INTEGER",
                "url": "TEXT",
                "canonical_url": "TEXT",
                "target_id": "INTEGER",  # id the related article has/will have (hash of its URL)
                "related_article_id": "INTEGER",  # set only while that article is in the database
                "title": "TEXT",
                "excerpt": "TEXT",
                "provider_name": "TEXT",
                "provider_domain": "TEXT",
                "published_at": "TEXT",
                "quality": "INTEGER",
            },
            "pk": ("article_id", "position"),
            "foreign_keys": [
                ("article_id", "articles", "id"),
                ("related_article_id", "articles", "id"),
            ],
        },
        "article_versions": {
            "columns": {
                "article_id": "INTEGER",
                "version": "INTEGER",
                "sha256": "TEXT",
                "source_path": "TEXT",
                "changed_fields": "TEXT",
                "snapshot": "TEXT",
                "observed_at": "TEXT",
            },
            "pk": ("article_id", "version"),
            "foreign_keys": [("article_id", "articles", "id")],
        },
        "clusters": {
            "columns": {
                "id": "INTEGER",  # = representative (so ids do not depend on arrival order)
                "representative": "INTEGER",
                "size": "INTEGER",
                "first_published": "TEXT",
                "last_published": "TEXT",
                "providers": "TEXT",  # JSON array of provider domains, sorted
            },
            "pk": "id",
            "foreign_keys": [("representative", "articles", "id")],
        },
        "dedupe_state": {
            "columns": {"key": "TEXT", "value": "TEXT"},
            "pk": "key",
        },
        "ingest_runs": {
            "columns": {
                "id": "INTEGER",
                "kind": "TEXT",
                "paths": "TEXT",
                "started_at": "TEXT",
                "ended_at": "TEXT",
                "status": "TEXT",
                "seen": "INTEGER",
                "new": "INTEGER",
                "updated": "INTEGER",
                "unchanged": "INTEGER",
                "duplicate": "INTEGER",
                "rejected": "INTEGER",
                "skipped": "INTEGER",
                "deleted": "INTEGER",
                "elapsed_s": "REAL",
                "files_per_s": "REAL",
                "pid": "INTEGER",
                "host": "TEXT",
            },
            "pk": "id",
        },
        # One row (id 1) per database, written by the running `pipeline watch` at most about once
        # a second, read by `pipeline status`.
        "daemon_heartbeat": {
            "columns": {
                "id": "INTEGER",
                "pid": "INTEGER",
                "host": "TEXT",
                "run_id": "INTEGER",
                "roots": "TEXT",  # JSON array of the watched folders
                "observer": "TEXT",  # 'inotify' or 'polling'
                "started_at": "TEXT",
                "updated_at": "TEXT",  # the heartbeat itself
                "last_event_at": "TEXT",  # last file-system event received
                "last_commit_at": "TEXT",  # last batch committed
                "last_reconcile_at": "TEXT",
                "queue_depth": "INTEGER",  # events received, not yet looked at
                "pending": "INTEGER",  # files waiting to be complete or to be written
                "files_processed": "INTEGER",
                "rejects": "INTEGER",
                "stopped_at": "TEXT",  # set on a clean exit
            },
            "pk": "id",
        },
    }


# (table, columns, unique)
INDEXES: list[tuple[str, tuple[str, ...], bool]] = [
    ("articles", ("canonical_url",), True),
    ("articles", ("published_at",), False),
    # provider counts and facet; its latest logo (newest first, stops at the first with one)
    ("articles", ("provider_id", "published_at"), False),
    ("articles", ("published_month",), False),
    ("articles", ("published_year",), False),
    ("articles", ("category",), False),
    ("articles", ("registered_domain",), False),
    ("sources", ("article_id",), False),
    ("sources", ("sha256",), False),
    ("rejects", ("path",), False),
    ("rejects", ("at",), False),
    ("article_topics", ("topic",), False),
    ("related", ("target_id",), False),
    ("related", ("related_article_id",), False),
    ("related", ("provider_domain",), False),
    ("articles", ("language",), False),
    # behind Datasette's facets and sorts (config/datasette.yml); tests/test_datasette.py checks
    # with EXPLAIN QUERY PLAN that every configured facet and sort has one
    ("articles", ("topics",), False),  # covering index: the array facet reads only this column
    ("articles", ("updated_at",), False),
    ("articles", ("quality",), False),
    ("articles", ("heat",), False),
    ("articles", ("word_count",), False),
    ("sources", ("status", "article_id"), False),  # status facet; files per article
    ("sources", ("last_ingested_at",), False),
    ("rejects", ("stage",), False),
    ("article_versions", ("observed_at",), False),
    ("providers", ("articles",), False),
    ("topics", ("articles",), False),
    ("articles", ("cluster_id",), False),
    ("articles", ("duplicate_of",), False),
    ("clusters", ("size",), False),
    ("clusters", ("last_published",), False),
]

# The indexes the single writer reads through during a bulk load. The others are dropped for a
# bulk load, then rebuilt in one pass (see ``begin_bulk``): they serve readers (Datasette's facets,
# sorts and lookups), the provider and topic counts and the related links (settled once at the end
# of a bulk load), the daemon's move detection (not running during one), or, for the unique
# canonical_url, integrity that the primary key already holds (an article's id is a hash of that
# URL). Each index kept costs every batch's commit a rewrite of the pages its random keys touch.
WRITER_INDEXES: frozenset[tuple[str, tuple[str, ...]]] = frozenset({
    ("articles", ("cluster_id",)),  # cluster members
    ("sources", ("article_id",)),  # is an article orphaned?
})

# Pages the write-ahead log may hold before a checkpoint copies them into the database: SQLite's
# default, and a bulk load's. A batch rewrites many of the same index pages as the one before;
# checkpointing every few batches instead of after each copies each such page once (a third
# less checkpoint work at 20,000 files). The log file grows to about this size (64 MiB) meanwhile.
WAL_AUTOCHECKPOINT = 1000
BULK_WAL_AUTOCHECKPOINT = 16384


def index_name(table: str, cols: tuple[str, ...]) -> str:
    return f"idx_{table}_{'_'.join(cols)}"


# Views: derived, hold no data, so migrate() replaces one whose definition changed.
VIEWS: dict[str, str] = {
    # what a person browses first: live articles with the provider's name
    "articles_overview": """
SELECT a.id, a.published_at, a.title, p.name AS provider, a.category, a.topics, a.excerpt,
       a.language, a.word_count, a.version, a.web_url, a.provider_id, a.published_month,
       a.cluster_id, c.size AS cluster_size, a.duplicate_of
FROM articles a LEFT JOIN providers p ON p.domain = a.provider_id
     LEFT JOIN clusters c ON c.id = a.cluster_id
WHERE a.deleted_at IS NULL""",
}

FTS_TABLE = "articles"
FTS_COLUMNS = ("title", "excerpt", "body")

# Dedupe look-up tables, WITHOUT ROWID so the primary key is the whole (compact) table:
# dedupe_keys: LSH band, exact-text, title and URL keys -> article; dedupe_links: confirmed
# duplicate pairs, both directions, each with its level, score and rule.
_DEDUPE_SQL = [
    "CREATE TABLE IF NOT EXISTS dedupe_keys (key INTEGER NOT NULL, article_id INTEGER NOT NULL, "
    "PRIMARY KEY (key, article_id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS dedupe_links (article_id INTEGER NOT NULL, "
    "other_id INTEGER NOT NULL, level INTEGER NOT NULL, score REAL, rule TEXT, "
    "PRIMARY KEY (article_id, other_id)) WITHOUT ROWID",
]


# Provider and topic aggregates, kept by triggers: each change costs O(1), where a recount per
# batch read every article of a touched provider (4.5 ms a one-file batch at 2,000 articles,
# growing with the database: most of the daemon's write time). provider_names counts each name
# a domain is given (articles and related items) so the most frequent one is a small look-up.
# A bulk load drops the triggers (``begin_bulk``) and settles everything once at its end.
_AGGREGATES: dict[str, list[tuple[str, str, str]]] = {
    # table: [(counted column, key column, name column or "")]
    "articles": [("providers.articles", "provider_id", "provider_name")],
    "related": [("providers.mentions", "provider_domain", "provider_name")],
    "article_topics": [("topics.articles", "topic", "")],
}
_KEYS = {"providers": "domain", "topics": "slug"}


def _aggregate_sql() -> list[str]:
    def change(row: str, sign: str, counted: str, key: str, name: str) -> str:
        table, column = counted.split(".")
        sql = (f'UPDATE {table} SET {column} = coalesce({column}, 0) {sign} 1 '
               f'WHERE {_KEYS[table]} = {row}.{key};')
        if name:
            if sign == "+":
                sql += (f" INSERT OR IGNORE INTO provider_names (domain, name, uses) SELECT "
                        f"{row}.{key}, {row}.{name}, 0 WHERE {row}.{key} IS NOT NULL AND "
                        f"{row}.{name} IS NOT NULL;")
            sql += (f" UPDATE provider_names SET uses = uses {sign} 1 WHERE domain = {row}.{key} "
                    f"AND name = {row}.{name};")
            if sign == "-":
                sql += (f" DELETE FROM provider_names WHERE domain = {row}.{key} AND name = "
                        f"{row}.{name} AND uses <= 0;")
        return sql

    sql = ["CREATE TABLE IF NOT EXISTS provider_names (domain TEXT NOT NULL, name TEXT NOT NULL, "
           "uses INTEGER NOT NULL, PRIMARY KEY (domain, name)) WITHOUT ROWID"]
    for table, specs in _AGGREGATES.items():
        add = " ".join(change("new", "+", *spec) for spec in specs)
        remove = " ".join(change("old", "-", *spec) for spec in specs)
        watched = ", ".join(c for spec in specs for c in spec[1:] if c)
        differs = " OR ".join(f"old.{c} IS NOT new.{c}" for spec in specs for c in spec[1:] if c)
        sql += [
            f"CREATE TRIGGER IF NOT EXISTS agg_{table}_ai AFTER INSERT ON {table} BEGIN {add} END",
            f"CREATE TRIGGER IF NOT EXISTS agg_{table}_ad AFTER DELETE ON {table} "
            f"BEGIN {remove} END",
            f"CREATE TRIGGER IF NOT EXISTS agg_{table}_au AFTER UPDATE OF {watched} ON {table} "
            f"WHEN {differs} BEGIN {remove} {add} END",
        ]
    # a provider or topic row made after rows that count for it starts from their count
    sql += [
        "CREATE TRIGGER IF NOT EXISTS agg_providers_ai AFTER INSERT ON providers BEGIN "
        "UPDATE providers SET articles = (SELECT count(*) FROM articles WHERE provider_id = "
        "new.domain), mentions = (SELECT count(*) FROM related WHERE provider_domain = "
        "new.domain) WHERE domain = new.domain; END",
        "CREATE TRIGGER IF NOT EXISTS agg_topics_ai AFTER INSERT ON topics BEGIN "
        "UPDATE topics SET articles = (SELECT count(*) FROM article_topics WHERE topic = "
        "new.slug) WHERE slug = new.slug; END",
    ]
    return sql


AGGREGATE_TRIGGERS = [f"agg_{t}_{k}" for t in _AGGREGATES for k in ("ai", "ad", "au")] + [
    "agg_providers_ai", "agg_topics_ai"]

def _fts_sql() -> list[str]:
    """External-content FTS5 over articles, as sqlite-utils makes it (so Datasette detects it),
    but the update trigger fires only when an indexed column changes."""
    cols = ", ".join(f'"{c}"' for c in FTS_COLUMNS)
    new = ", ".join(f'new."{c}"' for c in FTS_COLUMNS)
    old = ", ".join(f'old."{c}"' for c in FTS_COLUMNS)
    t = FTS_TABLE
    delete = (
        f'INSERT INTO "{t}_fts" ("{t}_fts", rowid, {cols}) VALUES(\'delete\', old.rowid, {old});'
    )
    insert = f'INSERT INTO "{t}_fts" (rowid, {cols}) VALUES (new.rowid, {new});'
    return [
        f'CREATE VIRTUAL TABLE IF NOT EXISTS "{t}_fts" USING FTS5 ({cols}, '
        f"tokenize='porter unicode61 remove_diacritics 2', content=\"{t}\")",
        f'CREATE TRIGGER IF NOT EXISTS "{t}_ai" AFTER INSERT ON "{t}" BEGIN {insert} END',
        f'CREATE TRIGGER IF NOT EXISTS "{t}_ad" AFTER DELETE ON "{t}" BEGIN {delete} END',
        f'CREATE TRIGGER IF NOT EXISTS "{t}_au" AFTER UPDATE OF {cols} ON "{t}" '
        f"BEGIN {delete} {insert} END",
    ]


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception: all of it or none of it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class Database:
    """An open database: ``conn``, plus sqlite-utils' API on it for whoever wants that.

    sqlite-utils is imported on first use of that API only: it, and numpy, which it imports
    when installed, cost every command ~0.35 s and ~31 MB here, and nothing here needs it any
    more (``create_table_sql`` below writes the same SQL; a test compares the two).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @cached_property
    def utils(self) -> Any:
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.utils, name)


def connect(path: str, busy_timeout_ms: int = 30_000) -> Database:
    """Open the database with the pragmas we rely on (WAL: readers never block the writer)."""
    conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    # the log file is reused from its start after each complete checkpoint; this cuts back to
    # 64 MiB one that a long bulk load or a busy reader let grow
    conn.execute(f"PRAGMA journal_size_limit = {64 * 1024 * 1024}")
    conn.execute("PRAGMA foreign_keys = ON")
    return Database(conn)


class Checkpointer(threading.Thread):
    """Copies the write-ahead log into the database from its own connection, off the writer's
    commit path (for the daemon, whose latency is per commit).

    With SQLite's automatic checkpoint, the commit that crosses 1,000 WAL pages does the copy
    and its fsyncs itself: one-file batches measured 15-45 ms at p99 that way, ~1.5 ms without.
    A PASSIVE checkpoint blocks neither the writer nor readers; one with nothing to copy costs
    next to nothing, so it simply runs every ``interval_s``.

    The log file is reused from its start only by a transaction that begins once a checkpoint
    has copied all of it, which this thread's passes never see while the writer commits 100
    times a second (frames arrive while a pass copies): the log grew by ~10,000 pages a second.
    So a pass over a log of ``restart_pages`` or more sets ``restart_due``, and the writer, after
    its next commit, copies the few frames committed since (``Store._tend_log``; ~15 ms, most of
    it two fsyncs, once per ~1.6 s at 100 files/s, against 30-45 ms once a second before).
    """

    restart_pages = BULK_WAL_AUTOCHECKPOINT

    def __init__(self, path: str, interval_s: float = 1.0) -> None:
        super().__init__(name="checkpointer", daemon=True)
        self.path, self.interval_s = path, interval_s
        self.stopping = threading.Event()
        self.failures = 0
        self.restart_due = False

    def run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 1000")
            while not self.stopping.wait(self.interval_s):
                try:
                    self.checkpoint(conn)
                except sqlite3.Error as exc:  # busy, disk full: the next round tries again;
                    if not self.failures:     # the WAL only grows meanwhile, nothing is lost
                        from .logs import get_logger

                        get_logger().warning("checkpoint", outcome="failed", error=str(exc))
                    self.failures += 1
                    continue
                if self.failures:
                    from .logs import get_logger

                    get_logger().info("checkpoint", outcome="recovered", failures=self.failures)
                    self.failures = 0
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        _busy, log, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if log >= self.restart_pages:
            self.restart_due = True

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


def create_table_sql(name: str, spec: dict[str, Any]) -> str:
    """``CREATE TABLE`` for one entry of ``tables()``, as sqlite-utils writes it (the schema of
    databases made before, and what Datasette and tools expect)."""
    pk = spec["pk"]
    refs = {col: (other, other_col) for col, other, other_col in spec.get("foreign_keys", [])}
    lines = []
    for col, typ in spec["columns"].items():
        line = f'   "{col}" {typ}'
        if col == pk:
            line += " PRIMARY KEY"
        if col in refs:
            line += f' REFERENCES "{refs[col][0]}"("{refs[col][1]}")'
        lines.append(line)
    if isinstance(pk, tuple):
        cols = ", ".join(f'"{c}"' for c in pk)
        lines.append(f"   PRIMARY KEY ({cols})")
    return f'CREATE TABLE "{name}" (\n' + ",\n".join(lines) + "\n)"


def is_current(conn: sqlite3.Connection) -> bool:
    """Whether ``migrate`` would find nothing to do: every table, column, index, trigger and view
    there (views as defined now), and the schema version recorded.

    Read-only (~1 ms): opening an up-to-date database takes no write lock and writes nothing,
    where ``migrate``'s full check takes the write lock and rewrites the schema version.
    """
    with contextlib.closing(conn.cursor()) as cur:
        cur.execute("BEGIN")  # one snapshot for all the reads below
        try:
            if cur.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                return False
            have = set(cur.execute("SELECT type, name FROM sqlite_master"))
            columns = set(cur.execute(
                "SELECT m.name, c.name FROM sqlite_master m, pragma_table_info(m.name) c "
                "WHERE m.type = 'table'"))
            views = dict(cur.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'"))
        finally:
            if conn.in_transaction:
                cur.execute("COMMIT")
    want = {("table", name) for name in tables()}
    want |= {("index", index_name(t, cols)) for t, cols, _ in INDEXES}
    want |= {("table", f"{FTS_TABLE}_fts"), ("table", "dedupe_keys"), ("table", "dedupe_links")}
    want |= {("trigger", f"{FTS_TABLE}_{suffix}") for suffix in ("ai", "ad", "au")}
    want |= {("table", "provider_names")} | {("trigger", t) for t in AGGREGATE_TRIGGERS}
    return (
        want <= have
        and all((name, col) in columns
                for name, spec in tables().items() for col in spec["columns"])
        and all(views.get(name) == _view_sql(name, select) for name, select in VIEWS.items())
    )


def migrate(db: Database) -> bool:
    """Create what is missing, in one transaction: a crash mid-migration leaves the old schema.
    Returns True when the provider and topic aggregates must be settled (``Store.
    refresh_all_counts``): after an interrupted bulk load (see ``begin_bulk``) or an upgrade."""
    conn = db.conn
    if is_current(conn):
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        for name, spec in tables().items():
            have = {row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')}
            if not have:
                conn.execute(create_table_sql(name, spec))
            else:
                for col, typ in spec["columns"].items():
                    if col not in have:
                        conn.execute(f'ALTER TABLE "{name}" ADD COLUMN "{col}" {typ}')
        for name, cols, unique in INDEXES:
            index = index_name(name, cols)
            collist = ", ".join(f'"{c}"' for c in cols)
            conn.execute(
                f'CREATE {"UNIQUE " if unique else ""}INDEX IF NOT EXISTS "{index}" '
                f'ON "{name}" ({collist})'
            )
        fts = f"{FTS_TABLE}_fts"
        had_fts = _exists(conn, "table", fts)
        stale_fts = had_fts and not _exists(conn, "trigger", f"{FTS_TABLE}_ai")
        # aggregates not kept by triggers until now (a bulk load, an older version): settle them
        stale_aggregates = had_fts and not all(
            _exists(conn, "trigger", t) for t in AGGREGATE_TRIGGERS)
        for sql in _fts_sql() + _DEDUPE_SQL + _aggregate_sql():
            conn.execute(sql)
        # an index created over existing rows starts empty; after a bulk load (or a crash
        # during one) its triggers were missing: either way, index every article again
        if not had_fts or stale_fts:
            rebuild_fts(conn)
        _migrate_views(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # an interrupted statement may have rolled it back already
            conn.execute("ROLLBACK")
        raise
    return stale_fts or stale_aggregates


def rebuild_fts(conn: sqlite3.Connection) -> None:
    """Re-index every article in the full-text index (its external content is ``articles``)."""
    t = FTS_TABLE
    conn.execute(f'INSERT INTO "{t}_fts" ("{t}_fts") VALUES (\'rebuild\')')


def _exists(conn: sqlite3.Connection, kind: str, name: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?", (kind, name)
    ).fetchone() is not None


def begin_bulk(db: Database) -> int:
    """Stop maintaining the full-text index and the readers' indexes, for a bulk load.

    Keeping them up to date row by row costs the single writer about a third of its time;
    building them once at the end is much cheaper. The provider and topic aggregates' triggers
    go too; they are settled once at the end, and so are the links of related items to articles
    that arrived after them. The state is in the schema itself, so it is
    crash-safe: ``migrate`` (run on every start, and by ``end_bulk``) re-creates missing indexes
    and triggers, and rebuilds the full-text index when its triggers were missing.
    """
    with transaction(db.conn) as conn:
        for table, cols, _unique in INDEXES:
            if (table, cols) not in WRITER_INDEXES:
                conn.execute(f'DROP INDEX IF EXISTS "{index_name(table, cols)}"')
        for suffix in ("ai", "ad", "au"):
            conn.execute(f'DROP TRIGGER IF EXISTS "{FTS_TABLE}_{suffix}"')
        for trigger in AGGREGATE_TRIGGERS:
            conn.execute(f'DROP TRIGGER IF EXISTS "{trigger}"')
    # returned for end_bulk (the daemon's connection has its own, see Store.checkpoint_in_background)
    before = db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    db.conn.execute(f"PRAGMA wal_autocheckpoint = {max(before, BULK_WAL_AUTOCHECKPOINT)}")
    return int(before)


def end_bulk(db: Database, autocheckpoint: int = WAL_AUTOCHECKPOINT) -> None:
    """Rebuild what ``begin_bulk`` dropped (one transaction); the caller then settles the
    provider and topic aggregates and the related links (``Store.refresh_all_counts``).
    ``autocheckpoint``: what ``begin_bulk`` returned."""
    db.conn.execute(f"PRAGMA wal_autocheckpoint = {int(autocheckpoint)}")
    migrate(db)


def _view_sql(name: str, select: str) -> str:
    return f'CREATE VIEW "{name}" AS{select}'


def _migrate_views(conn: sqlite3.Connection) -> None:
    have = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'"))
    for name, select in VIEWS.items():
        sql = _view_sql(name, select)
        if have.get(name) == sql:
            continue
        if name in have:
            conn.execute(f'DROP VIEW "{name}"')
        conn.execute(sql)
