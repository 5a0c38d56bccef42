"""keyphrases (opt-in): YAKE keyphrases, better than ``keywords`` but ~100x slower.

YAKE is unsupervised and uses the stop-word list of the article's language (from the
``language`` enricher when it ran, else English); no model, nothing downloaded. Installed with
the ``yake`` extra (``pip install 'news-pipeline[yake]'``).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import Field

from .base import Context, Enricher, EnricherOptions, Row


class Options(EnricherOptions):
    max_keywords: int = Field(8, ge=0)
    max_words: int = Field(3, ge=1)
    dedup_limit: float = Field(0.9, gt=0.0, le=1.0)


@cache
def _extractor(language: str, max_keywords: int, max_words: int, dedup_limit: float) -> Any:
    try:
        import yake
    except ImportError as exc:  # the enricher fails cleanly; the article is still stored
        raise RuntimeError("keyphrases needs yake: pip install 'news-pipeline[yake]'") from exc
    return yake.KeywordExtractor(lan=language, n=max_words, dedup_lim=dedup_limit,
                                 top=max_keywords)


def run(ctx: Context, options: Options) -> Row:
    row = ctx.row
    text = "\n".join(part for part in (row.get("title"), row.get("excerpt"), row.get("body")) if part)
    extractor = _extractor(row.get("language") or "en", options.max_keywords, options.max_words,
                           options.dedup_limit)
    found = [phrase for phrase, _score in extractor.extract_keywords(text)] if text else []
    return {"keyphrases": json.dumps(found, ensure_ascii=False)}


ENRICHER = Enricher(
    "keyphrases", 1, {"keyphrases": "TEXT"}, run,
    "YAKE keyphrases (JSON array); off by default, about 100x the cost of keywords",
    options=Options, default=False,
)
