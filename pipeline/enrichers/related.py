"""related: each related item's URL canonicalised, so the writer can link it to the article it
names (``related.related_article_id``) now or when that article arrives; provider domains are
normalised like the article's, so related items count as evidence of providers."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .. import dedupe
from .base import Context, Enricher, Row
from .urls import provider_domain


@lru_cache(maxsize=2048)  # see dedupe._canonical for the size
def _canonical(url: str, tracking_params: tuple[str, ...]) -> tuple[str, int]:
    """Related items repeat across articles (a story is related to many), so URLs are cached."""
    canonical = dedupe.canonical_url(url, tracking_params)
    return canonical, dedupe.article_id(canonical)


def run(ctx: Context, options: Any) -> Row:
    items = []
    for item in ctx.related:
        url = item["url"]
        canonical, target = _canonical(url, ctx.tracking_params) if url else (None, None)
        items.append({
            **item,
            "canonical_url": canonical,
            "target_id": target,
            "provider_domain": provider_domain(item.get("provider_domain")),
        })
    ctx.related = items
    return {"related_count": len(items)}


ENRICHER = Enricher(
    "related", 1, {"related_count": "INTEGER"}, run,
    "related URLs canonicalised and linked to stored articles; their providers normalised",
    touches=("related",),
)
