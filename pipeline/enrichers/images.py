"""images: the primary image (largest by area) and its aspect ratio; provider logos are kept
apart (``images.kind = 'provider'``) and never chosen."""

from __future__ import annotations

from typing import Any

from .base import Context, Enricher, Row


def primary(images: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Largest article image by area; without sizes, the first one (the feed's lead image)."""
    article = [i for i in images if i["kind"] == "article" and i.get("url")]
    sized = [i for i in article if (i.get("width") or 0) > 0 and (i.get("height") or 0) > 0]
    if sized:
        return max(sized, key=lambda i: i["width"] * i["height"])  # max keeps the first on ties
    return article[0] if article else None


def run(ctx: Context, options: Any) -> Row:
    best = primary(ctx.images)
    width = best.get("width") if best else None
    height = best.get("height") if best else None
    return {
        "image_count": sum(1 for i in ctx.images if i["kind"] == "article"),
        "primary_image_url": best["url"] if best else None,
        "primary_image_width": width or None,
        "primary_image_height": height or None,
        "primary_image_aspect": round(width / height, 3) if width and height else None,
    }


ENRICHER = Enricher(
    "images", 1,
    {"image_count": "INTEGER", "primary_image_url": "TEXT", "primary_image_width": "INTEGER",
     "primary_image_height": "INTEGER", "primary_image_aspect": "REAL"},
    run, "primary image (largest by area) and its aspect ratio (width / height)",
)
