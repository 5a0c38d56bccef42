"""Crashes, damage, locks and a full disk, driven for real: `pipeline` subprocesses killed with
SIGKILL, database files truncated or overwritten, another connection holding the write lock, a
tiny tmpfs. The long version of the crash torture is tests/benchmarks/torture.py."""

from __future__ import annotations

import functools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline import logs
from pipeline.config import load_settings
from pipeline.ingest import backfill
from pipeline.schema import connect, migrate
from pipeline.watch import Daemon

from .benchmarks import torture
from . import conftest
from .conftest import article_text, query, scalar, write

TIMEOUT = 120.0


wait_for = functools.partial(conftest.wait_for, timeout=TIMEOUT, interval=0.05)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    env["PIPELINE_LOG_FILE"] = str(cwd / "log.jsonl")
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


# -- crash torture (small) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def torment(tmp_path_factory):
    """A generated corpus (~150 files with duplicates, clusters and three rejects) and its
    clean reference."""
    work = tmp_path_factory.mktemp("torture")
    t = torture.Torture(work, count=150, seed=8, log=lambda line: print(line))
    t.clean()
    return t


@pytest.mark.slow
def test_backfill_killed_anywhere_ends_as_a_clean_run(torment):
    report = torment.backfill(kills=3)
    assert report.kills == 3 and report.passed == 3, "\n".join(report.failures)
    assert not report.failures


@pytest.mark.slow
def test_daemon_killed_during_a_burst_ends_as_a_clean_run(tmp_path):
    torment = torture.Torture(tmp_path, count=150, seed=8, url_variants=False)
    report = torment.daemon(kills=2)
    assert report.passed == report.kills == 2, "\n".join(report.failures)
    assert not report.failures


@pytest.mark.slow
def test_killed_migration_leaves_the_old_or_the_new_schema(torment):
    report = torment.migrate(kills=2)
    assert report.passed == report.kills == 2, "\n".join(report.failures)
    assert not report.failures


def test_migration_is_one_transaction(tmp_path, torment):
    """Interrupt migrate() after every few hundred SQLite steps: the schema is always either
    wholly the old one or wholly the new one, never in between."""
    old = tmp_path / "old.db"
    torture.make_old_schema(torment.work / "clean" / "a.db", old)
    before = torture.schema_of(old)
    outcomes = set()
    for steps in (50, 400, 2_000, 10_000, 50_000, 200_000, 10**9):
        db_file = tmp_path / f"m{steps}.db"
        shutil.copy(old, db_file)
        db = connect(str(db_file))
        db.conn.set_progress_handler(lambda: 1, steps)  # non-zero: abort the statement
        try:
            migrate(db)
            outcomes.add("migrated")
        except sqlite3.OperationalError as exc:
            assert "interrupted" in str(exc)
            outcomes.add("interrupted")
        finally:
            db.conn.close()
        after = torture.schema_of(db_file)
        if after != before:
            fresh = connect(str(db_file))
            migrate(fresh)  # a complete migration changes nothing more
            fresh.conn.close()
            assert torture.schema_of(db_file) == after, f"half-migrated after {steps} steps"
    assert outcomes == {"migrated", "interrupted"}


def test_migration_fills_a_new_full_text_index(tmp_path, torment):
    old = tmp_path / "old.db"
    torture.make_old_schema(torment.work / "clean" / "a.db", old)
    db = connect(str(old))
    migrate(db)
    db.conn.close()
    assert torture.canonical_dump(old)["_fts"] == "ok"
    assert scalar(old, "select count(*) from articles_fts where articles_fts match 'the'") > 0


# -- a damaged database -------------------------------------------------------------------------


@pytest.fixture
def filled(tmp_path, inbox):
    for i in range(12):
        write(inbox / f"a{i}.md", article_text(title=f"Story number {i}",
                                               url=f"https://example.com/news/{i}"))
    write(inbox / "bad.md", "---\ntitle: [unclosed\n---\n")
    db = tmp_path / "articles.db"
    result = cli("backfill", str(inbox), "--db", str(db), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return db


@pytest.mark.parametrize("damage", ["truncated", "garbage", "zeroed pages"])
def test_damaged_database_gives_a_clear_error_and_doctor_rebuilds_it(tmp_path, inbox, filled,
                                                                     damage):
    reference = torture.canonical_dump(filled, inbox)
    size = filled.stat().st_size
    if damage == "truncated":
        os.truncate(filled, size // 3)
    elif damage == "garbage":
        filled.write_bytes(b"this is not a database at all\n" * 200)
    else:
        with open(filled, "r+b") as fh:
            fh.seek(4096)
            fh.write(b"\0" * (size - 8192))
    for args in (["backfill", str(inbox)], ["status"], ["reprocess"], ["doctor"]):
        result = cli(*args, "--db", str(filled), cwd=tmp_path)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert "pipeline doctor" in result.stderr + result.stdout, (args, result.stderr)
    result = cli("doctor", "--db", str(filled), "--repair", "--resync", str(inbox), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "moved the damaged file to" in result.stdout
    assert list(tmp_path.glob("articles.db.damaged-*")), "the damaged file is kept aside"
    after = torture.canonical_dump(filled, inbox)
    assert torture.unhealthy(after, "repaired") == []
    assert after["articles"] == reference["articles"]
    assert after["sources"] == reference["sources"]
    assert after["clusters"] == reference["clusters"]
    assert cli("doctor", "--db", str(filled), cwd=tmp_path).returncode == 0


def test_wal_left_behind_is_replayed(tmp_path, inbox, filled):
    """A process that dies with committed transactions still in the WAL loses nothing."""
    code = (
        "import sqlite3, os, sys\n"
        f"c = sqlite3.connect({str(filled)!r}, isolation_level=None)\n"
        "c.execute('PRAGMA wal_autocheckpoint = 0')\n"
        "c.execute(\"UPDATE articles SET title = 'changed in the WAL' WHERE id = (SELECT min(id) FROM articles)\")\n"
        "os._exit(0)\n"  # no close, no checkpoint: the change is only in the -wal file
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert Path(f"{filled}-wal").stat().st_size > 0
    result = cli("doctor", "--db", str(filled), cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "write-ahead log" in result.stdout
    assert scalar(filled, "select count(*) from articles where title = 'changed in the WAL'") == 1


def test_doctor_repairs_the_full_text_index_and_clusters(tmp_path, torment):
    db = tmp_path / "a.db"
    shutil.copy(torment.work / "clean" / "a.db", db)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO articles_fts (articles_fts) VALUES ('delete-all')")
    conn.execute("UPDATE clusters SET size = size + 1")
    conn.commit()
    conn.close()
    result = cli("doctor", "--db", str(db), cwd=tmp_path)
    assert result.returncode == 1
    assert "BAD full-text index" in result.stdout and "BAD clusters" in result.stdout
    result = cli("doctor", "--db", str(db), "--repair", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rebuilt the full-text index" in result.stdout
    assert torture.diff(torment.clean(), torture.canonical_dump(db, torment.corpus)) == []


# -- a locked database --------------------------------------------------------------------------


@pytest.fixture
def log_file(tmp_path) -> Path:
    """What the CLI does: every event of this process goes to a JSON-lines file."""
    path = tmp_path / "log.jsonl"
    logs.configure(level="error", fmt="json", file=path, file_level="debug")
    return path


def hold_lock(db: Path, seconds: float) -> threading.Thread:
    """Another writer: takes the write lock and keeps it for ``seconds``."""
    held = threading.Event()

    def run() -> None:
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)  # the other writer under test, not synchronisation
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert held.wait(10)
    return thread


def small_articles(inbox: Path, n: int, prefix: str) -> list[Path]:
    return [write(inbox / f"{prefix}{i}.md", article_text(
        title=f"{prefix} story {i}", url=f"https://example.com/{prefix}/{i}")) for i in range(n)]


def test_backfill_waits_out_a_locked_database(tmp_path, inbox, db_path, log_file):
    settings = load_settings(None, db=str(db_path), log_file=str(log_file),
                             workers=1, busy_timeout_ms=100, batch_size=5)
    small_articles(inbox, 3, "first")
    backfill(settings, [str(inbox)])
    files = small_articles(inbox, 20, "second")
    holder = hold_lock(db_path, 2.0)  # 20x the busy timeout
    summary = backfill(settings, [str(inbox)])
    holder.join()
    assert summary["new"] == 20
    assert scalar(db_path, "select count(*) from sources where status = 'ingested'") == 23
    assert {p for (p,) in query(db_path, "select path from sources")} >= {str(f) for f in files}
    assert "db.locked" in {e["event"] for e in map(json.loads, log_file.read_text().splitlines())}


def test_daemon_waits_out_a_locked_database(tmp_path, inbox, db_path, log_file):
    settings = load_settings(None, db=str(db_path), log_file=str(log_file),
                             workers=1, busy_timeout_ms=100)
    daemon = Daemon(settings, [str(inbox)])
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        assert daemon.ready.wait(TIMEOUT)
        holder = hold_lock(db_path, 2.0)
        files = small_articles(inbox, 15, "locked")
        holder.join()
        wait_for(lambda: scalar(db_path, "select count(*) from sources where status = "
                                         "'ingested'") == 15, what="every file in")
    finally:
        daemon.stop()
        thread.join(TIMEOUT)
    assert {p for (p,) in query(db_path, "select path from sources")} == {str(f) for f in files}
    assert scalar(db_path, "select count(*) from article_versions") == 15


# -- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (needs root; skipped elsewhere)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def grow(mnt: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)


def big_articles(inbox: Path, n: int) -> list[Path]:
    filler = "Words that take some room in the database and its index. " * 60
    return [write(inbox / f"big{i:03d}.md", article_text(
        title=f"Big story {i}", url=f"https://example.com/big/{i}", excerpt=filler + str(i)))
        for i in range(n)]


def test_backfill_on_a_full_disk_stops_cleanly_and_a_rerun_completes(tmp_path, inbox, tiny_disk):
    big_articles(inbox, 150)
    db = tiny_disk / "articles.db"
    env_dir = tmp_path / "run"
    env_dir.mkdir()
    result = cli("backfill", str(inbox), "--db", str(db), "--workers", "1",
                 "--log-level", "error", cwd=env_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "is full" in result.stderr and "Traceback" not in result.stderr
    # consistent: whatever was committed is whole, and the database is healthy
    dump = torture.canonical_dump(db, inbox) if db.exists() else None
    if dump is not None:
        assert torture.unhealthy(dump, "after disk full") == []
        assert scalar(db, "select count(*) from sources") == scalar(
            db, "select count(*) from article_versions")
    grow(tiny_disk)
    result = cli("backfill", str(inbox), "--db", str(db), "--workers", "1", cwd=env_dir)
    assert result.returncode == 0, result.stderr
    clean = tmp_path / "clean.db"
    assert cli("backfill", str(inbox), "--db", str(clean), "--workers", "1",
               cwd=env_dir).returncode == 0
    assert torture.diff(torture.canonical_dump(clean, inbox), torture.canonical_dump(db, inbox)) == []


def test_daemon_pauses_on_a_full_disk_and_catches_up(tmp_path, inbox, tiny_disk, log_file):
    db = tiny_disk / "articles.db"
    log = log_file
    settings = load_settings(None, db=str(db), log_file=str(log), workers=1)
    daemon = Daemon(settings, [str(inbox)])
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        assert daemon.ready.wait(TIMEOUT)
        files = big_articles(inbox, 150)
        wait_for(lambda: "watch.paused" in log.read_text(), what="the daemon to pause")
        assert thread.is_alive()
        grow(tiny_disk)
        wait_for(lambda: scalar(db, "select count(*) from sources where status = 'ingested'")
                 == len(files), what="every file in after the disk grew")
    finally:
        daemon.stop()
        thread.join(TIMEOUT)
    assert not thread.is_alive()
    paused = [e for e in map(json.loads, log.read_text().splitlines())
              if e["event"] == "watch.paused"]
    assert paused and all(e["reason"] == "full" for e in paused)
    assert scalar(db, "select count(*) from article_versions") == len(files)
    assert torture.unhealthy(torture.canonical_dump(db, inbox), "after") == []
