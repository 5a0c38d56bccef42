"""enrich (first version): clean text, registered domain, word count, year/month."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.enrich import REGISTRY, clean_text, enrichment_columns, registered_domain
from pipeline.ingest import options_from
from pipeline.prepare import prepare_file
from pipeline.records import Prepared

from .conftest import article_text, write


def test_clean_text():
    assert clean_text("AT&amp;T&nbsp;and&#038; <b>bold</b>  text") == "AT&T and& bold text"
    assert clean_text("double &amp;nbsp; escaped") == "double escaped"
    assert clean_text(None) is None


def test_registered_domain_offline():
    assert registered_domain("https://www.bbc.co.uk/news/x") == "bbc.co.uk"
    assert registered_domain("https://abcnews.go.com/Business/x") == "go.com"
    assert registered_domain(None) is None


def test_columns_come_from_the_registry():
    assert {"registered_domain", "word_count", "published_year", "published_month"} <= set(
        enrichment_columns()
    )
    assert len({e.name for e in REGISTRY}) == len(REGISTRY)


def test_prepare_enriches(tmp_path):
    path = write(tmp_path / "a.md", article_text(
        title="Caf&eacute; &amp; AI", excerpt="One&nbsp;two three ...",
        url="https://news.example.co.uk/a?utm_source=feed"))
    got = prepare_file(str(path), options_from(Settings()))
    assert isinstance(got, Prepared)
    row = got.article
    assert row["title"] == "Café & AI"
    assert row["excerpt"] == "One two three ..."
    assert row["canonical_url"] == "https://news.example.co.uk/a"
    assert row["registered_domain"] == "example.co.uk"
    assert row["word_count"] == 5  # Café, AI, One, two, three
    assert (row["published_year"], row["published_month"]) == (2020, "2020-04")
    assert set(got.timings) >= {"parse", "validate", "dedupe", "enrich", "enrich.urls"}


def test_a_corpus_excerpt_with_entities(corpus_files):
    """A real excerpt with &nbsp; / &amp; comes out decoded."""
    options = options_from(Settings())
    seen = 0
    for path in corpus_files:
        raw = path.read_text(encoding="utf-8")
        if "&nbsp;" in raw.split("related:")[0] or "&amp;" in raw.split("related:")[0]:
            got = prepare_file(str(path), options)
            assert "&nbsp;" not in got.article["excerpt"] and "&amp;" not in got.article["title"]
            seen += 1
    assert seen > 0


def test_disabled_enricher_leaves_columns_empty(tmp_path):
    path = write(tmp_path / "a.md", article_text())
    settings = Settings(enrich={"enabled": ["text"]})
    got = prepare_file(str(path), options_from(settings))
    assert got.article.get("word_count") is None
    assert got.article.get("registered_domain") is None
