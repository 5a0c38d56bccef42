#!/usr/bin/env python3
"""Crash torture: SIGKILL the real `pipeline backfill` / `pipeline watch` at random moments,
restart, let it finish, and compare a canonical dump of the database with a clean run's.

The promise under test is *exactly-once effects*: after any crash and restart, the database is
exactly what a clean run over the same files would have produced. Any difference fails.

Modes (each trial starts from scratch: a fresh database, or a fresh copy of an old one):

- ``backfill``: kill at a random time in the run (start-up, parse, commit), or, one trial in
  two, just after the writer has been seen holding the write lock (inside a transaction).
  Sometimes only the main process is killed (as the OOM killer would), leaving its worker pool
  to die by itself; the workers must not outlive it.
- ``daemon``: start `pipeline watch` on an empty folder, write the files into it (a burst of
  events), kill at a random moment of the burst or of its draining, write the rest while the
  daemon is down, restart it, wait until it has caught up, stop it (SIGTERM).
- ``migrate``: an old-schema database (no story clusters, fewer indexes, no full-text index)
  is migrated by `pipeline backfill`; kill once the migration's transaction is seen. Right after
  the kill the schema must be wholly old or wholly new; the finished result must equal a clean
  migration's.

Usage::

    python tests/benchmarks/torture.py --count 3000 --kills 20            # every mode
    python tests/benchmarks/torture.py --mode daemon --kills 5 --count 1000 --seed 7

The small in-suite version is ``tests/test_reliability.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_corpus  # noqa: E402

# Columns that legitimately differ between two runs over the same files: when something
# happened (and what is computed from it), and which run did it.
VOLATILE: dict[str, set[str]] = {
    "articles": {"first_seen_at", "updated_at", "age_at_ingest_s"},
    # mtime_ns: a copy of the tree has other mtimes; ``stale_sources`` checks it against the files
    "sources": {"first_seen_at", "last_ingested_at", "mtime_ns"},
    "rejects": {"id", "at", "run_id"},
    "article_versions": {"observed_at"},
}
# Tables that record runs, not content.
SKIP_TABLES = {"ingest_runs", "daemon_heartbeat", "sqlite_sequence", "sqlite_stat1"}
# Timestamps whose presence matters but not their value.
PRESENCE = {"articles": {"deleted_at"}}


# -- the canonical dump --------------------------------------------------------------------------


def canonical_dump(db_path: str | os.PathLike[str], root: str | os.PathLike[str] = "") -> dict[str, Any]:
    """Every content table's rows, volatile columns left out, as a sorted multiset; plus the
    database's own consistency checks (integrity, foreign keys, full-text index). Paths are
    made relative to ``root``, so runs over copies of one tree in other places compare."""
    prefix = os.path.join(os.path.abspath(root), "") if root else None

    def rel(row: tuple[Any, ...]) -> tuple[Any, ...]:
        if prefix is None:
            return row
        return tuple(v[len(prefix):] if isinstance(v, str) and v.startswith(prefix) else v
                     for v in row)

    # read-write only because the FTS5 integrity check is spelled as an INSERT; nothing changes
    conn = sqlite3.connect(db_path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE "
            "'CREATE VIRTUAL TABLE%' AND name NOT LIKE '%_fts_%' ORDER BY name")]
        dump: dict[str, Any] = {}
        for table in tables:
            if table in SKIP_TABLES or table.endswith("_fts"):
                continue
            cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            keep = [c for c in cols if c not in VOLATILE.get(table, set())]
            exprs = [f'("{c}" IS NOT NULL)' if c in PRESENCE.get(table, set()) else f'"{c}"'
                     for c in keep]
            rows = [rel(r) for r in conn.execute(f'SELECT {", ".join(exprs)} FROM "{table}"')]
            dump[table] = {"columns": keep, "rows": sorted(rows, key=repr)}
        dump["_integrity"] = conn.execute("PRAGMA integrity_check").fetchall()
        dump["_foreign_keys"] = conn.execute("PRAGMA foreign_key_check").fetchall()
        try:  # an external-content FTS5 index must match its table (rank 1: against the content)
            conn.execute("INSERT INTO articles_fts (articles_fts, rank) VALUES ('integrity-check', 1)")
            dump["_fts"] = "ok"
        except sqlite3.DatabaseError as exc:
            dump["_fts"] = f"{type(exc).__name__}: {exc}"
        return dump
    finally:
        conn.close()


def unhealthy(dump: dict[str, Any], whose: str) -> list[str]:
    """What the database's own checks found wrong (a clean run must be healthy too)."""
    out = []
    if dump["_integrity"] != [("ok",)]:
        out.append(f"{whose}: integrity_check {dump['_integrity'][:5]}")
    if dump["_foreign_keys"]:
        out.append(f"{whose}: foreign_key_check {dump['_foreign_keys'][:5]}")
    if dump["_fts"] != "ok":
        out.append(f"{whose}: full-text index {dump['_fts']}")
    return out


def stale_sources(db_path: str | os.PathLike[str]) -> list[str]:
    """Sources whose recorded size and mtime are not their file's: the stat skip would then
    re-read (or, worse, wrongly skip) them."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT path, size, mtime_ns FROM sources WHERE status != 'deleted'")
        out = []
        for path, size, mtime_ns in rows:
            try:
                st = os.lstat(path)
            except OSError:
                out.append(f"{path}: recorded, but gone")
                continue
            if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
                out.append(f"{path}: recorded {size} B at {mtime_ns}, file {st.st_size} B at "
                           f"{st.st_mtime_ns}")
        return out
    finally:
        conn.close()


def diff(clean: dict[str, Any], other: dict[str, Any], limit: int = 5) -> list[str]:
    """Human-readable differences (empty: identical)."""
    out: list[str] = []
    for key in sorted(set(clean) | set(other)):
        a, b = clean.get(key), other.get(key)
        if a == b:
            continue
        if not isinstance(a, dict) or not isinstance(b, dict):
            out.append(f"{key}: clean {a!r} != {b!r}")
            continue
        if a["columns"] != b["columns"]:
            out.append(f"{key}: columns differ {a['columns']} != {b['columns']}")
            continue
        ra, rb = set(a["rows"]), set(b["rows"])
        only_a, only_b = sorted(ra - rb, key=repr), sorted(rb - ra, key=repr)
        extra = f", rows {len(a['rows'])} vs {len(b['rows'])}"
        out.append(f"{key}: {len(only_a)} row(s) only in the clean run, {len(only_b)} only after "
                   f"the crash{extra}")
        cols = a["columns"]
        for label, rows in (("clean", only_a), ("crash", only_b)):
            for row in rows[:limit]:
                shown = {c: (v if not isinstance(v, (str, bytes)) or len(v) < 80 else
                             f"{v[:77]!r}...") for c, v in zip(cols, row, strict=True)}
                out.append(f"    {label}: {shown}")
    return out


# -- processes -----------------------------------------------------------------------------------


def pipeline_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *args, "--log-level", "error"]


def child_env(workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    env.update(PIPELINE_LOG_FILE=str(workdir / "log.jsonl"), PIPELINE_WORKERS="2")
    env.update(extra or {})
    return env


def start(cmd: list[str], workdir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # a session of its own: the whole process tree can be killed as one
    return subprocess.Popen(cmd, cwd=workdir, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def kill(proc: subprocess.Popen[bytes], whole_group: bool) -> str:
    """SIGKILL the process (and its workers, or only the main one); returns a problem or ''."""
    pgid = proc.pid
    if whole_group:
        os.killpg(pgid, signal.SIGKILL)
    else:
        proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while not group_gone(pgid):
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)
            return "worker processes outlived the killed main process"
        time.sleep(0.02)
    return ""


def writer_busy(db: Path) -> bool:
    """Whether another connection holds the write lock right now (a transaction is open)."""
    if not db.exists():
        return False
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


def wait_busy(db: Path, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if writer_busy(db):
            return True
        time.sleep(0.002)
    return False


def run_to_end(cmd: list[str], workdir: Path, env: dict[str, str], timeout: float = 600) -> None:
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace')[-2000:]}")


def scalar(db: Path, sql: str) -> Any:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def committed(db: Path) -> int:
    try:
        return scalar(db, "SELECT count(*) FROM sources")
    except sqlite3.Error:
        return 0


# -- corpora -------------------------------------------------------------------------------------


def make_corpus(dest: Path, count: int, seed: int, url_variants: bool = True) -> list[Path]:
    """A generated corpus (planted duplicates, related links) plus a few files that are rejected,
    so rejects are compared too; returns the article files in walk order."""
    if dest.exists():
        shutil.rmtree(dest)
    gen_corpus.generate(dest, count=count, seed=seed, per_dir=max(50, count // 6), check=0,
                        url_variant_rate=gen_corpus.URL_VARIANT_RATE if url_variants else 0.0)
    for name in ("LABELS.tsv", gen_corpus.MARKER):
        (dest / name).unlink(missing_ok=True)
    bad = dest / "zz-bad"
    bad.mkdir()
    (bad / "no-front-matter.md").write_text("just text\n", encoding="utf-8")
    (bad / "broken-yaml.md").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    (bad / "no-url.md").write_text("---\ntitle: No address\n---\n", encoding="utf-8")
    return sorted(dest.rglob("*.md"), key=lambda p: p.relative_to(dest).parts)


def copy_tree(files: list[Path], src: Path, dest: Path) -> None:
    """Write the files into ``dest`` one by one, in walk order, as a plain writer does."""
    for path in files:
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())


@dataclass
class Report:
    mode: str
    kills: int = 0
    passed: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.mode}: {self.passed}/{self.kills} kills passed"


# -- backfill ------------------------------------------------------------------------------------


class Torture:
    def __init__(self, work: Path, count: int, seed: int, log: Callable[[str], None] = print,
                 url_variants: bool = True):
        """``url_variants``: plant files that share a canonical URL but differ in bytes. Which of
        them is the article's latest version depends on the order they are ingested in, which
        the daemon does not promise for files arriving together: off for the daemon."""
        self.work = work
        self.rng = random.Random(seed)
        self.log = log
        self.corpus = work / "corpus"
        self.files = make_corpus(self.corpus, count, seed, url_variants)
        self.n_files = len(self.files)
        self._clean: dict[str, Any] | None = None
        self.clean_s = 0.0

    def trial_dir(self, name: str) -> Path:
        path = self.work / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def clean(self) -> dict[str, Any]:
        """The reference: one uninterrupted backfill over the corpus."""
        if self._clean is None:
            d = self.trial_dir("clean")
            started = time.monotonic()
            run_to_end(pipeline_cmd("backfill", str(self.corpus), "--db", str(d / "a.db"),
                                    "--no-progress"), d, child_env(d))
            self.clean_s = time.monotonic() - started
            self._clean = canonical_dump(d / "a.db", self.corpus)
            self.log(f"clean backfill of {self.n_files} files: {self.clean_s:.1f} s, "
                     f"{len(self._clean['articles']['rows'])} articles, "
                     f"{len(self._clean['clusters']['rows'])} clusters, "
                     f"{len(self._clean['rejects']['rows'])} rejects")
        return self._clean

    def compare(self, report: Report, db: Path, what: str, reference: dict[str, Any],
                root: Path | None = None) -> None:
        report.kills += 1
        problems = (diff(reference, canonical_dump(db, root or self.corpus))
                    + unhealthy(reference, "the clean run") + stale_sources(db)[:5])
        if problems:
            report.failures.append(f"{what}\n  " + "\n  ".join(problems))
            self.log(f"  FAIL {what}")
            for p in problems[:20]:
                self.log(f"    {p}")
        else:
            report.passed += 1
            self.log(f"  ok   {what}")

    def backfill(self, kills: int) -> Report:
        reference = self.clean()
        report = Report("backfill")
        i = -1
        while report.kills < kills:
            i += 1
            d = self.trial_dir(f"backfill-{i}")
            db = d / "a.db"
            extra = {}
            if self.rng.random() < 0.5:  # small batches: more commits to land in
                extra["PIPELINE_BATCH_SIZE"] = str(self.rng.choice([7, 50, 200]))
            env = child_env(d, extra)
            cmd = pipeline_cmd("backfill", str(self.corpus), "--db", str(db), "--no-progress")
            in_txn = self.rng.random() < 0.5
            whole = self.rng.random() < 0.6
            proc = start(cmd, d, env)
            if in_txn:
                # the first transactions are the migration and the run row: aim later
                time.sleep(self.rng.uniform(0.0, self.clean_s * 0.7))
                hit = wait_busy(db, proc, self.clean_s * 2)
                time.sleep(self.rng.uniform(0, 0.05))
                moment = "in a transaction" if hit else "at random (no transaction seen)"
            else:
                time.sleep(self.rng.uniform(0.05, self.clean_s * 0.95))
                moment = "at random"
            if proc.poll() is not None:  # it finished first: not a kill, try again
                if proc.returncode != 0:
                    report.failures.append(f"backfill trial {i}: exited {proc.returncode}")
                continue
            problem = kill(proc, whole)
            done = committed(db)
            if problem:
                report.failures.append(f"backfill trial {i}: {problem}")
            run_to_end(cmd, d, env)
            what = (f"backfill trial {i}: killed {moment}"
                    f"{'' if whole else ' (main process only)'}"
                    f", {done}/{self.n_files} files committed, batch size "
                    f"{extra.get('PIPELINE_BATCH_SIZE', 'default')}")
            self.compare(report, db, what, reference)
        return report

    # -- the daemon ----------------------------------------------------------------------------

    def daemon(self, kills: int) -> Report:
        reference = self.clean()
        report = Report("daemon")
        for i in range(kills):
            d = self.trial_dir(f"daemon-{i}")
            db, inbox = d / "a.db", d / "inbox"
            inbox.mkdir()
            env = child_env(d)
            cmd = pipeline_cmd("watch", str(inbox), "--db", str(db))
            proc = start(cmd, d, env)
            self._wait_daemon(db, proc)
            writer = threading.Thread(target=copy_tree, args=(self.files, self.corpus, inbox))
            started = time.monotonic()
            writer.start()
            time.sleep(self.rng.uniform(0.0, self.clean_s * 1.5))
            during_burst = writer.is_alive()
            whole = self.rng.random() < 0.6
            problem = kill(proc, whole)
            done = committed(db)
            if problem:
                report.failures.append(f"daemon trial {i}: {problem}")
            writer.join()
            burst_s = time.monotonic() - started
            proc = start(cmd, d, env)
            try:
                self._wait_caught_up(db, proc)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    rc = proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    rc = proc.wait()
            if rc != 0:
                report.failures.append(f"daemon trial {i}: exit status {rc} after SIGTERM: "
                                       f"{proc.stderr.read().decode(errors='replace')[-1000:]}")
            what = (f"daemon trial {i}: killed {'during the burst' if during_burst else 'while draining'}"
                    f"{'' if whole else ' (main process only)'}, {done}/{self.n_files} files "
                    f"committed (burst {burst_s:.1f} s)")
            self.compare(report, db, what, reference, inbox)
        return report

    @staticmethod
    def _wait_daemon(db: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if scalar(db, f"SELECT count(*) FROM daemon_heartbeat WHERE pid = {proc.pid}"):
                    return
            except sqlite3.Error:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon exited {proc.returncode}: "
                                   f"{proc.stderr.read().decode(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the daemon did not start")
            time.sleep(0.02)

    def _wait_caught_up(self, db: Path, proc: subprocess.Popen[bytes], timeout: float = 600) -> None:
        """Every file has its source row and the daemon has nothing queued or pending."""
        self._wait_daemon(db, proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon exited {proc.returncode}")
            try:
                n = scalar(db, "SELECT count(*) FROM sources")
                idle = scalar(db, "SELECT queue_depth + pending = 0 AND last_reconcile_at IS NOT "
                                  "NULL FROM daemon_heartbeat")
            except sqlite3.Error:
                n, idle = 0, False
            if n >= self.n_files and idle:
                return
            time.sleep(0.1)
        raise RuntimeError("the daemon did not catch up")

    # -- migration -------------------------------------------------------------------------------

    def migrate(self, kills: int) -> Report:
        report = Report("migrate")
        base = self.work / "clean" / "a.db"
        self.clean()
        old = self.work / "old.db"
        make_old_schema(base, old)
        old_schema = schema_of(old)
        # the reference: the same old database, migrated without interruption
        d = self.trial_dir("migrate-clean")
        shutil.copy(old, d / "a.db")
        cmd = pipeline_cmd("backfill", str(self.corpus), "--db", str(d / "a.db"), "--no-progress")
        started = time.monotonic()
        run_to_end(cmd, d, child_env(d))
        took = time.monotonic() - started
        reference = canonical_dump(d / "a.db", self.corpus)
        new_schema = schema_of(d / "a.db")
        self.log(f"clean migration + run: {took:.1f} s")
        i = -1
        while report.kills < kills:
            i += 1
            d = self.trial_dir(f"migrate-{i}")
            db = d / "a.db"
            shutil.copy(old, db)
            env = child_env(d)
            cmd = pipeline_cmd("backfill", str(self.corpus), "--db", str(db), "--no-progress")
            proc = start(cmd, d, env)
            hit = wait_busy(db, proc, took * 3)
            time.sleep(self.rng.uniform(0, 0.15))
            if proc.poll() is not None:  # it finished first: not a kill, try again
                if proc.returncode != 0:
                    report.failures.append(f"migrate trial {i}: exited {proc.returncode}")
                continue
            problem = kill(proc, self.rng.random() < 0.6)
            if problem:
                report.failures.append(f"migrate trial {i}: {problem}")
            after = schema_of(db)
            state = ("old schema" if after == old_schema else "new schema" if after == new_schema
                     else "HALF-MIGRATED")
            if state == "HALF-MIGRATED":
                report.failures.append(f"migrate trial {i}: schema neither old nor new after kill")
            run_to_end(cmd, d, env)
            what = (f"migrate trial {i}: killed {'in a transaction' if hit else 'at start-up'}"
                    f"; {state} after the kill")
            self.compare(report, db, what, reference)
            if state == "HALF-MIGRATED":
                report.passed -= 1
        return report


def schema_of(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        conn.close()


def make_old_schema(src: Path, dest: Path) -> None:
    """A copy of ``src`` as an older version of the pipeline would have left it: no story
    clusters (columns, tables, fingerprint), no full-text index, no secondary indexes or views."""
    shutil.copy(src, dest)
    conn = sqlite3.connect(dest, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN")
        for kind, name in conn.execute(
            "SELECT type, name FROM sqlite_master WHERE type IN ('view', 'trigger') "
            "OR (type = 'index' AND name LIKE 'idx_%' AND name != 'idx_articles_canonical_url')"
        ).fetchall():
            conn.execute(f'DROP {kind.upper()} "{name}"')
        for table in ("articles_fts", "dedupe_keys", "dedupe_links", "clusters", "dedupe_state"):
            conn.execute(f'DROP TABLE IF EXISTS "{table}"')
        cols = [r[1] for r in conn.execute('PRAGMA table_info("articles")')
                if r[1] not in OLD_MISSING]
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'articles'").fetchone()[0]
        conn.execute(old_articles_sql(sql))
        collist = ", ".join(f'"{c}"' for c in cols)
        conn.execute(f"INSERT INTO articles_old ({collist}) SELECT {collist} FROM articles")
        conn.execute("DROP TABLE articles")
        conn.execute("ALTER TABLE articles_old RENAME TO articles")
        conn.execute("PRAGMA user_version = 0")
        conn.execute("COMMIT")
        conn.execute("VACUUM")
    finally:
        conn.close()


OLD_MISSING = ("cluster_id", "duplicate_of", "dedupe_keys")


def old_articles_sql(sql: str) -> str:
    """The articles table's CREATE statement, named articles_old, without OLD_MISSING."""
    lines = [ln for ln in sql.split("\n")
             if not any(f'"{c}"' in ln for c in OLD_MISSING)]
    text = "\n".join(lines).replace('CREATE TABLE "articles"', 'CREATE TABLE "articles_old"', 1)
    return re.sub(r",\s*\)$", "\n)", text.rstrip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=3000, help="generated files (default 3000)")
    ap.add_argument("--kills", type=int, default=20, help="kills per mode (default 20)")
    ap.add_argument("--mode", choices=["backfill", "daemon", "migrate", "all"], default="all")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", help="working folder (default: a temporary one, removed after)")
    ap.add_argument("--json", action="store_true", help="print the reports as JSON at the end")
    args = ap.parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="torture-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        modes = ["backfill", "daemon", "migrate"] if args.mode == "all" else [args.mode]
        reports = []
        for mode in modes:
            if mode == "daemon" or not reports or reports[-1].mode == "daemon":
                t = Torture(work / ("daemon" if mode == "daemon" else "files"), args.count,
                            args.seed, url_variants=mode != "daemon")
            reports.append(getattr(t, mode)(args.kills))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    for r in reports:
        print(r.line())
        for f in r.failures:
            print("  " + f.replace("\n", "\n  "))
    if args.json:
        print(json.dumps([r.__dict__ for r in reports]))
    return 0 if all(r.passed == r.kills and not r.failures for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
