"""Bulk loads: readers' indexes and the full-text index are rebuilt once at the end, with the
same result as row-by-row maintenance, and a crash in the middle heals on the next start."""

from __future__ import annotations

from pipeline.ingest import backfill
from pipeline.schema import INDEXES, WRITER_INDEXES, begin_bulk, index_name
from pipeline.store import Store

from .conftest import query, scalar


def indexes(db) -> set[str]:
    return {n for (n,) in query(db, "select name from sqlite_master where type='index' "
                                    "and name like 'idx_%'")}


def search(db, words: str) -> list[int]:
    return [r for (r,) in query(db, "select rowid from articles_fts where articles_fts match ? "
                                    "order by rowid", (words,))]


def test_bulk_load_gives_the_same_database(corpus, tmp_path, settings):
    bulk_db, plain_db = tmp_path / "bulk.db", tmp_path / "plain.db"
    backfill(settings.model_copy(update={"db": bulk_db, "bulk_min_files": 10}), [str(corpus)])
    backfill(settings.model_copy(update={"db": plain_db, "bulk_min_files": 0}), [str(corpus)])
    assert indexes(bulk_db) == indexes(plain_db) == {index_name(t, c) for t, c, _ in INDEXES}
    assert search(bulk_db, "facial recognition") == search(plain_db, "facial recognition") != []
    assert scalar(bulk_db, "select count(*) from sqlite_master where type='trigger' "
                           "and name like 'articles_a%'") == 3
    sql = "select id, title, cluster_id, provider_id, language from articles order by id"
    assert query(bulk_db, sql) == query(plain_db, sql)
    # FTS integrity: the index matches its content table exactly
    query(bulk_db, "insert into articles_fts(articles_fts, rank) values('integrity-check', 1)")


def test_crash_during_a_bulk_load_heals_on_the_next_start(corpus, settings, db_path):
    backfill(settings.model_copy(update={"bulk_min_files": 0}), [str(corpus)])
    expected = search(db_path, "facial recognition")
    store = Store(str(db_path))
    begin_bulk(store.db)  # ... and the process dies here
    store.conn.execute("update articles set title = 'Zyzzyva' where id = (select min(id) from "
                       "articles)")  # written while the index was not maintained
    store.close()
    assert len(indexes(db_path)) == len(WRITER_INDEXES)
    Store(str(db_path)).close()  # the next start
    assert indexes(db_path) == {index_name(t, c) for t, c, _ in INDEXES}
    assert search(db_path, "zyzzyva") == [scalar(db_path, "select min(id) from articles")]
    assert len(search(db_path, "facial recognition")) >= len(expected) - 1


def test_aggregates_are_settled_after_a_bulk_load_and_after_a_crash(corpus, tmp_path, settings):
    """Provider and topic counts, names and logos equal row-by-row maintenance's, also when
    the bulk load died before settling them."""
    plain_db, bulk_db = tmp_path / "plain.db", tmp_path / "bulk.db"
    backfill(settings.model_copy(update={"db": plain_db, "bulk_min_files": 0}), [str(corpus)])
    backfill(settings.model_copy(update={"db": bulk_db, "bulk_min_files": 10}), [str(corpus)])
    aggregates = ("select domain, name, articles, mentions, logo_url from providers order by 1",
                  "select slug, name, articles from topics order by 1")
    for sql in aggregates:
        assert query(bulk_db, sql) == query(plain_db, sql)
    store = Store(str(bulk_db))
    begin_bulk(store.db)  # a bulk load that dies before settling anything
    store.conn.execute("update providers set articles = 0, mentions = 0")
    store.conn.execute("update topics set articles = 0")
    store.close()
    Store(str(bulk_db)).close()  # the next start
    for sql in aggregates:
        assert query(bulk_db, sql) == query(plain_db, sql)


def test_aggregates_kept_by_triggers_equal_a_recount(corpus, tmp_path, settings):
    """Outside bulk loads, triggers keep provider and topic counts (and provider names' uses)
    row by row: after edits that move articles between providers, rename them, change their
    topics and related items, and deletes, they equal a recount from scratch."""
    import re

    from .conftest import article_text, copy_corpus, write

    inbox = copy_corpus(corpus, tmp_path / "inbox")
    plain = settings.model_copy(update={"bulk_min_files": 0})
    backfill(plain, [str(inbox)])
    files = sorted(inbox.rglob("*.md"))
    for path in files[:15]:  # the provider's display name changes
        text = path.read_text(encoding="utf-8")
        write(path, re.sub(r"(?m)^(provider:\n  name:) .*$", r"\1 Renamed Outlet", text, count=1))
    for n, path in enumerate(files[15:30]):  # another article, provider, topics, no related
        write(path, article_text(title=f"Replaced {n}", url=f"https://example.com/replaced/{n}"))
    for path in files[30:40]:
        path.unlink()
    backfill(plain, [str(inbox)])
    aggregates = ("select domain, name, articles, mentions, logo_url from providers order by 1",
                  "select slug, name, articles from topics order by 1",
                  "select domain, name, uses from provider_names order by 1, 2")
    kept = [query(settings.db, sql) for sql in aggregates]
    assert scalar(settings.db, "select count(*) from providers where name = 'Renamed Outlet'")
    store = Store(str(settings.db))
    store.refresh_all_counts()
    store.close()
    assert [query(settings.db, sql) for sql in aggregates] == kept
