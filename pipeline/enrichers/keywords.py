"""keywords: the top keyphrases of an article, fast (RAKE scoring, pure Python).

Candidate phrases are runs of up to ``max_words`` words between stop words and punctuation;
a word scores degree / frequency (words that keep company in phrases score higher) and a phrase
the sum of its words, plus half for each repetition. The title counts twice: it names the
story. English stop words; text in
another language still yields its frequent words, only less well cut. For better (slower)
keyphrases, enable ``keyphrases`` (YAKE).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from functools import lru_cache

from pydantic import Field

from .base import Context, Enricher, EnricherOptions, Row

STOPWORDS = frozenset("""
a about above according across after afterwards again against ago all almost alone along already
also although always am among amongst an and another any anyhow anyone anything anyway anywhere
are around as at away back be became because become becomes been before beforehand behind being
below beside besides between beyond both but by can cannot could did do does doing done down due
during each either else elsewhere enough etc even ever every everyone everything everywhere
except few first for former formerly from further get gets getting give given go going got had has
have having he hence her here hereby herein hers herself him himself his how however i ie if in
inc indeed instead into is it its itself just last latter least less let like made make makes
many may me meanwhile might more moreover most mostly much must my myself namely near need needs
neither never nevertheless new next no nobody none nor not nothing now nowhere of off often on
once one only onto or other others otherwise our ours ourselves out over own per perhaps please
put rather re really said same say says see seem seemed seems several she should show shows
since so some somehow someone something sometime sometimes somewhere still such take than that
the their theirs them themselves then thence there thereafter thereby therefore therein these
they this those though through throughout thru thus to today together too toward towards two
under until up upon us use used uses using very via was way we well were what whatever when
whence whenever where whereas whether which while who whoever whole whom whose why will with
within without would yet you your yours yourself yourselves year years also week weeks day days
time times s t ll ve d m re don t it's that's
""".split())

# a word, or a character that ends a phrase (punctuation other than in-word ' and -)
_TOKEN = re.compile(r"[^\W_][\w'’]*(?:-[\w'’]+)*|[^\w\s'’-]|\s[-–—]+\s")


class Options(EnricherOptions):
    max_keywords: int = Field(8, ge=0)
    max_words: int = Field(3, ge=1)
    min_chars: int = Field(3, ge=1)
    extra_stopwords: list[str] = []
    # text looked at: title, excerpt and the start of the body (a long body costs, adds little)
    max_chars: int = Field(5000, gt=0)


def extract(text: str, title: str = "", max_keywords: int = 8, max_words: int = 3,
            min_chars: int = 3, stopwords: frozenset[str] = STOPWORDS) -> list[str]:
    """The top ``max_keywords`` phrases, lower-cased, best first."""
    phrases: list[tuple[str, ...]] = []
    run: list[str] = []
    for token in _TOKEN.findall(f"{title}. {title}. {text}".lower()):
        if token in stopwords or len(token) < min_chars or not token[0].isalnum() \
                or token.isdigit():
            if run:
                phrases.append(tuple(run))
                run = []
            continue
        run.append(token)
        if len(run) == max_words:
            phrases.append(tuple(run))
            run = []
    if run:
        phrases.append(tuple(run))
    if not phrases:
        return []
    freq: Counter[str] = Counter()
    degree: defaultdict[str, int] = defaultdict(int)
    for phrase in phrases:
        for word in phrase:
            freq[word] += 1
            degree[word] += len(phrase)
    word_score = {w: degree[w] / freq[w] for w in freq}
    # RAKE ignores repetition; a phrase said again (the title counts twice) gains half each time
    scores = {
        phrase: sum(word_score[w] for w in phrase) * (1 + 0.5 * (count - 1))
        for phrase, count in Counter(phrases).items()
    }
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [" ".join(p) for p, _ in ranked[:max_keywords]]


@lru_cache(maxsize=8)
def _stopwords(extra: tuple[str, ...]) -> frozenset[str]:
    return STOPWORDS | {w.lower() for w in extra}


def run(ctx: Context, options: Options) -> Row:
    row = ctx.row
    stopwords = _stopwords(tuple(options.extra_stopwords))
    text = " ".join(part for part in (row.get("excerpt"), row.get("body")) if part)
    text = text[: options.max_chars]
    found = extract(text, row.get("title") or "", options.max_keywords, options.max_words,
                    options.min_chars, stopwords)
    return {"keywords": json.dumps(found, ensure_ascii=False)}


ENRICHER = Enricher(
    "keywords", 1, {"keywords": "TEXT"}, run,
    "top keyphrases (JSON array), fast RAKE scoring with the title counted twice",
    options=Options,
)
