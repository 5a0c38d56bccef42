"""The enricher registry: one module per enricher, one entry in ``REGISTRY``.

Enrichers run in registry order (a later one sees what an earlier one filled, e.g. ``language``
reads the cleaned title) in the pure half of the pipeline: worker processes, no database. What
needs the database (provider best names, topic counts, related-article links) is done by the
writer from what they leave in the context. See the README, "Enrichment", to add one.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import (
    dates,
    images,
    keyphrases,
    keywords,
    language,
    provider,
    reading,
    related,
    text,
    topics,
    urls,
)
from .base import Context, Enricher, EnricherOptions, Row

REGISTRY: tuple[Enricher, ...] = (
    text.ENRICHER,
    urls.ENRICHER,
    provider.ENRICHER,
    topics.ENRICHER,
    related.ENRICHER,
    images.ENRICHER,
    dates.ENRICHER,
    reading.ENRICHER,
    language.ENRICHER,
    keywords.ENRICHER,
    keyphrases.ENRICHER,
)
BY_NAME = {e.name: e for e in REGISTRY}

# {enricher name: version} of the enrichers that ran on an article without error
VERSIONS_COLUMN = "enriched_with"


def enrichment_columns() -> dict[str, str]:
    columns = {col: typ for e in REGISTRY for col, typ in e.columns.items()}
    columns[VERSIONS_COLUMN] = "TEXT"
    return columns


def default_enabled() -> list[str]:
    return [e.name for e in REGISTRY if e.default]


def unknown_enrichers(names: Iterable[str]) -> list[str]:
    return [n for n in names if n not in BY_NAME]


def owner_of(column: str) -> str | None:
    """The enricher that owns or rewrites a column or child part, for change reports."""
    for e in REGISTRY:
        if column in e.columns or column in e.touches:
            return e.name
    return None


__all__ = [
    "BY_NAME", "REGISTRY", "VERSIONS_COLUMN", "Context", "Enricher", "EnricherOptions", "Row",
    "default_enabled", "enrichment_columns", "owner_of", "unknown_enrichers",
]
