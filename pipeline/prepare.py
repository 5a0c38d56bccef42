"""The pure half of the pipeline: path -> read -> parse -> validate -> dedupe -> enrich.

Everything here is free of database access, so it runs in worker processes; the single writer
(``store``) receives the resulting records.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from . import dedupe, enrich, parse, validate
from .records import Options, Outcome, Prepared, Rejection, Skipped
from .validate import Article

# Fields whose change alone is not a new version: an opaque signature the publisher re-issues
# on every rewrite of a file.
VOLATILE_FIELDS = frozenset({"secured"})


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def prepare_file(path: str, options: Options) -> Outcome:
    """Run the pure stages for one file; timings per stage in ms."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    got = parse.read(path, options.max_file_bytes)
    if isinstance(got, (Rejection, Skipped)):
        if isinstance(got, Rejection):
            got.timings["parse"] = (time.perf_counter() - t0) * 1000
        return got
    facts, data = got
    parsed = parse.parse(facts, data, options.limits)
    t1 = time.perf_counter()
    timings["parse"] = (t1 - t0) * 1000
    if isinstance(parsed, Rejection):
        parsed.timings = timings
        return parsed
    article = validate.validate(parsed)
    t2 = time.perf_counter()
    timings["validate"] = (t2 - t1) * 1000
    if isinstance(article, Rejection):
        article.timings = timings
        return article
    prepared = build(article, facts, options)
    prepared.timings = {**timings, **prepared.timings}
    return prepared


def build(
    article: Article, facts: Any, options: Options, *, seen_at: datetime | None = None
) -> Prepared:
    """Dedupe identity, row building and enrichment for a validated article.

    ``seen_at`` is when the pipeline first saw the article (now, unless ``reprocess`` knows).
    """
    t0 = time.perf_counter()
    canonical, article_id = dedupe.identity(article, options.tracking_params)
    doc = article.model_dump(mode="json", exclude={"body"})
    doc["body"] = article.body
    snapshot = dumps(doc)  # serialised here, in the worker: the single writer only stores it
    content_hash = hashlib.sha256(
        dumps({k: v for k, v in doc.items() if k not in VOLATILE_FIELDS})
    ).hexdigest()
    provider = article.provider
    provider_domain = (provider.domain or "").strip().lower() if provider else ""
    extra = article.model_extra or {}
    row: dict[str, Any] = {
        "id": article_id,
        "canonical_url": canonical,
        "title": article.title,
        "excerpt": article.excerpt,
        "body": article.body,
        "published_at": iso(article.publishedDateTime),
        "category": article.category,
        "type": article.type,
        "quality": article.quality,
        "heat": article.heat,
        "published": article.published,
        "provider_id": provider_domain or None,
        "topics": dumps(article.topics).decode(),
        "web_url": article.webUrl,
        "original_url": article.originalUrl,
        "amp_url": article.ampWebUrl,
        "cdn_amp_url": article.cdnAmpWebUrl,
        "extra": dumps(extra).decode() if extra else None,
        "content_hash": content_hash,
    }
    images = [_image(img, "article") for img in article.images]
    if provider:
        images += [_image(img, "provider") for img in provider.images]
    related = []
    for item in article.related:
        related.append(
            {
                "url": item.originalUrl or item.webUrl,
                "canonical_url": None,  # the related enricher canonicalises and links
                "target_id": None,
                "title": item.title,  # the text enricher cleans them
                "excerpt": item.excerpt,
                "provider_name": item.provider.name if item.provider else None,
                "provider_domain": item.provider.domain if item.provider else None,
                "published_at": iso(item.publishedDateTime),
                "quality": item.quality,
            }
        )
    ctx = enrich.Context(
        article=article,
        row=row,
        provider={"domain": provider_domain, "name": provider.name} if provider_domain else None,
        topics=list(article.topics),
        images=images,
        related=related,
        seen_at=seen_at or datetime.now(UTC),
        tracking_params=options.tracking_params,
    )
    t1 = time.perf_counter()
    enrich_timings, errors = enrich.enrich(ctx, options.enrichers, options.enrich_options)
    t2 = time.perf_counter()
    # near-duplicate features from the text as it will be stored (after the text enricher)
    params = options.dedupe_params
    features = dedupe.features(row, params)
    row["dedupe_keys"] = dedupe.pack_keys(dedupe.lookup_keys(features, params))
    t3 = time.perf_counter()
    return Prepared(
        facts=facts,
        article=row,
        snapshot=snapshot.decode(),
        content_hash=content_hash,
        provider=ctx.provider,
        topics=ctx.topics,
        images=ctx.images,
        related=ctx.related,
        timings={
            "dedupe": (t1 - t0 + t3 - t2) * 1000,
            "enrich": (t2 - t1) * 1000,
            **{f"enrich.{k}": v for k, v in enrich_timings.items()},
        },
        errors=errors,
    )


def dumps(value: Any) -> bytes:
    """JSON, keys sorted (a stable content hash), via orjson: ~10x the standard library's speed,
    and this runs several times per file. Values YAML gives that JSON lacks (dates) become
    strings."""
    return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def _image(img: Any, kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "url": img.url,
        "width": img.width,
        "height": img.height,
        "is_cached": img.isCached,
        "title": img.title,
        "attribution": img.attribution,
    }
