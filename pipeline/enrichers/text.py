"""text: HTML entities and tags out, mojibake fixed (ftfy), whitespace folded, truncation noted."""

from __future__ import annotations

import html
import re
from typing import Any

import ftfy

from .base import Context, Enricher, Row

_WS = re.compile(r"\s+")
_TAG = re.compile(r"<[^<>]{0,200}>")
# an excerpt cut short by the feed: "...", "…", "[...]", "[…]" (also "( ... )"-free variants)
_TRUNCATED = re.compile(r"(?:\.{3}|…|\[\s*(?:\.{3}|…)\s*\])\s*$")


def clean_text(value: str | None) -> str | None:
    """Decode HTML entities (twice: feeds double-escape, ``&amp;nbsp;``), drop tags, fix mojibake,
    fold whitespace. ftfy only looks at non-ASCII text: ASCII cannot hold mojibake, and the check
    keeps the common case at a few microseconds."""
    if value is None:
        return None
    if "&" in value:
        value = html.unescape(html.unescape(value))
    if "<" in value:
        value = _TAG.sub(" ", value)
    if not value.isascii():
        value = ftfy.fix_text(value, unescape_html=False, uncurl_quotes=False,
                              fix_latin_ligatures=False, fix_character_width=False)
    return _WS.sub(" ", value).strip()


def is_truncated(excerpt: str | None) -> bool:
    return bool(excerpt) and _TRUNCATED.search(excerpt) is not None


def _fix(item: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {**item, **{k: clean_text(item.get(k)) for k in keys}}


def run(ctx: Context, options: Any) -> Row:
    row = ctx.row
    excerpt = clean_text(row["excerpt"])
    ctx.images = [_fix(i, "title", "attribution") for i in ctx.images]
    ctx.related = [_fix(r, "title", "excerpt", "provider_name") for r in ctx.related]
    return {
        "title": clean_text(row["title"]),
        "excerpt": excerpt,
        "excerpt_truncated": is_truncated(excerpt),
    }


ENRICHER = Enricher(
    "text", 2, {"excerpt_truncated": "INTEGER"}, run,
    "entities, tags and mojibake out of titles and excerpts; excerpt_truncated (0/1)",
    touches=("title", "excerpt", "images", "related"),
)
