"""related: each related item's URL canonicalised, so the writer can link it to the article it
names (``related.related_article_id``) now or when that article arrives; provider domains are
normalised like the article's, so related items count as evidence of providers."""

from __future__ import annotations

from typing import Any

from .. import dedupe
from .base import Context, Enricher, Row
from .urls import registered_domain


def run(ctx: Context, options: Any) -> Row:
    items = []
    for item in ctx.related:
        url = item["url"]
        canonical = dedupe.canonical_url(url, ctx.tracking_params) if url else None
        domain = item.get("provider_domain")
        if domain:
            domain = registered_domain(domain if "//" in domain else f"http://{domain.strip()}")
        items.append({
            **item,
            "canonical_url": canonical,
            "target_id": dedupe.article_id(canonical) if canonical else None,
            "provider_domain": domain or None,
        })
    ctx.related = items
    return {"related_count": len(items)}


ENRICHER = Enricher(
    "related", 1, {"related_count": "INTEGER"}, run,
    "related URLs canonicalised and linked to stored articles; their providers normalised",
    touches=("related",),
)
