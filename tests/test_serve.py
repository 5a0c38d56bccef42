"""`pipeline serve` as a real server: pages load while the pipeline writes to the database."""

from __future__ import annotations

import threading
from urllib.parse import quote

from pipeline.config import load_settings
from pipeline.ingest import backfill

from .conftest import article_text, scalar, write
from .servers import fetch, serving

PAGES = [
    "/articles",
    "/articles/articles",
    "/articles/articles?_search=burst",
    "/articles/articles?topics__arraycontains=AI",
    "/articles/articles_overview",
    "/articles/latest_articles",
    "/articles/search?q=burst&provider=&topic=ai&since=&until=",
    "/articles/ingest_throughput?kind=",
    "/articles/articles.json?_shape=objects&_size=5",
]


def burst(inbox, n: int, start: int) -> None:
    for i in range(start, start + n):
        write(inbox / f"burst-{i // 50}" / f"article-{i}.md", article_text(
            title=f"Burst article number {i}", url=f"https://example.com/burst/{i}",
            published=f"2021-0{1 + i % 9}-1{i % 10}T08:00:00Z"))


def test_pages_load_while_the_pipeline_writes(tmp_path, inbox):
    settings = load_settings(None, db=str(tmp_path / "live.db"), log_file=str(tmp_path / "l.jsonl"),
                             workers=1, batch_size=10)
    burst(inbox, 20, 0)
    backfill(settings, [str(inbox)])
    per_round, max_rounds = 20, 60
    rounds: list[int] = []
    failures: list[str] = []
    read_everything = threading.Event()  # every page loaded at least once during the writes
    done = threading.Event()

    def writer() -> None:
        """Backfill bursts of new and edited files until the reader has seen every page."""
        try:
            for r in range(max_rounds):
                if read_everything.is_set() and r >= 2:
                    break
                burst(inbox, per_round, 20 + r * per_round)
                write(inbox / "burst-0" / f"article-{r}.md", article_text(
                    title=f"Burst article number {r}, edited {r}",
                    url=f"https://example.com/burst/{r}"))
                backfill(settings, [str(inbox)])
                rounds.append(r)
        except Exception as exc:  # reported by the main thread
            failures.append(f"writer: {type(exc).__name__}: {exc}")
        finally:
            done.set()

    with serving(settings.db) as base:
        thread = threading.Thread(target=writer)
        thread.start()
        loads = during_writes = 0
        while not done.is_set():
            page = PAGES[loads % len(PAGES)]
            status, body = fetch(base + page)
            if status != 200 or "database is locked" in body:
                failures.append(f"{page}: {status} {body[:300]}")
            loads += 1
            during_writes += not done.is_set()
            if during_writes >= len(PAGES):
                read_everything.set()
        thread.join()
        assert not failures, failures
        assert read_everything.is_set(), f"only {during_writes} pages loaded during the writes"
        total = 20 + len(rounds) * per_round
        assert scalar(settings.db, "select count(*) from articles") == total
        # a reload shows everything the pipeline wrote
        status, body = fetch(base + "/articles/articles.json?_size=0")
        assert status == 200 and f'"filtered_table_rows_count": {total}' in body
        status, body = fetch(base + "/articles/article_history.json?_shape=objects&article="
                             + quote("https://example.com/burst/1"))
        assert status == 200 and "edited 1" in body
