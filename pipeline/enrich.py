"""Stage 4, enrich: small named units in one registry, each filling declared columns.

An enricher is a plain function ``(article, row) -> {column: value}``; ``row`` is the articles row
built so far (enrichers run in registry order, so a later one sees what an earlier one filled).
The schema takes its enrichment columns from this registry, so adding an enricher is one
function plus one ``Enricher`` entry.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from .validate import Article

STAGE = "enrich"

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Enricher:
    name: str
    version: int
    columns: dict[str, str]  # column name -> SQLite type
    fn: Callable[[Article, Row], Row]
    doc: str = ""


_WS = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]{0,200}>")
_WORD = re.compile(r"\w+")


def clean_text(value: str | None) -> str | None:
    """Decode HTML entities (twice: feeds double-escape, ``&amp;nbsp;``), drop tags, fold spaces."""
    if value is None:
        return None
    if "&" in value:
        value = html.unescape(html.unescape(value))
    if "<" in value:
        value = _TAG.sub(" ", value)
    return _WS.sub(" ", value).strip()


def _text(article: Article, row: Row) -> Row:
    return {"title": clean_text(row["title"]), "excerpt": clean_text(row["excerpt"])}


@cache
def _tld_extract() -> Any:
    import tldextract

    # suffix_list_urls=() : only the snapshot bundled in the package, never the network
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def registered_domain(url: str | None) -> str | None:
    if not url:
        return None
    result = _tld_extract()(url)
    domain = getattr(result, "top_domain_under_public_suffix", None)
    if domain is None:
        domain = result.registered_domain
    return domain.lower() or None


def _urls(article: Article, row: Row) -> Row:
    return {"registered_domain": registered_domain(row["canonical_url"])}


def _reading(article: Article, row: Row) -> Row:
    words = sum(len(_WORD.findall(row.get(col) or "")) for col in ("title", "excerpt", "body"))
    return {"word_count": words}


def _dates(article: Article, row: Row) -> Row:
    published: datetime | None = article.publishedDateTime
    if published is None:
        return {"published_year": None, "published_month": None}
    return {"published_year": published.year, "published_month": published.strftime("%Y-%m")}


REGISTRY: tuple[Enricher, ...] = (
    Enricher("text", 1, {}, _text, "HTML entities and tags out of title and excerpt"),
    Enricher("urls", 1, {"registered_domain": "TEXT"}, _urls, "registered domain of the article"),
    Enricher("reading", 1, {"word_count": "INTEGER"}, _reading, "words in title+excerpt+body"),
    Enricher(
        "dates", 1, {"published_year": "INTEGER", "published_month": "TEXT"}, _dates,
        "publication year and month (YYYY-MM) for facets",
    ),
)
BY_NAME = {e.name: e for e in REGISTRY}


def enrichment_columns() -> dict[str, str]:
    return {col: typ for e in REGISTRY for col, typ in e.columns.items()}


def unknown_enrichers(names: Iterable[str]) -> list[str]:
    return [n for n in names if n not in BY_NAME]


def enrich(article: Article, row: Row, enabled: Iterable[str]) -> tuple[Row, dict[str, float], list[str]]:
    """Run the enabled enrichers over ``row`` in place; a failing one leaves its columns empty."""
    wanted = set(enabled)
    timings: dict[str, float] = {}
    errors: list[str] = []
    for enricher in REGISTRY:
        if enricher.name not in wanted:
            continue
        start = time.perf_counter()
        try:
            row.update(enricher.fn(article, row))
        except Exception as exc:  # an enricher must never cost us the article
            errors.append(f"{enricher.name}: {type(exc).__name__}: {exc}")
            for col in enricher.columns:
                row[col] = None
        timings[enricher.name] = (time.perf_counter() - start) * 1000
    return row, timings, errors
