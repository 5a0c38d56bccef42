"""dates: publication year, month, ISO week, weekday and day for facets; age at first ingest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .base import Context, Enricher, Row


def age_seconds(published: datetime | str | None, seen: datetime | str | None) -> int | None:
    """Seconds from publication to the pipeline's first sight of the article (negative when the
    feed dates an article in the future)."""
    if published is None or seen is None:
        return None
    if isinstance(published, str):
        published = datetime.fromisoformat(published.replace("Z", "+00:00"))
    if isinstance(seen, str):
        seen = datetime.fromisoformat(seen.replace("Z", "+00:00"))
    return int((seen - published).total_seconds())


def run(ctx: Context, options: Any) -> Row:
    published = ctx.article.publishedDateTime
    if published is None:
        return dict.fromkeys(ENRICHER.columns)
    published = published.astimezone(UTC)
    year, week, weekday = published.isocalendar()
    return {
        "published_year": published.year,
        "published_month": published.strftime("%Y-%m"),
        "published_week": f"{year}-W{week:02d}",
        "published_weekday": weekday,
        "published_date": published.strftime("%Y-%m-%d"),
        "age_at_ingest_s": age_seconds(published, ctx.seen_at),
    }


ENRICHER = Enricher(
    "dates", 2,
    {"published_year": "INTEGER", "published_month": "TEXT", "published_week": "TEXT",
     "published_weekday": "INTEGER", "published_date": "TEXT", "age_at_ingest_s": "INTEGER"},
    run,
    "year, month (YYYY-MM), ISO week (YYYY-Www), weekday (1 = Monday), day (UTC); "
    "seconds from publication to first ingest",
)
