"""validate: the article model as it appears in the real feeds."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.parse import parse, read
from pipeline.records import FileFacts, Parsed, Rejection
from pipeline.validate import Article, validate

from .conftest import article_text


def run(text: str):
    parsed = parse(FileFacts("/x.md", 0, 0), text.encode())
    assert isinstance(parsed, Parsed), parsed
    return validate(parsed)


def test_every_corpus_file_is_valid(corpus_files):
    for path in corpus_files:
        file_facts, data = read(str(path), 5_000_000)
        got = validate(parse(file_facts, data))
        assert isinstance(got, Article), (path, getattr(got, "reason", None))


def test_corpus_variants(corpus_files):
    """Fields that vary by era are optional; relative logo URLs are kept as they are."""
    articles = [validate(parse(*read(str(p), 5_000_000))) for p in corpus_files]
    assert any(a.originalUrl for a in articles) and any(not a.originalUrl for a in articles)
    assert any(a.quality is None for a in articles)
    assert any(a.heat is not None and a.heat < 0 for a in articles)
    logos = [i.url for a in articles if a.provider for i in a.provider.images]
    assert any(u.startswith("/assets/images/") for u in logos)
    assert all(a.publishedDateTime.tzinfo is not None for a in articles)


def test_naive_time_is_utc():
    got = run(article_text(published="2020-04-22 10:09:00"))
    assert got.publishedDateTime == datetime(2020, 4, 22, 10, 9, tzinfo=UTC)


def test_offset_time_is_converted_to_utc():
    got = run(article_text(published="2020-04-22T12:09:00+02:00"))
    assert got.publishedDateTime == datetime(2020, 4, 22, 10, 9, tzinfo=UTC)


def test_unknown_fields_are_kept():
    got = run(article_text(extra="sentiment: 0.7\nauthor: Jane\n"))
    assert got.model_extra == {"sentiment": 0.7, "author": "Jane"}


def test_every_failing_field_is_listed_with_its_line():
    text = article_text(url="javascript:alert(1)", extra="quality2: 1\n").replace(
        "quality: 40", "quality: high"
    )
    got = run(text)
    assert isinstance(got, Rejection)
    fields = {d["field"]: d for d in got.details}
    assert set(fields) == {"webUrl", "quality"}
    assert fields["quality"]["line"] == 8
    assert fields["webUrl"]["line"] == 6
    assert "quality (line 8)" in got.reason and "webUrl (line 6)" in got.reason


def test_nested_field_line():
    got = run(article_text().replace("width: 800", "width: wide"))
    assert isinstance(got, Rejection)
    assert got.details[0]["field"] == "images.0.width"
    assert got.details[0]["line"] == 22


def test_missing_title_and_url():
    text = "---\ncategory: news\nexcerpt: hi\n---\n"
    got = run(text)
    assert isinstance(got, Rejection)
    assert {d["field"] for d in got.details} == {"title", "webUrl"}


def test_impossible_date():
    got = run(article_text(published="2020-02-31T10:00:00Z"))
    assert isinstance(got, Rejection)
    assert got.details[0]["field"] == "publishedDateTime"


def test_url_with_credentials_is_refused():
    got = run(article_text(url="https://user:pw@example.com/a"))
    assert isinstance(got, Rejection)
    assert "credentials" in got.reason


def test_secured_is_never_echoed():
    got = run(article_text().replace('secured: "SECRET-TOKEN-abc123"', "secured: [1, 2]"))
    assert isinstance(got, Rejection)
    assert "<hidden>" == got.details[0]["input"]
