"""The daemon's write-ahead log: copied into the database by a thread, never by a commit, and
still reused from its start (bounded on disk) while a reader polls and the writer commits
batch after batch."""

from __future__ import annotations

import os
import sqlite3
import threading

from pipeline.config import Settings
from pipeline.ingest import options_from
from pipeline.prepare import prepare_file
from pipeline.schema import WAL_AUTOCHECKPOINT
from pipeline.store import Store

from .conftest import article_text, write

PAGE = 4096 + 24  # one WAL frame


def prepared(inbox, n: int) -> list:
    options = options_from(Settings())
    return [prepare_file(str(write(inbox / f"w{i}.md", article_text(
        title=f"Story number {i} about {i * 7919 % 1000} things",
        url=f"https://example.com/news/{i}"))), options) for i in range(n)]


def largest_wal(db_path, items, restart_pages: int) -> int:
    """Largest the -wal file gets while ``items`` are committed one per transaction, back to
    back, with another connection reading all the while (as Datasette or a poller would)."""
    store = Store(str(db_path))
    store.checkpoint_in_background(interval_s=0.02)
    store._checkpointer.restart_pages = restart_pages
    stop = threading.Event()

    def poll() -> None:
        reader = sqlite3.connect(db_path)
        while not stop.is_set():
            reader.execute("select count(*) from sources").fetchone()
            stop.wait(0.001)
        reader.close()

    reader = threading.Thread(target=poll)
    reader.start()
    wal, largest = f"{db_path}-wal", 0
    try:
        for item in items:
            store.write_batch([item])
            largest = max(largest, os.path.getsize(wal))
    finally:
        stop.set()
        reader.join()
        store.close()
    return largest


def test_the_log_is_reused_while_the_writer_never_checkpoints(inbox, tmp_path):
    items = prepared(inbox, 200)
    bounded = largest_wal(tmp_path / "a.db", items, restart_pages=100)
    # the same commits, with the log never restarted: what the thread alone lets it grow to
    unbounded = largest_wal(tmp_path / "b.db", items, restart_pages=10**9)
    assert unbounded > 4 * bounded
    assert bounded < 2_000 * PAGE


def test_writer_takes_over_if_the_checkpointer_thread_dies(inbox, db_path):
    items = prepared(inbox, 2)
    store = Store(str(db_path))
    store.checkpoint_in_background(interval_s=0.02)
    pragma = "PRAGMA wal_autocheckpoint"
    assert store.conn.execute(pragma).fetchone()[0] == 0
    store.write_batch([items[0]])
    store._checkpointer.stop()  # as if it had died
    store.write_batch([items[1]])
    assert store.conn.execute(pragma).fetchone()[0] == WAL_AUTOCHECKPOINT
    store.close()
