"""Browsing with Datasette, through Datasette's own test client on the ingested corpus."""

from __future__ import annotations

import sqlite3
from urllib.parse import urlencode

import pytest
from datasette.app import SETTINGS as DATASETTE_SETTINGS
from datasette.utils.testing import TestClient as DatasetteClient

from pipeline.config import ServeSettings, load_settings
from pipeline.schema import VIEWS, connect, migrate
from pipeline.serve import DATABASE_NAME, load_metadata, make_datasette, metadata_file

from .conftest import ROOT, query, scalar

META = load_metadata(ROOT / "config" / "datasette.yml")
DB_META = META["databases"][DATABASE_NAME]
TABLES = DB_META["tables"]
QUERIES = DB_META["queries"]


@pytest.fixture(scope="module")
def client(browse_db):
    return DatasetteClient(make_datasette(browse_db["settings"]))


def get_json(client, path: str, **params) -> dict:
    sep = "&" if "?" in path else "?"
    response = client.get(f"{path}{sep}{urlencode(params)}" if params else path)
    assert response.status == 200, response.text[:500]
    return response.json


def test_metadata_loads(client):
    data = get_json(client, "/-/metadata.json")
    assert data["title"] == META["title"]
    assert data["databases"][DATABASE_NAME]["queries"].keys() == QUERIES.keys()
    assert [d["name"] for d in get_json(client, "/-/databases.json")] == [DATABASE_NAME]
    page = client.get("/articles/articles")
    assert page.status == 200
    assert TABLES["articles"]["columns"]["canonical_url"].split()[0] in page.text
    assert META["source"] in page.text


def test_every_table_view_and_column_is_described_and_nothing_else(browse_db):
    """Adding a table or column to the schema means describing it in config/datasette.yml."""
    conn = sqlite3.connect(browse_db["db"])
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%_fts_%'")]
    assert set(names) == set(TABLES), "tables in the database vs described in datasette.yml"
    for name in names:
        columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')]
        described = TABLES[name].get("columns", {})
        assert set(columns) == set(described), f"columns of {name} vs their descriptions"
        assert all(isinstance(d, str) and len(d) > 5 for d in described.values())
        assert TABLES[name].get("description"), name
    for name, spec in QUERIES.items():
        assert spec.get("title") and len(spec.get("description", "")) > 30, name


def test_articles_newest_first_with_labels(client, browse_db):
    data = get_json(client, "/articles/articles.json", _shape="objects", _labels="on", _size=20)
    dates = [r["published_at"] for r in data["rows"]]
    assert dates == sorted(dates, reverse=True)
    newest = scalar(browse_db["db"], "select max(published_at) from articles")
    assert dates[0] == newest
    provider = data["rows"][0]["provider_id"]
    name = scalar(browse_db["db"], "select name from providers where domain = ?",
                  (provider["value"],))
    assert provider["label"] == name


def test_default_facets(client, browse_db):
    db = browse_db["db"]
    data = get_json(client, "/articles/articles.json", _size=0)
    facets = data["facet_results"]
    assert set(facets) == {"provider_id", "topics", "language", "category",  # none timed out
                           "published_year", "published_month"}
    languages = {r["value"]: r["count"] for r in facets["language"]["results"]}
    assert languages == dict(query(db, "select language, count(*) from articles "
                                       "where language is not null group by 1"))
    assert languages["en"] > 200
    topics = {r["value"]: r["count"] for r in facets["topics"]["results"]}
    # each article counts once per topic, however often its list repeats it
    assert topics == dict(query(db, "select j.value, count(distinct a.id) from articles a, "
                                    "json_each(a.topics) j group by j.value "
                                    "order by 2 desc, 1 limit 30"))
    assert topics["AI"] == scalar(db, "select count(*) from articles where exists "
                                      "(select 1 from json_each(topics) where value = 'AI')")
    years = {r["value"]: r["count"] for r in facets["published_year"]["results"]}
    assert years == dict(query(db, "select published_year, count(*) from articles "
                                   "group by 1 having published_year is not null"))
    top = facets["provider_id"]["results"][0]
    assert top["count"] == scalar(db, "select max(n) from (select count(*) n from articles "
                                      "group by provider_id)")
    assert top["label"] == scalar(db, "select name from providers where domain = ?",
                                  (top["value"],))
    # clicking a facet value filters the table
    chosen = get_json(client, "/articles/articles.json", _size=0, topics__arraycontains="AI")
    assert chosen["filtered_table_rows_count"] == topics["AI"]


def test_full_text_search(client, browse_db):
    expected = scalar(browse_db["db"], "select count(*) from articles_fts "
                                       "where articles_fts match 'facial'")
    assert expected > 5
    data = get_json(client, "/articles/articles.json", _search="facial", _shape="objects")
    assert data["filtered_table_rows_count"] == expected
    assert all("facial" in (r["title"] + r["excerpt"]).lower() for r in data["rows"])
    # the readable view searches the same index
    view = get_json(client, "/articles/articles_overview.json", _search="facial")
    assert view["filtered_table_rows_count"] == expected
    # punctuation in a search is not FTS syntax
    assert "rows" in get_json(client, "/articles/articles.json", _search='covid-19 "')


def test_markdown_body_is_rendered_and_sanitised(client, browse_db):
    aid = browse_db["edited_id"]
    page = client.get(f"/articles/articles/{aid}")
    assert page.status == 200
    assert "<strong>whole story</strong>" in page.text
    assert '<a href="https://example.com/more"' in page.text
    assert "<script>alert" not in page.text
    assert 'href="javascript:' not in page.text


def canned_params(browse_db) -> dict[str, dict[str, str]]:
    """Parameters a person would type, chosen from the data, for each canned query."""
    db = browse_db["db"]
    month, provider = query(db, "select published_month, provider_id from articles "
                                "group by 1, 2 order by count(*) desc limit 1")[0]
    return {
        "latest_articles": {},
        "search": {"q": "facial recognition", "provider": "", "topic": "ai",
                   "since": "2020-01-01", "until": "2022-12-31"},
        "story_clusters": {"q": "", "min_size": ""},
        "most_syndicated": {},
        "most_files": {},
        "top_providers_by_month": {"month": month, "top": "3"},
        "top_topics_by_month": {"month": "", "top": ""},
        "article_history": {"article": browse_db["edited_url"]},
        "recent_rejections": {"stage": ""},
        "ingest_throughput": {"kind": "backfill"},
        "_provider": provider,
    }


def test_every_canned_query_runs_and_returns_rows(client, browse_db):
    params = canned_params(browse_db)
    assert set(QUERIES) <= set(params), "give test parameters for every canned query"
    for name in QUERIES:
        data = get_json(client, f"/articles/{name}.json", _shape="objects", **params[name])
        assert data["ok"], (name, data.get("error"))
        assert data["rows"], f"canned query {name} returned no rows"
        page = client.get(f"/articles/{name}")
        assert page.status == 200 and QUERIES[name]["title"] in page.text


def test_canned_queries_answer_their_question(client, browse_db):
    db = browse_db["db"]
    params = canned_params(browse_db)

    def rows(name, **kw):
        return get_json(client, f"/articles/{name}.json", _shape="objects", **kw)["rows"]

    latest = rows("latest_articles")
    assert [r["published_at"] for r in latest] == [
        r[0] for r in query(db, "select published_at from articles order by 1 desc limit 100")]
    # filters narrow the search; an empty box ignores its filter
    everything = rows("search", q="", provider="", topic="", since="", until="")
    assert len(everything) == min(200, scalar(db, "select count(*) from articles"))
    found = rows("search", q="facial", provider=params["_provider"], topic="", since="",
                 until="")
    assert all(r["provider"] == scalar(db, "select name from providers where domain = ?",
                                       (params["_provider"],)) for r in found)
    day = rows("search", q="", provider="", topic="AI", since="2020-04-22", until="2020-04-22")
    assert day and all(r["published_at"].startswith("2020-04-22") for r in day)
    assert all("AI" in r["topics"] for r in day)
    assert rows("search", q="covid-19 (", provider="", topic="", since="", until="")
    # the edited article: version 2 changed its title
    history = rows("article_history", article=str(browse_db["edited_id"]))
    title = [r for r in history if r["field"] == "title"]
    assert title == [{**title[0], "version": 2, "before": "An article with a body",
                      "after": "An article with a body, edited"}]
    assert history[-1]["field"] == "(first seen)"
    rejections = rows("recent_rejections", stage="parse")
    assert rejections[0]["path"].endswith("broken.md") and rejections[0]["reason"]
    assert rejections[0]["status_now"] == "rejected"
    in_files = rows("most_files")
    assert in_files[0]["files"] == scalar(db, "select max(n) from (select count(*) n from "
                                              "sources where status = 'ingested' group by "
                                              "article_id)")
    syndicated = rows("most_syndicated")
    assert syndicated[0]["articles"] == scalar(db, "select max(size) from clusters") >= 2
    clusters = rows("story_clusters", q="", min_size="")
    assert len(clusters) == scalar(db, "select count(*) from clusters")
    top_cluster = clusters[0]
    members = query(db, "select title from articles where cluster_id = ? and deleted_at is null",
                    (top_cluster["cluster"],))
    assert top_cluster["size"] == len(members) >= 2
    assert all(title in top_cluster["members"] for (title,) in members)
    word = top_cluster["representative"].split()[0]
    assert rows("story_clusters", q=word, min_size="2")
    top = rows("top_providers_by_month", month=params["top_providers_by_month"]["month"], top="1")
    assert len({r["month"] for r in top}) == 1 and top[0]["rank"] == 1


def test_every_facet_and_sort_has_an_index(browse_db):
    """EXPLAIN QUERY PLAN of the queries Datasette runs for configured facets and sorts."""
    conn = sqlite3.connect(browse_db["db"])

    def plan(sql: str) -> str:
        return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql))

    checked = 0
    for table, spec in TABLES.items():
        for facet in spec.get("facets", []):
            if isinstance(facet, dict):  # array facet, as pipeline.datasette_plugin counts it
                col = facet["array"]
                sql = (f'select j.value, count(distinct r."id") from (select "id", "{col}" from '
                       f'(select * from "{table}")) r, json_each(r."{col}") j group by j.value')
            else:
                col = facet
                sql = (f'select "{col}" as value, count(*) from (select * from "{table}") '
                       f'where "{col}" is not null group by "{col}"')
            assert "USING COVERING INDEX" in plan(sql), (table, col, plan(sql))
            checked += 1
        sorts = {spec.get("sort"), spec.get("sort_desc"), *spec.get("sortable_columns", [])}
        for col in sorts - {None}:
            sql = f'select * from "{table}" order by "{col}" desc limit 51'
            assert "TEMP B-TREE" not in plan(sql), (table, col, plan(sql))
            checked += 1
    assert checked >= 15


def test_our_array_facet_replaces_datasettes(client):
    from datasette.facets import ArrayFacet
    from datasette.plugins import pm

    from pipeline.datasette_plugin import KeyedArrayFacet

    classes = [c for group in pm.hook.register_facet_classes() for c in group]
    assert KeyedArrayFacet in classes and ArrayFacet not in classes


def test_serve_settings_are_datasette_settings():
    names = {s.name for s in DATASETTE_SETTINGS}
    assert set(ServeSettings().datasette_settings()) <= names


def test_metadata_file_falls_back_to_the_project_copy(tmp_path):
    settings = load_settings(None, db=str(tmp_path / "a.db"))
    assert metadata_file(settings) == ROOT / "config" / "datasette.yml"
    settings = load_settings(None, db=str(tmp_path / "a.db"), serve={"metadata": "nope.yml"})
    with pytest.raises(FileNotFoundError, match="serve.metadata"):
        metadata_file(settings)


def test_changed_view_is_replaced(tmp_path, monkeypatch):
    db = connect(str(tmp_path / "v.db"))
    migrate(db)
    name = next(iter(VIEWS))
    monkeypatch.setitem(VIEWS, name, "\nSELECT 1 AS one")
    migrate(db)
    assert db.conn.execute(f'SELECT * FROM "{name}"').fetchall() == [(1,)]
    monkeypatch.undo()
    migrate(db)
    assert "title" in [r[1] for r in db.conn.execute(f'PRAGMA table_info("{name}")')]


def test_stylesheet_is_served(client):
    css = client.get(META["extra_css_urls"][0])
    assert css.status == 200 and "column-descriptions" in css.text
    assert META["extra_css_urls"][0] in client.get("/articles/articles").text
