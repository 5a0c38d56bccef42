"""reading: word count and reading time."""

from __future__ import annotations

import re

from pydantic import Field

from .base import Context, Enricher, EnricherOptions, Row

# a word as a reader counts it: "25.8", "don't", "state-of-the-art" are one each
_WORD = re.compile(r"\w+(?:[.,'’-]\w+)*")


class Options(EnricherOptions):
    words_per_minute: int = Field(230, gt=0)


def run(ctx: Context, options: Options) -> Row:
    row = ctx.row
    words = sum(len(_WORD.findall(row.get(col) or "")) for col in ("title", "excerpt", "body"))
    return {"word_count": words, "reading_time_s": round(words * 60 / options.words_per_minute)}


ENRICHER = Enricher(
    "reading", 2, {"word_count": "INTEGER", "reading_time_s": "INTEGER"}, run,
    "words in title + excerpt + body; reading time in seconds at words_per_minute",
    options=Options,
)
