"""text: HTML entities and tags out, mojibake fixed (ftfy), whitespace folded, truncation noted."""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

from .base import Context, Enricher, Row

_WS = re.compile(r"\s+")
_TAG = re.compile(r"<[^<>]{0,200}>")
# an excerpt cut short by the feed: "...", "…", "[...]", "[…]"
# Mojibake is UTF-8 read as Latin-1/cp1252: a lead byte (Â..ô) followed by a continuation byte
# (\x80-\xbf, or what cp1252 shows for it). Only text with such a pair goes to ftfy, which costs
# ~0.5 ms on an excerpt; the search costs ~1 µs.
_MOJIBAKE_HINT = re.compile(
    "[\xc2-\xf4][\x80-\xbf\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160"
    "\u2039\u0152\u017d\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161"
    "\u203a\u0153\u017e\u0178]"
)
_TRUNCATED = re.compile(r"(?:\.{3}|…|\[\s*(?:\.{3}|…)\s*\])\s*$")


def clean_text(value: str | None) -> str | None:
    """Decode HTML entities (twice: feeds double-escape, ``&amp;nbsp;``), drop tags, fix mojibake
    (ftfy, only where it can be), fold whitespace."""
    if value is None:
        return None
    if len(value) <= 1000:
        return _clean_cached(value)
    return _clean(value)


@lru_cache(maxsize=2048)  # see dedupe._canonical for the size
def _clean_cached(value: str) -> str:
    """Related items' titles and excerpts repeat across many articles: clean each once."""
    return _clean(value)


def _clean(value: str) -> str:
    if "&" in value:
        value = html.unescape(html.unescape(value))
    if "<" in value:
        value = _TAG.sub(" ", value)
    if not value.isascii() and _MOJIBAKE_HINT.search(value):
        import ftfy  # here, not at the top: ~75 ms and ~8.5 MB that most runs never need

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
