#!/usr/bin/env python3
"""How fast Datasette's pages, facets, sorts and canned queries are on a large database.

Datasette gives up on a facet after ``facet_time_limit_ms`` and on a facet *suggestion* after
``facet_suggest_time_limit_ms`` (50 ms), so every configured facet and sort must stay well under
those on 100,000 articles. This runs Datasette in-process with ``trace_debug`` on, loads each page
a few times, and reports the best time of every SQL query Datasette ran (count, rows, each facet,
suggestions) and of each whole page.

Make a database first, e.g.::

    python tests/benchmarks/gen_corpus.py /tmp/bench100k --count 100000
    pipeline backfill /tmp/bench100k --db /tmp/bench100k.db
    python tests/benchmarks/datasette_pages.py /tmp/bench100k.db
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
import time
from urllib.parse import urlencode

from datasette.utils.testing import TestClient

from pipeline.config import load_settings
from pipeline.serve import DATABASE_NAME, load_metadata, make_datasette, metadata_file


def label(sql: str) -> str:
    """A short name for one traced query."""
    flat = " ".join(sql.split())
    if m := re.search(r"json_each\((?:\[inner\]|rows_)\.\[?(\w+)", flat):
        return f"facet array {m.group(1)}"
    if m := re.match(r"select (\[?\w+\]?) as value, count\(\*\) as count", flat):
        return f"facet {m.group(1).strip('[]')}"
    if m := re.match(r"select (\[?\w+\]?) as value, count\(\*\) as n from", flat):
        return f"suggest {m.group(1).strip('[]')}"
    if "json_type" in flat:
        return "suggest array " + (re.search(r"json_type\((\[?\w+\]?)\)", flat).group(1))
    if flat.startswith("select date("):
        return "suggest date"
    if flat.startswith("select count(*)"):
        return "count"
    return flat[:70]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    settings = load_settings(None, db=args.db, log_file="")
    meta = load_metadata(metadata_file(settings))
    queries = meta["databases"][DATABASE_NAME]["queries"]
    client = TestClient(make_datasette(settings, trace_debug=True))
    n = sqlite3.connect(args.db).execute("select count(*) from articles").fetchone()[0]
    print(f"{args.db}: {n:,} articles; limits: facet {settings.serve.facet_time_limit_ms} ms, "
          f"suggestion {settings.serve.facet_suggest_time_limit_ms} ms\n")

    month, some_id = sqlite3.connect(args.db).execute(
        "select max(published_month), max(id) from articles").fetchone()
    pages = {
        "articles (default facets)": "/articles/articles",
        "articles, search 'model'": "/articles/articles?_search=model",
        "articles, topic AI": "/articles/articles?topics__arraycontains=AI",
        "articles, sort by heat": "/articles/articles?_sort_desc=heat",
        "articles_overview": "/articles/articles_overview",
        "sources": "/articles/sources",
        "rejects": "/articles/rejects",
    }
    params = {
        "search": {"q": "model", "provider": "", "topic": "ai", "since": "", "until": ""},
        "top_providers_by_month": {"month": month, "top": ""},
        "top_topics_by_month": {"month": month, "top": ""},
        "article_history": {"article": str(some_id)},
    }
    for name in queries:
        qs = {k: "" for k in queries[name].get("params", [])} | params.get(name, {})
        pages[f"canned: {name}"] = f"/articles/{name}?{urlencode(qs)}"

    for title, path in pages.items():
        page_ms: list[float] = []
        traced: dict[str, list[float]] = {}
        for _ in range(args.repeat):
            start = time.perf_counter()
            response = client.get(path)
            page_ms.append((time.perf_counter() - start) * 1000)
            assert response.status == 200, (path, response.status, response.text[:300])
            # the same page as JSON runs the same queries; _trace=1 lists them with timings
            json_path = path.replace("?", ".json?", 1) + "&" if "?" in path else path + ".json?"
            trace = client.get(json_path + "_trace=1").json.get("_trace", {})
            for t in trace.get("traces", []):
                if t.get("database") != DATABASE_NAME or not t.get("sql"):
                    continue
                traced.setdefault(label(t["sql"]), []).append(t["duration_ms"])
        print(f"{title:<44} page {min(page_ms):7.1f} ms")
        slow = sorted(((min(v), k) for k, v in traced.items()), reverse=True)
        for ms, name in slow[:8]:
            print(f"    {ms:7.1f} ms  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
