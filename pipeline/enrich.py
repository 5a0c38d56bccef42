"""Stage 4, enrich: run the enabled enrichers of the registry (``pipeline/enrichers/``) over one
article, timing each; a failing enricher leaves its columns empty and costs nothing else."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .enrichers import (
    BY_NAME,
    REGISTRY,
    VERSIONS_COLUMN,
    Context,
    Enricher,
    enrichment_columns,
    unknown_enrichers,
)
from .enrichers.text import clean_text
from .enrichers.urls import registered_domain

STAGE = "enrich"

__all__ = [
    "BY_NAME", "REGISTRY", "STAGE", "Context", "Enricher", "clean_text", "enrich",
    "enrichment_columns", "registered_domain", "unknown_enrichers",
]


def enrich(
    ctx: Context, enabled: Iterable[str], options: Mapping[str, Any] | None = None
) -> tuple[dict[str, float], list[str]]:
    """Run the enabled enrichers over ``ctx`` in registry order.

    Returns the milliseconds each took and the errors (``"name: Type: message"``). The columns
    of disabled or failed enrichers are set to None, so a stored row never keeps a stale value.
    """
    wanted = set(enabled)
    options = options or {}
    timings: dict[str, float] = {}
    errors: list[str] = []
    ran: dict[str, int] = {}
    row = ctx.row
    for enricher in REGISTRY:
        if enricher.name not in wanted:
            for col in enricher.columns:
                row.setdefault(col, None)
            continue
        opts = options.get(enricher.name)
        if opts is None and enricher.options is not None:
            opts = enricher.options()
        start = time.perf_counter()
        try:
            row.update(enricher.fn(ctx, opts))
            ran[enricher.name] = enricher.version
        except Exception as exc:  # an enricher must never cost us the article
            errors.append(f"{enricher.name}: {type(exc).__name__}: {exc}")
            for col in enricher.columns:
                row[col] = None
        timings[enricher.name] = (time.perf_counter() - start) * 1000
    row[VERSIONS_COLUMN] = json.dumps(ran, sort_keys=True)
    return timings, errors
