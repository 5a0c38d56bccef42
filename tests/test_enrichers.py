"""Each enricher on real corpus files (expected values checked by eye) and on small cases."""

from __future__ import annotations

import json

import pytest

from pipeline.config import Settings, load_settings
from pipeline.enrichers import REGISTRY, enrichment_columns, owner_of
from pipeline.enrichers.language import detect
from pipeline.enrichers.topics import normalise
from pipeline.enrichers.urls import amp_origin, registered_domain, resolve
from pipeline.ingest import backfill, options_from
from pipeline.prepare import prepare_file
from pipeline.records import Prepared

from .conftest import article_text, query, scalar, write

NEWS = "everyday-ai/_archive/_news/"
CCPA = NEWS + "2019-12-20-computer-vision-and-the-ccpa-what-you-need-to-know.md"
ANTIBIOTICS = NEWS + "2020-02-20-ai-discovers-new-antibiotics-effective-against-certain-diseases.md"
BOSTON = NEWS + "2020-06-24-boston-becomes-the-biggest-east-coast-city-to-ban-face-recognition.md"
CALL_CENTER = ("smartable-ai/_news/2020-04-22-ai-market-in-call-center-applications-growth-trends-"
               "and-forecast-2020-2025.md")


def prepared(path, settings=None) -> Prepared:
    got = prepare_file(str(path), options_from(settings or Settings()))
    assert isinstance(got, Prepared), got
    assert got.errors == []
    return got


def test_registry_columns_are_unique_and_owned():
    declared = [c for e in REGISTRY for c in e.columns]
    assert len(declared) == len(set(declared))
    assert {"language", "language_confidence", "word_count", "reading_time_s", "keywords",
            "registered_domain", "published_year", "published_month", "excerpt_truncated",
            "published_week", "age_at_ingest_s", "primary_image_aspect"} <= set(enrichment_columns())
    assert owner_of("title") == "text" and owner_of("keywords") == "keywords"


def test_text_on_corpus(corpus):
    ccpa = prepared(corpus / CCPA).article
    assert ccpa["excerpt"].endswith("The National Law Review does a tremendous job of ...")
    assert ccpa["excerpt_truncated"] is True
    call = prepared(corpus / CALL_CENTER).article
    assert call["excerpt"].endswith("over the past few years.") and call["excerpt_truncated"] is False
    boston = prepared(corpus / BOSTON)
    assert "&#038;" in (corpus / BOSTON).read_text()
    assert not any("&#038;" in (r["title"] or "") + (r["excerpt"] or "") for r in boston.related)


def test_text_entities_mojibake_and_truncation_marks(tmp_path):
    path = write(tmp_path / "a.md", article_text(
        title="Amazonâ€™s &lt;b&gt;AI&lt;/b&gt; <i>bet</i>",
        excerpt="Deep&nbsp;learning   at  scale [&hellip;]"))
    row = prepared(path).article
    assert row["title"] == "Amazon’s AI bet"
    assert row["excerpt"] == "Deep learning at scale […]"
    assert row["excerpt_truncated"] is True


def test_urls_amp_cache_and_registered_domain(corpus):
    row = prepared(corpus / ANTIBIOTICS).article
    # cdnAmpWebUrl is https://amp-ft-com.cdn.ampproject.org/c/s/amp.ft.com/content/e5bb4e4e-...
    assert row["cdn_amp_url"].startswith("https://amp-ft-com.cdn.ampproject.org/c/s/")
    assert registered_domain(row["cdn_amp_url"]) == "ft.com"
    assert row["registered_domain"] == "ft.com"
    assert row["amp_url"] == "https://amp.ft.com/content/e5bb4e4e-5332-11ea-8841-482eed0038b1"
    assert amp_origin("https://phys-org.cdn.ampproject.org/c/s/phys.org/news/x.amp") == \
        "https://phys.org/news/x.amp"
    assert amp_origin("https://www.google.com/amp/s/www.bbc.co.uk/news/x.amp") == \
        "https://www.bbc.co.uk/news/x.amp"
    assert registered_domain("https://news.bbc.co.uk/x") == "bbc.co.uk"
    assert amp_origin("https://example.com/c/s/x") is None


def test_urls_amp_url_recovered_from_the_cache_address(tmp_path):
    path = write(tmp_path / "a.md", article_text(extra=(
        'cdnAmpWebUrl: "https://www-example-com.cdn.ampproject.org/c/s/www.example.com/amp/a"\n')))
    assert prepared(path).article["amp_url"] == "https://www.example.com/amp/a"


def test_relative_image_urls_kept_or_resolved(corpus):
    logo = "/assets/images/organizations/medium.com-50x50.jpg"
    kept = prepared(corpus / CCPA)
    assert [i["url"] for i in kept.images if i["kind"] == "provider"] == [logo]
    settings = Settings(enrich={"urls": {"image_base_url": "https://example.org/site/"}})
    got = prepared(corpus / CCPA, settings)
    assert [i["url"] for i in got.images if i["kind"] == "provider"] == [
        "https://example.org/site/assets/images/organizations/medium.com-50x50.jpg"]
    assert got.provider["logo"] == "https://example.org/site/assets/images/organizations/medium.com-50x50.jpg"
    assert resolve("img/a.png", "https://h/site") == "https://h/site/img/a.png"
    assert resolve("//cdn.h/a.png", "") == "https://cdn.h/a.png"


def test_images_primary_and_aspect(corpus):
    ccpa = prepared(corpus / CCPA).article  # one article image, 1200 x 744; the logo is apart
    assert ccpa["primary_image_url"] == "https://miro.medium.com/max/1200/1*YGkB52a5tgp8vGHleh2bAw.png"
    assert (ccpa["primary_image_width"], ccpa["primary_image_height"]) == (1200, 744)
    assert ccpa["primary_image_aspect"] == 1.613
    assert ccpa["image_count"] == 1


def test_images_largest_by_area(tmp_path):
    extra = ('  - url: "https://example.com/img/big.jpg"\n    width: 1600\n    height: 900\n'
             '  - url: "https://example.com/img/tall.jpg"\n    width: 600\n    height: 1200\n')
    text = article_text().replace("images:\n", "images:\n" + extra, 1)
    row = prepared(write(tmp_path / "a.md", text)).article
    assert row["primary_image_url"] == "https://example.com/img/big.jpg"
    assert row["primary_image_aspect"] == 1.778 and row["image_count"] == 3


def test_dates_and_reading(corpus):
    row = prepared(corpus / CALL_CENTER).article  # 2020-04-22T10:09:00Z, a Wednesday
    assert (row["published_year"], row["published_month"], row["published_week"],
            row["published_weekday"], row["published_date"]) == (2020, "2020-04", "2020-W17", 3,
                                                                   "2020-04-22")
    assert row["age_at_ingest_s"] > 5 * 365 * 86400
    # title 10 words ("Applications-Growth" and "2020-2025" are one each), excerpt 34 ("25.8%"
    # is one), body empty
    assert row["word_count"] == 44
    assert row["reading_time_s"] == round(44 * 60 / 230)


def test_language_on_corpus_and_other_languages(corpus):
    row = prepared(corpus / CCPA).article
    assert row["language"] == "en" and row["language_confidence"] > 0.5
    samples = {
        "de": "Die Bundesregierung will künstliche Intelligenz stärker fördern, sagte die Ministerin.",
        "fr": "Le gouvernement veut investir davantage dans l'intelligence artificielle cette année.",
        "es": "El gobierno quiere invertir más en inteligencia artificial durante este año.",
    }
    for code, text in samples.items():
        assert detect(text)[0] == code
    assert detect("2020 — 42 / 17") is None


def test_keywords_on_corpus(corpus):
    boston = prepared(corpus / BOSTON).article
    words = json.loads(boston["keywords"])
    assert 0 < len(words) <= 8
    assert any("face" in w or "facial" in w for w in words[:3]), words
    assert all(w == w.lower() for w in words)


def test_keyphrases_is_opt_in(corpus):
    assert prepared(corpus / BOSTON).article["keyphrases"] is None
    settings = Settings(enrich={"enabled": ["text", "language", "keyphrases"]})
    phrases = json.loads(prepared(corpus / BOSTON, settings).article["keyphrases"])
    assert 0 < len(phrases) <= 8 and any("boston" in p.lower() for p in phrases), phrases


def test_topics_normalised_with_aliases(tmp_path):
    assert normalise(["machine  learning", "ML", "AI", "ai", "A.I.", " "], {"ML": "Machine Learning",
                                                                            "A.I.": "AI"}) == \
        ["Machine Learning", "AI"]
    extra = "  - ml\n  - computer vision\n"
    text = article_text().replace("topics:\n", "topics:\n" + extra, 1)
    got = prepared(write(tmp_path / "a.md", text))
    assert got.topics == ["Machine Learning", "Computer Vision", "AI"]
    assert json.loads(got.article["topics"]) == got.topics


def test_enricher_versions_recorded(corpus):
    versions = json.loads(prepared(corpus / CCPA).article["enriched_with"])
    assert versions == {e.name: e.version for e in REGISTRY if e.default}


@pytest.fixture(scope="module")
def corpus_db(tmp_path_factory):
    from .conftest import CORPUS

    if not CORPUS.is_dir():
        pytest.skip("the real corpus is absent")
    folder = tmp_path_factory.mktemp("enrich")
    db = folder / "a.db"
    settings = load_settings(None, db=str(db), log_file=str(folder / "log.jsonl"), workers=2)
    backfill(settings, [str(CORPUS)])
    return db


def test_corpus_database_enrichment(corpus_db):
    db = corpus_db
    assert scalar(db, "select count(*) from articles where language = 'en'") == \
        scalar(db, "select count(*) from articles")
    # one provider per registered domain; the article's, with its logo
    assert scalar(db, "select count(*) from providers where domain like 'www.%'") == 0
    assert query(db, "select name, logo_url from providers where domain = 'medium.com'") == [
        ("Medium", "/assets/images/organizations/medium.com-50x50.jpg")]
    assert scalar(db, "select count(*) from articles a left join providers p "
                      "on p.domain = a.provider_id where p.domain is null") == 0
    # related items are evidence of providers, without becoming articles
    assert scalar(db, "select count(*) from providers where articles = 0 and mentions > 0") > 0
    assert scalar(db, "select count(*) from articles where registered_domain = 'npr.org'") == 0
    # related links resolved to stored articles
    linked = scalar(db, "select count(*) from related where related_article_id is not null")
    assert linked > 100
    assert scalar(db, "select count(*) from related r join articles a "
                      "on a.id = r.related_article_id") == linked
    # topics table counts
    assert query(db, "select name, articles from topics where slug = 'ai'") == [
        ("AI", scalar(db, "select count(*) from articles"))]


def test_provider_best_name_is_the_most_frequent(inbox, settings, db_path):
    for i, name in enumerate(["Example News", "Example News",
                              "Amazon bans police from using its facial recognition tech"]):
        text = article_text(url=f"https://www.example.com/a{i}").replace(
            "name: Example News", f"name: {name}")
        write(inbox / f"{i}.md", text)
    backfill(settings, [str(inbox)])
    assert query(db_path, "select domain, name, articles from providers") == [
        ("example.com", "Example News", 3)]


def test_a_failing_enricher_costs_only_its_columns(inbox, db_path, tmp_path, runner,
                                                   monkeypatch):
    from pipeline.cli import main
    from pipeline.enrichers import language

    def broken(max_chars):
        raise RuntimeError("model exploded")

    monkeypatch.setattr(language, "_detector", broken)  # in-process: --workers 1
    write(inbox / "a.md", article_text())
    log_file = tmp_path / "log.jsonl"
    result = runner.invoke(main, ["backfill", str(inbox), "--db", str(db_path), "--workers", "1",
                                  "--json"], env={"PIPELINE_LOG_FILE": str(log_file)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["new"] == 1
    row = query(db_path, "select language, language_confidence, word_count, keywords, "
                         "enriched_with from articles")[0]
    assert row[:2] == (None, None) and row[2] > 0 and json.loads(row[3])
    assert "language" not in json.loads(row[4]) and "keywords" in json.loads(row[4])
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    failed = [e for e in events if e.get("outcome") == "enricher failed"]
    assert failed and "language: RuntimeError: model exploded" in failed[0]["error"]
