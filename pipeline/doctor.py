"""``pipeline doctor``: check a database and, with ``--repair``, bring it back to a whole state.

Checks, cheapest first: the file is a SQLite database; a write-ahead log left by a process that
died (normal: SQLite replays its committed transactions on open); SQLite's own integrity check;
foreign keys; the full-text index against the articles; the story clusters against their links.

Repairs: a damaged file is moved aside (``<db>.damaged-<time>``, with its ``-wal``/``-shm``), the
rows that can still be read are copied into a new database, the derived state (full-text index,
dedupe keys and links, clusters) is rebuilt, and ``--resync PATH`` re-reads every article file
(``backfill --force``) so the articles match their files again. A broken full-text index is
rebuilt; inconsistent clusters are recomputed. The files are the source of truth; the database
is rebuilt from them, never patched by hand.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from .config import Settings
from .logs import get_logger
from .schema import FTS_TABLE, SCHEMA_VERSION, rebuild_fts

log = get_logger()

_HEADER = b"SQLite format 3\x00"
# Derived from other tables: never salvaged, rebuilt instead.
_DERIVED = {"clusters", "dedupe_keys", "dedupe_links", "dedupe_state", "daemon_heartbeat"}

# name -> (SQL counting the bad rows, what they mean)
_CLUSTER_CHECKS = {
    "cluster without its row": (
        "SELECT count(*) FROM articles a WHERE cluster_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM clusters c WHERE c.id = a.cluster_id)",
        "articles in a cluster that has no clusters row"),
    "cluster size": (
        "SELECT count(*) FROM clusters c WHERE size != "
        "(SELECT count(*) FROM articles WHERE cluster_id = c.id)",
        "clusters whose size is not their number of members"),
    "representative": (
        "SELECT count(*) FROM articles WHERE cluster_id IS NOT NULL AND "
        "coalesce(duplicate_of, id) != cluster_id",
        "cluster members not pointing at their representative"),
    "one-way link": (
        "SELECT count(*) FROM dedupe_links l WHERE NOT EXISTS (SELECT 1 FROM dedupe_links r "
        "WHERE r.article_id = l.other_id AND r.other_id = l.article_id)",
        "duplicate links stored one way only"),
}


@dataclass
class Finding:
    check: str
    ok: bool
    message: str
    fix: str = ""  # what --repair does about it ('' = nothing to do)


@dataclass
class Diagnosis:
    db: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def damaged(self) -> bool:
        return any(f.fix == "salvage" for f in self.findings)

    @property
    def healthy(self) -> bool:
        return all(f.ok for f in self.findings)

    def add(self, check: str, ok: bool, message: str, fix: str = "") -> None:
        self.findings.append(Finding(check, ok, message, "" if ok else fix))

    def as_dict(self) -> dict[str, Any]:
        return {"db": self.db, "healthy": self.healthy, "damaged": self.damaged,
                "findings": [f.__dict__ for f in self.findings]}


def diagnose(db_path: str) -> Diagnosis:
    """Every check; never writes (the WAL is replayed by SQLite itself when it opens the file)."""
    d = Diagnosis(db_path)
    if not os.path.isfile(db_path):
        raise FileNotFoundError(f"no database at {db_path}")
    with open(db_path, "rb") as fh:
        head = fh.read(len(_HEADER))
    if os.path.getsize(db_path) and head != _HEADER:
        d.add("file", False, "not a SQLite database (its first bytes are not SQLite's header)",
              "salvage")
        return d
    wal = f"{db_path}-wal"
    if os.path.exists(wal) and os.path.getsize(wal):
        d.add("wal", True, f"a write-ahead log of {os.path.getsize(wal):,} bytes is present: "
              "either a process has the database open, or one stopped without closing it; "
              "SQLite replays its committed transactions on open (uncommitted ones are dropped)")
    try:
        conn = sqlite3.connect(db_path, timeout=30)
        try:
            _checks(conn, d)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        d.add("open", False, f"cannot be read: {exc}", "salvage")
    return d


def _checks(conn: sqlite3.Connection, d: Diagnosis) -> None:
    problems = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
    if problems != ["ok"]:
        d.add("integrity", False, "SQLite integrity check failed: " + "; ".join(problems[:5]),
              "salvage")
        return
    d.add("integrity", True, "SQLite integrity check passed")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version < SCHEMA_VERSION:
        d.add("schema", True, f"schema version {version}: migrated on the next start")
    fks = conn.execute("PRAGMA foreign_key_check").fetchall()
    d.add("foreign keys", not fks, f"{len(fks)} row(s) point at missing rows" if fks else
          "every reference resolves", "resync")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    fts = f"{FTS_TABLE}_fts"
    if fts in tables:
        try:
            conn.execute(f"INSERT INTO {fts} ({fts}, rank) VALUES ('integrity-check', 1)")
            d.add("full-text index", True, "matches the articles")
        except sqlite3.DatabaseError as exc:
            d.add("full-text index", False, f"does not match the articles ({exc})", "rebuild")
    if {"clusters", "dedupe_links", "articles"} <= tables:
        bad = {name: conn.execute(sql).fetchone()[0] for name, (sql, _) in _CLUSTER_CHECKS.items()}
        wrong = [f"{n} {_CLUSTER_CHECKS[k][1]}" for k, n in bad.items() if n]
        d.add("clusters", not wrong, "; ".join(wrong) if wrong else
              "every cluster matches its links", "recluster")
    if "ingest_runs" in tables:
        n = conn.execute("SELECT count(*) FROM ingest_runs WHERE status = 'running'").fetchone()[0]
        if n:
            d.add("runs", True, f"{n} run(s) still marked running: either running now, or "
                  "killed (their files are picked up by the next run)")


def repair(settings: Settings, resync: list[str]) -> dict[str, Any]:
    """Fix what ``diagnose`` found; returns what was done. Refuses while a daemon runs."""
    from .watch import DaemonLock

    db_path = str(settings.db)
    holder = DaemonLock.holder(db_path)
    if holder is not None:
        raise RuntimeError(f"a `pipeline watch` (pid {holder.get('pid', '?')}) is writing to "
                           f"{db_path}: stop it before repairing")
    before = diagnose(db_path)
    done: list[str] = []
    if before.damaged:
        aside, salvaged = _salvage(db_path, settings)
        done.append(f"moved the damaged file to {aside}")
        done.append("salvaged " + (", ".join(f"{t} {n}" for t, n in salvaged.items() if n)
                                   or "nothing"))
    else:
        fixes = {f.fix for f in before.findings if not f.ok}
        conn = sqlite3.connect(db_path, timeout=settings.busy_timeout_ms / 1000,
                               isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            if "rebuild" in fixes:
                rebuild_fts(conn)
                done.append("rebuilt the full-text index")
            if "recluster" in fixes:  # forget the fingerprint: the store re-files every article
                conn.execute("DELETE FROM dedupe_state WHERE key = 'fingerprint'")
                done.append("recomputed dedupe keys, links and clusters")
            conn.execute("COMMIT")
        finally:
            conn.close()
    from .store import Store

    Store(db_path, settings.busy_timeout_ms, dedupe=settings.dedupe.params()).close()
    summary: dict[str, Any] | None = None
    if resync:
        from .ingest import backfill

        summary = backfill(settings, resync, force=True)
        done.append(f"re-read {summary['seen']} file(s) from {', '.join(resync)}")
    elif before.damaged:
        done.append("not re-synced: run `pipeline doctor --repair --resync PATH...` (or "
                    "`pipeline backfill --force PATH...`) over the article folders")
    after = diagnose(db_path)
    return {"db": db_path, "before": before.as_dict(), "done": done, "resync": summary,
            "after": after.as_dict()}


def _salvage(db_path: str, settings: Settings) -> tuple[str, dict[str, int]]:
    """Move the damaged file aside and copy what can still be read into a new database."""
    from .schema import connect, migrate, tables

    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = f"{db_path}.damaged-{stamp}"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            shutil.move(db_path + suffix, aside + suffix)
    fresh = connect(db_path, settings.busy_timeout_ms)
    migrate(fresh)
    salvaged: dict[str, int] = {}
    try:
        old = sqlite3.connect(f"file:{aside}?mode=ro", uri=True)
    except sqlite3.Error:
        fresh.conn.close()
        return aside, salvaged
    conn = fresh.conn
    conn.execute("PRAGMA foreign_keys = OFF")  # parents may be among the lost rows
    try:
        for name, spec in tables().items():
            if name in _DERIVED:
                continue
            salvaged[name] = _copy_table(old, conn, name, list(spec["columns"]))
        conn.execute("UPDATE articles SET cluster_id = NULL, duplicate_of = NULL, "
                     "dedupe_keys = NULL")
        rebuild_fts(conn)
    finally:
        old.close()
        conn.execute("PRAGMA foreign_keys = ON")
        conn.close()
    log.warning("doctor.salvaged", db=db_path, damaged=aside, rows=salvaged)
    return aside, salvaged


def _copy_table(old: sqlite3.Connection, new: sqlite3.Connection, name: str,
                columns: list[str]) -> int:
    """Copy the readable rows of one table, in order, until the first unreadable page."""
    try:
        have = [r[1] for r in old.execute(f'PRAGMA table_info("{name}")')]
    except sqlite3.DatabaseError:
        return 0
    cols = [c for c in columns if c in have]
    if not cols:
        return 0
    collist = ", ".join(f'"{c}"' for c in cols)
    insert = (f'INSERT OR IGNORE INTO "{name}" ({collist}) '
              f'VALUES ({", ".join("?" for _ in cols)})')
    copied = 0
    new.execute("BEGIN")
    try:
        cursor = old.execute(f'SELECT {collist} FROM "{name}"')
        while True:
            rows = cursor.fetchmany(500)
            if not rows:
                break
            new.executemany(insert, rows)
            copied += len(rows)
    except sqlite3.DatabaseError as exc:
        log.warning("doctor.unreadable", table=name, after_rows=copied, error=str(exc))
    new.execute("COMMIT")
    return copied


def format_report(report: Diagnosis | dict[str, Any]) -> str:
    data = report.as_dict() if isinstance(report, Diagnosis) else report
    if "before" in data:  # a repair
        lines = [f"database {data['db']}", "before:"]
        lines += _finding_lines(data["before"])
        lines += ["done:"] + [f"  - {x}" for x in data["done"] or ["nothing to repair"]]
        lines += ["after:"] + _finding_lines(data["after"])
        return "\n".join(lines)
    lines = [f"database {data['db']}"] + _finding_lines(data)
    if data["damaged"]:
        lines.append(f"the file is damaged: run `pipeline doctor --db {data['db']} --repair "
                     "--resync PATH...` over the article folders to rebuild it")
    elif not data["healthy"]:
        lines.append(f"run `pipeline doctor --db {data['db']} --repair` to fix this")
    return "\n".join(lines)


def _finding_lines(data: dict[str, Any]) -> list[str]:
    return [f"  {'ok ' if f['ok'] else 'BAD'} {f['check']}: {f['message']}"
            for f in data["findings"]]
