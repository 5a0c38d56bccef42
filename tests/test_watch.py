"""The daemon, driven for real: a running `pipeline watch` (in a thread, or a subprocess where
signals matter), a real watcher, real files, real SQLite. Every test waits on the database with
a generous timeout, never on a fixed sleep."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline import logs
from pipeline import watch as watch_mod
from pipeline.config import load_settings
from pipeline.watch import AlreadyRunning, Daemon, prepare_process

from .conftest import article_text, query, scalar, wait_for, write

TIMEOUT = 60.0


@pytest.fixture(autouse=True, scope="module")
def _daemon_process():
    prepare_process()  # what `pipeline watch` does in its main thread
    yield
    signal.signal(signal.SIGIO, signal.SIG_DFL)


def url(name: str) -> str:
    return f"https://example.com/news/{name}"


def art(name: str, title: str | None = None) -> str:
    return article_text(title=title or f"Story {name}", url=url(name))


def article_count(db) -> int:
    return scalar(db, "select count(*) from articles")


def source(db, path) -> tuple | None:
    rows = query(db, "select status, article_id, sha256 from sources where path = ?", (str(path),))
    return rows[0] if rows else None


def ingested(db, path) -> bool:
    row = source(db, path)
    return row is not None and row[0] == "ingested"


@pytest.fixture
def watch_settings(db_path, tmp_path):
    def make(**watch):
        return load_settings(None, db=str(db_path), log_file=str(tmp_path / "log.jsonl"),
                             workers=1, watch=watch or None)
    return make


@pytest.fixture
def start(inbox, watch_settings):
    """Start a daemon in a thread on the inbox; stopped (and checked) at the end of the test."""
    running: list[tuple[Daemon, threading.Thread, dict]] = []

    def _start(roots=None, polling=None, **watch) -> Daemon:
        settings = watch_settings(**watch)
        # what the CLI does; the file gets every stage of every file
        logs.configure(level="warning", fmt="json", file=settings.log_file, file_level="debug")
        daemon = Daemon(settings, [str(r) for r in roots or [inbox]], polling=polling)
        out: dict = {}
        thread = threading.Thread(target=lambda: out.update(daemon.run()), daemon=True)
        thread.start()
        assert daemon.ready.wait(TIMEOUT), "daemon did not start"
        running.append((daemon, thread, out))
        return daemon

    yield _start
    for daemon, thread, _ in running:
        daemon.stop()
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "daemon did not stop"


# -- files appearing ---------------------------------------------------------------------------


def test_new_file(start, inbox, db_path):
    start()
    path = write(inbox / "a.md", art("a"))
    wait_for(lambda: ingested(db_path, path), what="the new file")
    assert query(db_path, "select title, version, deleted_at from articles") == [
        ("Story a", 1, None)]


def test_checkpoints_run_in_the_background(start, inbox, db_path):
    """The daemon's commits never copy the WAL into the database themselves (that made one
    commit in ~100 slow); a thread does it, so the database file fills while the daemon runs."""
    start()
    paths = [write(inbox / f"cp{i}.md", art(f"cp{i}")) for i in range(20)]
    wait_for(lambda: all(ingested(db_path, p) for p in paths), what="the files")
    # without a checkpoint, everything since the database was created is still in the WAL
    wait_for(lambda: os.path.getsize(db_path) > 200_000, what="a checkpoint")


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_file_written_in_chunks_is_ingested_once(start, inbox, db_path, tmp_path, polling):
    start(polling=polling, poll_interval_s=0.1)
    text = art("chunked").encode()
    path = inbox / "chunked.md"
    step = len(text) // 10 + 1
    with open(path, "wb") as fh:
        for i in range(0, len(text), step):
            fh.write(text[i:i + step])
            fh.flush()
            time.sleep(0.05)  # the slow writer under test, not synchronisation
    wait_for(lambda: ingested(db_path, path), what="the chunked file")
    assert source(db_path, path)[2] == hashlib.sha256(text).hexdigest()
    assert scalar(db_path, "select count(*) from rejects") == 0
    assert scalar(db_path, "select count(*) from article_versions") == 1
    # the store event is logged just after the commit
    stores = wait_for(lambda: [e for e in _log(tmp_path)
                               if e["event"] == "store" and e["path"] == str(path)])
    assert len(stores) == 1


def test_write_to_temp_then_rename(start, inbox, db_path):
    start()
    tmp = write(inbox / "b.md.tmp", art("b"))
    os.rename(tmp, inbox / "b.md")
    wait_for(lambda: ingested(db_path, inbox / "b.md"), what="the renamed file")
    assert [r[0] for r in query(db_path, "select path from sources")] == [str(inbox / "b.md")]
    assert scalar(db_path, "select count(*) from rejects") == 0


def test_ignored_names_never_reach_the_database(start, inbox, db_path):
    start()
    for name in [".a.md.swp", "b.md~", "c.md.tmp", "4913", "d.md.part", "e.md.crdownload",
                 ".hidden.md", ".git/f.md", "notes.txt"]:
        write(inbox / name, art(name))
    path = write(inbox / "real.md", art("real"))
    wait_for(lambda: ingested(db_path, path), what="the real file")
    assert [r[0] for r in query(db_path, "select path from sources")] == [str(path)]


def test_burst_of_2000_files(start, inbox, db_path):
    start()
    for i in range(2000):
        write(inbox / f"burst/{i % 10}/{i:05d}.md", art(f"burst-{i}"))
    wait_for(lambda: scalar(db_path, "select count(*) from sources where status='ingested'")
             == 2000, what="2000 files")
    assert article_count(db_path) == 2000
    assert scalar(db_path, "select count(*) from article_versions") == 2000
    assert scalar(db_path, "select count(*) from rejects") == 0


def test_new_subfolder_and_folder_moved_in(start, inbox, db_path, tmp_path):
    start()
    deep = inbox / "x" / "y" / "z"
    deep.mkdir(parents=True)
    made = [write(deep / f"{i}.md", art(f"deep-{i}")) for i in range(5)]
    outside = tmp_path / "outside" / "folder"
    for i in range(5):
        write(outside / "sub" / f"{i}.md", art(f"moved-in-{i}"))
    os.rename(outside, inbox / "folder")
    moved = [inbox / "folder" / "sub" / f"{i}.md" for i in range(5)]
    wait_for(lambda: all(ingested(db_path, p) for p in made + moved), what="folder files")
    assert article_count(db_path) == 10


# -- files changing, moving, disappearing --------------------------------------------------------


def test_edit_makes_a_new_version(start, inbox, db_path):
    start()
    path = write(inbox / "e.md", art("e", title="First"))
    wait_for(lambda: ingested(db_path, path))
    write(path, art("e", title="Second"))
    wait_for(lambda: scalar(db_path, "select version from articles") == 2, what="version 2")
    assert scalar(db_path, "select title from articles") == "Second"
    changed = scalar(db_path, "select changed_fields from article_versions where version = 2")
    assert "title" in json.loads(changed)


def test_rename_inside_the_tree_keeps_the_article(start, inbox, db_path):
    start()
    old = write(inbox / "r.md", art("r"))
    wait_for(lambda: ingested(db_path, old))
    (inbox / "sub").mkdir()
    new = inbox / "sub" / "renamed.md"
    os.rename(old, new)
    # (a watcher may first report the file in the new folder as created, then the move)
    wait_for(lambda: ingested(db_path, new) and source(db_path, old) is None, what="the move")
    assert query(db_path, "select version, deleted_at from articles") == [(1, None)]
    assert scalar(db_path, "select count(*) from article_versions") == 1
    # a whole folder renamed: every source moves along, still no new version
    os.rename(inbox / "sub", inbox / "sub2")
    wait_for(lambda: ingested(db_path, inbox / "sub2" / "renamed.md")
             and scalar(db_path, "select count(*) from sources") == 1, what="the folder move")
    assert scalar(db_path, "select count(*) from article_versions") == 1


def test_move_seen_as_delete_plus_create_keeps_one_source(start, inbox, db_path):
    """mv across file systems is a copy then a delete; so is a move into a folder whose watch
    is not set yet. The same bytes arriving elsewhere just before is a move, not a deletion."""
    start()
    old = write(inbox / "x.md", art("x"))
    wait_for(lambda: ingested(db_path, old))
    new = write(inbox / "y.md", old.read_bytes())
    wait_for(lambda: ingested(db_path, new))
    old.unlink()
    wait_for(lambda: source(db_path, old) is None, what="the old path to go")
    assert query(db_path, "select version, deleted_at from articles") == [(1, None)]
    assert [r[0] for r in query(db_path, "select path from sources")] == [str(new)]


def test_move_over_another_file(start, inbox, db_path):
    start()
    a = write(inbox / "a.md", art("a"))
    b = write(inbox / "b.md", art("b"))
    wait_for(lambda: ingested(db_path, a) and ingested(db_path, b))
    os.replace(a, b)
    wait_for(lambda: source(db_path, a) is None, what="a.md's move")
    aid = scalar(db_path, "select id from articles where title = 'Story a'")
    assert source(db_path, b)[:2] == ("ingested", aid)
    assert scalar(db_path, "select deleted_at from articles where title = 'Story b'") is not None
    assert scalar(db_path, "select deleted_at from articles where title = 'Story a'") is None


def test_move_in_from_outside_and_out_to_outside(start, inbox, db_path, tmp_path):
    start()
    outside = tmp_path / "outside"
    src = write(outside / "m.md", art("m"))
    inside = inbox / "m.md"
    os.rename(src, inside)
    wait_for(lambda: ingested(db_path, inside), what="the moved-in file")
    os.rename(inside, outside / "m.md")
    wait_for(lambda: source(db_path, inside)[0] == "deleted", what="the moved-out file")
    assert scalar(db_path, "select deleted_at from articles") is not None


def test_delete_tombstones_and_recreate_revives(start, inbox, db_path):
    start()
    path = write(inbox / "d.md", art("d"))
    wait_for(lambda: ingested(db_path, path))
    path.unlink()
    wait_for(lambda: scalar(db_path, "select deleted_at from articles") is not None,
             what="the tombstone")
    assert source(db_path, path)[0] == "deleted"
    assert article_count(db_path) == 1  # nothing is removed
    write(path, art("d"))
    wait_for(lambda: ingested(db_path, path), what="the revival")
    assert query(db_path, "select version, deleted_at from articles") == [(1, None)]


def test_file_gone_before_it_is_read_is_no_rejection(start, inbox, db_path):
    start()
    for i in range(30):
        write(inbox / f"flash{i}.md", art(f"flash-{i}")).unlink()
    path = write(inbox / "after.md", art("after"))
    wait_for(lambda: ingested(db_path, path), what="the next good file")
    wait_for(lambda: scalar(db_path, "select count(*) from sources where status != 'deleted' "
                                     "and path like '%flash%'") == 0, what="flashes settled")
    assert scalar(db_path, "select count(*) from rejects") == 0


# -- operating it -------------------------------------------------------------------------------


def test_catches_up_on_changes_made_while_stopped(start, inbox, db_path):
    daemon = start()
    a, b, c = (write(inbox / f"{n}.md", art(n)) for n in "abc")
    wait_for(lambda: all(ingested(db_path, p) for p in (a, b, c)))
    daemon.stop()
    wait_for(lambda: scalar(db_path, "select status from ingest_runs order by id desc limit 1")
             == "stopped", what="the first run to end")
    write(a, art("a", title="Edited while down"))
    os.utime(a, ns=(1, 1))
    b.unlink()
    os.rename(c, inbox / "c2.md")
    d = write(inbox / "d.md", art("d"))
    start()
    wait_for(lambda: ingested(db_path, d), what="catch-up")
    assert scalar(db_path, "select version from articles where canonical_url = ?",
                  (url("a"),)) == 2
    assert source(db_path, b)[0] == "deleted"
    assert scalar(db_path, "select deleted_at from articles where canonical_url = ?",
                  (url("b"),)) is not None
    assert ingested(db_path, inbox / "c2.md")
    assert query(db_path, "select version, deleted_at from articles where canonical_url = ?",
                 (url("c"),)) == [(1, None)]
    counts = query(db_path, "select kind, status, new, updated, deleted from ingest_runs "
                            "order by id")
    assert counts[0] == ("watch", "stopped", 3, 0, 0)


def test_heartbeat_and_status(start, inbox, db_path, runner, tmp_path):
    from pipeline.cli import main

    daemon = start()
    # moved in whole: one event each. Written in place, a file read at once may be read again
    # on its late close event (a write in the same clock tick as the read would not change its
    # stat), which the heartbeat rightly counts as processed twice.
    for name, text in [("bad.md", "no front matter here\n"), ("s.md", art("s"))]:
        os.replace(write(tmp_path / name, text), inbox / name)
    path = inbox / "s.md"
    wait_for(lambda: ingested(db_path, path))
    wait_for(lambda: scalar(db_path, "select files_processed from daemon_heartbeat") == 2,
             what="the heartbeat")
    result = runner.invoke(main, ["status", "--db", str(db_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["daemon"]["state"] == "alive"
    assert report["daemon"]["pid"] == os.getpid()
    assert report["daemon"]["rejects"] == 1
    assert report["totals"]["articles"] == 1 and report["totals"]["rejects"] == 1
    text = runner.invoke(main, ["status", "--db", str(db_path)]).output
    assert "daemon: alive" in text and "1 articles" in text
    daemon.stop()
    wait_for(lambda: scalar(db_path, "select stopped_at from daemon_heartbeat"), what="stop")
    wait_for(lambda: runner.invoke(main, ["status", "--db", str(db_path)]).exit_code == 1)
    assert "not running" in runner.invoke(main, ["status", "--db", str(db_path)]).output


def test_second_daemon_is_refused(start, inbox, db_path, watch_settings):
    start()
    with pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
        Daemon(watch_settings(), [str(inbox)]).run()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "watch", str(inbox), "--db", str(db_path)],
        capture_output=True, text=True, timeout=TIMEOUT, env=_env(db_path),
    )
    assert proc.returncode == 1
    assert f"pid {os.getpid()}" in proc.stderr


def test_falls_back_to_polling_when_inotify_cannot_be_used(start, inbox, db_path, monkeypatch):
    class NoInotify(watch_mod.Observer):  # the real class, failing as at the watch limit
        def start(self):
            raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(watch_mod, "Observer", NoInotify)
    daemon = start(poll_interval_s=0.1)
    assert daemon.observer_kind == "polling"
    path = write(inbox / "p.md", art("p"))
    wait_for(lambda: ingested(db_path, path), what="a file seen by polling")


def test_sigterm_in_the_middle_of_a_burst(inbox, db_path, tmp_path):
    n = 1500
    proc = _spawn(inbox, db_path)
    try:
        wait_for(lambda: scalar(db_path, "select last_reconcile_at from daemon_heartbeat "
                                         "where pid = ?", (proc.pid,)), what="daemon start")
        for i in range(n):
            write(inbox / f"{i % 7}" / f"{i:05d}.md", art(f"term-{i}"))
            if i == n // 3:
                wait_for(lambda: article_count(db_path) > 0, what="the first commits")
                proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
    finally:
        proc.kill() if proc.poll() is None else None
    run = query(db_path, "select kind, status, new from ingest_runs")
    assert run[0][:2] == ("watch", "stopped") and 0 < run[0][2] < n
    proc = _spawn(inbox, db_path)
    try:
        wait_for(lambda: scalar(db_path, "select count(*) from sources") == n, what="all files")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
    finally:
        proc.kill() if proc.poll() is None else None
    assert scalar(db_path, "select count(*) from sources where status = 'ingested'") == n
    assert article_count(db_path) == n
    assert scalar(db_path, "select count(*) from article_versions") == n
    assert scalar(db_path, "select max(version) from articles") == 1
    assert scalar(db_path, "select count(*) from rejects") == 0
    assert scalar(db_path, "select sum(new) from ingest_runs") == n


def _env(db_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    env["PIPELINE_LOG_FILE"] = str(db_path.parent / "daemon.jsonl")
    env["PIPELINE_WORKERS"] = "2"
    return env


def _spawn(inbox: Path, db_path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "watch", str(inbox), "--db", str(db_path),
         "--json-logs", "--log-level", "warning"],
        env=_env(db_path), stdout=subprocess.DEVNULL,
    )


def _log(tmp_path: Path) -> list[dict]:
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]
