"""provider: one provider per registered domain, with the name this article gives and its logo.

The best display name across all articles (and related items) is chosen by the writer, which
sees them all (``Store``: most frequent name wins, shorter on a tie).
"""

from __future__ import annotations

from typing import Any

from .base import Context, Enricher, Row
from .text import clean_text
from .urls import provider_domain, registered_domain


def run(ctx: Context, options: Any) -> Row:
    given = ctx.article.provider
    name = clean_text(given.name) if given and given.name else None
    domain = (provider_domain(given.domain) if given else None) \
        or ctx.row.get("registered_domain") or registered_domain(ctx.row["canonical_url"])
    logos = [i["url"] for i in ctx.images if i["kind"] == "provider" and i.get("url")]
    ctx.provider = {"domain": domain, "name": name or None, "logo": logos[0] if logos else None} \
        if domain else None
    return {"provider_id": domain, "provider_name": name or None}


ENRICHER = Enricher(
    "provider", 1, {"provider_name": "TEXT"}, run,
    "provider keyed by registered domain (falls back to the article's); name and logo",
    touches=("provider_id", "provider"),
)
