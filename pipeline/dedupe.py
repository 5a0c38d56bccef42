"""Stage 3, dedupe (the pure half): which article a file is about.

The article's identity is its canonical URL; its id is a stable 63-bit hash of that URL, so the
same article gets the same id in every database and every process, with no lookup needed. The
single writer (``store``) makes the decisions that need the database.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from url_normalize import url_normalize

from .validate import Article

STAGE = "dedupe"


@lru_cache(maxsize=64)
def _tracking_matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for the tracking-parameter list; ``*`` is a wildcard (``utm_*``)."""
    alternatives = "|".join(re.escape(p.lower()).replace(r"\*", ".*") for p in patterns) or "(?!)"
    return re.compile(rf"^(?:{alternatives})$")


def canonical_url(url: str, tracking_params: Iterable[str]) -> str:
    """Normalise a URL so that addresses of the same page compare equal.

    url-normalize handles scheme/host case, default ports, percent-encoding and dot segments; on
    top of it: drop the fragment and tracking parameters, sort the query, drop a trailing slash.
    """
    normal = url_normalize(url.strip()) or url.strip()
    parts = urlsplit(normal)
    is_tracking = _tracking_matcher(tuple(tracking_params)).match
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not is_tracking(k.lower())
    )
    path = parts.path
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def article_id(canonical: str) -> int:
    """A stable positive 63-bit integer: SQLite's INTEGER PRIMARY KEY, fast and compact."""
    digest = hashlib.blake2b(canonical.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


def identity(article: Article, tracking_params: Iterable[str]) -> tuple[str, int]:
    """The canonical URL (originalUrl when given, else webUrl) and the article id."""
    url = canonical_url(article.originalUrl or article.webUrl, tracking_params)
    return url, article_id(url)
