"""``pipeline reprocess``: enrichment again from the stored documents, through the CLI."""

from __future__ import annotations

import json
import shutil

from pipeline.cli import main

from .conftest import article_text, query, scalar, write

SMARTABLE = "smartable-ai/_news"


def run(runner, *args):
    result = runner.invoke(main, [*args, "--log-level", "warning"])
    assert result.exit_code == 0, result.output
    return result


def reprocess(runner, db, *args) -> dict:
    return json.loads(run(runner, "reprocess", "--db", str(db), "--json", *args).stdout)


def snapshot(db):
    return (query(db, "select article_id, version, snapshot from article_versions order by 1, 2"),
            query(db, "select id, version, updated_at, content_hash from articles order by 1"),
            query(db, "select * from sources order by 1"))


def test_reprocess_after_a_config_change(runner, corpus, tmp_path, db_path):
    inbox = tmp_path / "inbox"
    shutil.copytree(corpus / SMARTABLE, inbox)  # 60 real files, a few seconds
    run(runner, "backfill", str(inbox), "--db", str(db_path), "--workers", "1")
    before = snapshot(db_path)
    keywords = query(db_path, "select id, keywords from articles order by id")

    same = reprocess(runner, db_path)
    assert same["changed"] == 0 and same["unchanged"] == same["articles"] > 50
    assert same["identity_changed"] == 0 and same["invalid"] == 0

    cfg = tmp_path / "new.toml"
    cfg.write_text('[enrich.reading]\nwords_per_minute = 100\n'
                   '[enrich.topics]\naliases = { "AI" = "Artificial Intelligence" }\n'
                   '[enrich.keywords]\nmax_keywords = 2\n')
    # --only: just reading is written, although keywords' options changed too
    got = reprocess(runner, db_path, "--config", str(cfg), "--only", "reading")
    assert got["columns"] == {"reading": {"reading_time_s": got["changed"]}}
    assert got["changed"] == scalar(db_path, "select count(*) from articles where word_count > 0")
    assert query(db_path, "select id, keywords from articles order by id") == keywords
    assert scalar(db_path, "select count(*) from topics where slug = 'artificial-intelligence'") == 0

    # every enricher: topics renamed (articles, children, counts), keywords cut to 2
    got = reprocess(runner, db_path, "--config", str(cfg))
    assert got["columns"]["keywords"]["keywords"] == got["articles"]
    assert got["columns"]["topics"]["topics"] == got["articles"]
    assert "reading" not in got["columns"]  # already done
    assert got["child_tables"]["article_topics"] == got["articles"]
    assert scalar(db_path, "select max(json_array_length(keywords)) from articles") == 2
    assert query(db_path, "select name, articles from topics where slug = 'artificial-intelligence'") \
        == [("Artificial Intelligence", got["articles"])]
    # no new content version, nothing about files or versions touched
    assert snapshot(db_path) == before
    runs = query(db_path, "select kind, status from ingest_runs order by id")
    assert runs[-1] == ("reprocess", "completed")


def test_reprocess_dry_run_writes_nothing(runner, inbox, tmp_path, db_path):
    write(inbox / "a.md", article_text())
    run(runner, "backfill", str(inbox), "--db", str(db_path), "--workers", "1")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[enrich]\nenabled = ["text"]\n')
    rows = query(db_path, "select * from articles")
    got = reprocess(runner, db_path, "--config", str(cfg), "--dry-run")
    assert got["dry_run"] and got["changed"] == 1
    assert "word_count" in got["columns"]["reading"]
    assert query(db_path, "select * from articles") == rows
    text = run(runner, "reprocess", "--db", str(db_path), "--config", str(cfg)).stdout
    assert "changed 1" in text and "reading: " in text
    assert scalar(db_path, "select word_count from articles") is None


def test_identity_change_is_reported_and_kept(runner, inbox, tmp_path, db_path):
    write(inbox / "a.md", article_text(url="https://example.com/a?src=feed"))
    run(runner, "backfill", str(inbox), "--db", str(db_path), "--workers", "1")
    before = query(db_path, "select * from articles")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[dedupe]\ntracking_params = ["src"]\n')
    got = reprocess(runner, db_path, "--config", str(cfg))
    assert got["identity_changed"] == 1 and got["changed"] == 0
    assert got["identity_changes"][0]["canonical_url"] == "https://example.com/a?src=feed"
    assert got["identity_changes"][0]["new_canonical_url"] == "https://example.com/a"
    assert query(db_path, "select * from articles") == before


def test_reprocess_rejects_unknown_enricher_and_missing_db(runner, tmp_path):
    result = runner.invoke(main, ["reprocess", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2
    write(tmp_path / "inbox" / "a.md", article_text())
    db = tmp_path / "a.db"
    run(runner, "backfill", str(tmp_path / "inbox"), "--db", str(db), "--workers", "1")
    result = runner.invoke(main, ["reprocess", "--db", str(db), "--only", "nope"])
    assert result.exit_code == 2 and "unknown enricher(s): nope" in result.output
