"""The whole path through the library API: real files, real SQLite."""

from __future__ import annotations

import json
import os

from pipeline.dedupe import canonical_url
from pipeline.ingest import backfill, walk
from pipeline.schema import tables

from .conftest import article_text, copy_corpus, query, scalar, write


def test_walk_finds_articles_and_ignores_the_rest(inbox, settings):
    for name in ["a.md", "sub/b.markdown", "sub/deep/c.md", ".hidden.md", ".git/d.md", "e.md~",
                 "f.md.tmp", "g.md.part", ".h.md.swp", "notes.txt", "4913"]:
        write(inbox / name, "x")
    found = [os.path.relpath(f.path, inbox) for f in walk([str(inbox)], settings)]
    assert found == ["a.md", "sub/b.markdown", "sub/deep/c.md"]


def test_corpus_backfill(corpus, tmp_path, settings, db_path, corpus_files):
    summary = backfill(settings, [str(corpus)])
    assert summary["seen"] == len(corpus_files)
    assert summary["rejected"] == 0
    urls = set()
    for path in corpus_files:
        text = path.read_text(encoding="utf-8-sig").split("\nrelated:")[0]
        fields = dict(
            line.split(": ", 1) for line in text.splitlines()
            if line.startswith(("webUrl: ", "originalUrl: "))
        )
        url = fields.get("originalUrl") or fields["webUrl"]
        urls.add(canonical_url(url.strip('"'), settings.dedupe.tracking_params))
    assert scalar(db_path, "select count(*) from articles") == len(urls)
    assert summary["new"] == len(urls)
    assert summary["new"] + summary["duplicate"] == len(corpus_files)
    assert scalar(db_path, "select count(*) from sources where status='ingested'") == len(corpus_files)
    assert scalar(db_path, "select count(*) from articles_fts where articles_fts match 'facial'") > 5
    # children and lookups
    assert scalar(db_path, "select count(*) from providers") > 50
    assert scalar(db_path, "select count(*) from related") > 500
    assert scalar(db_path, "select count(*) from images where kind='provider'") > 0
    assert scalar(db_path, "select count(*) from topics where slug='ai' and articles > 100") == 1
    # the second run changes nothing
    again = backfill(settings, [str(corpus)])
    assert again["unchanged"] == len(corpus_files)
    assert again["new"] == again["updated"] == again["duplicate"] == 0
    assert scalar(db_path, "select count(*) from article_versions") == scalar(
        db_path, "select sum(version) from articles")
    runs = query(db_path, "select kind, status, seen, new, unchanged from ingest_runs order by id")
    assert runs == [("backfill", "completed", len(corpus_files), len(urls), 0),
                    ("backfill", "completed", len(corpus_files), 0, len(corpus_files))]


def test_related_links_are_backfilled_when_the_target_arrives(inbox, settings, db_path):
    related = (
        "related:\n"
        '  - title: "The other one"\n'
        '    webUrl: "https://example.com/news/other?utm_source=rss"\n'
        "    publishedDateTime: 2020-04-21T08:34:00Z\n"
        "    provider:\n      name: Example\n      domain: example.com\n"
    )
    write(inbox / "a.md", article_text(extra=related))
    backfill(settings, [str(inbox)])
    assert query(db_path, "select related_article_id, canonical_url from related") == [
        (None, "https://example.com/news/other")]
    write(inbox / "b.md", article_text(title="The other one", url="https://example.com/news/other"))
    backfill(settings, [str(inbox)])
    target = scalar(db_path, "select id from articles where title='The other one'")
    assert scalar(db_path, "select related_article_id from related") == target


def test_edit_makes_a_new_version(inbox, settings, db_path):
    path = write(inbox / "a.md", article_text(title="First title"))
    backfill(settings, [str(inbox)])
    write(path, article_text(title="Second title"))
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the file system's resolution
    summary = backfill(settings, [str(inbox)])
    assert summary["updated"] == 1
    assert query(db_path, "select title, version from articles") == [("Second title", 2)]
    versions = query(db_path, "select version, changed_fields from article_versions order by version")
    assert versions[0][0] == 1 and versions[1] == (2, '["images", "title"]')  # the image title is the title
    snap = json.loads(scalar(db_path, "select snapshot from article_versions where version=1"))
    assert snap["title"] == "First title"


def test_touch_without_change_is_no_new_version(inbox, settings, db_path):
    path = write(inbox / "a.md", article_text())
    backfill(settings, [str(inbox)])
    os.utime(path, ns=(1, 1))
    summary = backfill(settings, [str(inbox)])
    assert summary["unchanged"] == 1
    assert scalar(db_path, "select count(*) from article_versions") == 1


def test_only_the_signature_changed_is_no_new_version(inbox, settings, db_path):
    path = write(inbox / "a.md", article_text())
    backfill(settings, [str(inbox)])
    write(path, article_text().replace("SECRET-TOKEN-abc123", "SECRET-TOKEN-xyz"))
    os.utime(path, ns=(1, 1))
    assert backfill(settings, [str(inbox)])["unchanged"] == 1
    assert scalar(db_path, "select max(version) from articles") == 1


def test_same_url_twice_is_one_article_two_sources(inbox, settings, db_path):
    write(inbox / "a.md", article_text(url="https://example.com/news/x"))
    write(inbox / "b.md", article_text(url="https://EXAMPLE.com/news/x/?utm_source=twitter#top"))
    summary = backfill(settings, [str(inbox)])
    assert (summary["new"], summary["duplicate"]) == (1, 1)
    assert scalar(db_path, "select count(*) from articles") == 1
    assert query(db_path, "select count(*), count(distinct article_id) from sources") == [(2, 1)]


def test_bad_files_are_rejected_and_the_rest_goes_through(inbox, settings, db_path):
    write(inbox / "good.md", article_text())
    write(inbox / "nofm.md", "hello\n")
    write(inbox / "badyaml.md", '---\ntitle: "x\n---\n')
    write(inbox / "latin1.md", article_text(title="Caf\xe9").encode("latin-1"))
    write(inbox / "invalid.md", article_text().replace("quality: 40", "quality: high"))
    summary = backfill(settings, [str(inbox)])
    assert (summary["new"], summary["rejected"]) == (1, 4)
    rejects = dict(query(db_path, "select substr(path, length(?) + 2), stage from rejects",
                         (str(inbox),)))
    assert rejects == {"nofm.md": "parse", "badyaml.md": "parse", "latin1.md": "parse",
                       "invalid.md": "validate"}
    details = json.loads(scalar(db_path, "select details from rejects where stage='validate'"))
    assert details[0]["field"] == "quality" and details[0]["line"] == 8
    assert scalar(db_path, "select count(*) from sources where status='rejected'") == 4
    # unchanged rejected files are not rejected again
    assert backfill(settings, [str(inbox)])["unchanged"] == 5
    assert scalar(db_path, "select count(*) from rejects") == 4


def test_rejected_file_fixed_later(inbox, settings, db_path):
    path = write(inbox / "a.md", article_text().replace("quality: 40", "quality: high"))
    backfill(settings, [str(inbox)])
    write(path, article_text())
    os.utime(path, ns=(1, 1))
    assert backfill(settings, [str(inbox)])["new"] == 1
    assert scalar(db_path, "select status from sources") == "ingested"


def test_deleted_file_tombstones_its_article(inbox, settings, db_path):
    path = write(inbox / "a.md", article_text())
    backfill(settings, [str(inbox)])
    path.unlink()
    assert backfill(settings, [str(inbox)])["deleted"] == 1
    assert scalar(db_path, "select status from sources") == "deleted"
    assert scalar(db_path, "select deleted_at is not null from articles") == 1
    write(path, article_text())
    backfill(settings, [str(inbox)])
    assert scalar(db_path, "select deleted_at from articles") is None


def test_force_reprocesses_without_new_versions(corpus, settings, db_path):
    backfill(settings, [str(corpus)])
    versions = scalar(db_path, "select count(*) from article_versions")
    summary = backfill(settings, [str(corpus)], force=True)
    assert summary["unchanged"] == summary["seen"]
    assert scalar(db_path, "select count(*) from article_versions") == versions


def test_dry_run_writes_nothing(inbox, settings, db_path):
    write(inbox / "a.md", article_text())
    summary = backfill(settings, [str(inbox)], dry_run=True)
    assert summary["new"] == 1
    assert not db_path.exists()
    backfill(settings, [str(inbox)])
    write(inbox / "b.md", article_text(url="https://example.com/b"))
    assert backfill(settings, [str(inbox)], dry_run=True)["new"] == 1
    assert scalar(db_path, "select count(*) from articles") == 1


def test_workers_give_the_same_database(corpus, tmp_path, settings):
    one = tmp_path / "one.db"
    two = tmp_path / "two.db"
    backfill(settings.model_copy(update={"db": one, "workers": 1}), [str(corpus)])
    backfill(settings.model_copy(update={"db": two, "workers": 2, "batch_size": 37}),
             [str(corpus)])
    for table in ("articles", "sources", "related", "images", "article_topics", "topics"):
        cols = [c for c in tables()[table]["columns"]
                if not c.endswith(("_at", "_seen_at")) and c != "age_at_ingest_s"]
        sql = f"select {', '.join(cols)} from {table} order by 1, 2"
        assert query(one, sql) == query(two, sql), table


def test_file_copy_of_corpus_edited_in_place(corpus, tmp_path, settings, db_path):
    tree = copy_corpus(corpus, tmp_path / "tree")
    backfill(settings, [str(tree)])
    victim = sorted(tree.rglob("*.md"))[10]
    victim.write_text(victim.read_text().replace("title: ", "title: UPDATED ", 1))
    os.utime(victim, ns=(1, 1))
    summary = backfill(settings, [str(tree)])
    assert summary["updated"] == 1
    assert scalar(db_path, "select count(*) from articles where title like 'UPDATED %'") == 1
