"""Stage 3, dedupe (the pure half): which article a file is about, and what it looks like.

The article's identity is its canonical URL (level 1); its id is a stable 63-bit hash of that
URL, so the same article gets the same id in every database and every process, with no lookup
needed. For levels 2 and 3 (the same text at other addresses) this module computes, without the
database, everything the single writer needs: normalised tokens, shingles, the MinHash signature
cut into LSH band keys, the exact-text key, the long-title key, and ``compare``, the rule that
confirms a candidate pair. The writer (``clusters``) looks the keys up and keeps the clusters.
"""

from __future__ import annotations

import hashlib
import html
import re
import struct
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rensa import RMinHash
from url_normalize import url_normalize

if TYPE_CHECKING:  # the writer needs this module, not the validation model
    from .validate import Article

STAGE = "dedupe"

# Bump when tokens, shingles, keys or ``compare`` change meaning: stored keys and links are then
# recomputed on the next start (see ``clusters.ensure_current``).
ALGORITHM = 1


@lru_cache(maxsize=64)
def _tracking_matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for the tracking-parameter list; ``*`` is a wildcard (``utm_*``)."""
    alternatives = "|".join(re.escape(p.lower()).replace(r"\*", ".*") for p in patterns) or "(?!)"
    return re.compile(rf"^(?:{alternatives})$")


# AMP addresses of a page, mapped back to the page (level 1):
#   https://www-example-com.cdn.ampproject.org/c/s/www.example.com/a  (Google AMP cache)
#   https://example.com/amp/a, https://example.com/a/amp/            (an ``amp`` path segment)
#   https://example.com/a.amp, https://example.com/a.amp.html         (``.amp`` suffix -> .html,
#                                                                       the convention of the
#                                                                       sites that use it)
#   https://example.com/a?outputType=amp, ?amp=1, ?amp                (an AMP query switch)
#   https://amp.example.com/a                                         (an ``amp.`` host)
_AMP_CACHE = re.compile(r"^/[cv]/(s/)?(?P<rest>[^/]+(?:/.*)?)$")
_AMP_SUFFIX = re.compile(r"\.amp(?:\.html?)?$", re.IGNORECASE)


def _host(netloc: str) -> str:
    """Lower-cased host without ``www.``/``amp.``: they name the same site."""
    for prefix in ("www.", "amp."):
        if netloc.startswith(prefix) and netloc.count(".") >= 2:
            return netloc[len(prefix):]
    return netloc


# An http(s) URL of plain ASCII with no query or fragment (most article addresses): no
# percent-escapes, dot segments or empty segments, only characters that need no escaping.
# url-normalize would only lower-case the scheme and host and drop a default port, which this
# does ~30x faster (url-normalize runs IDNA on every host).
# tests/test_dedupe.py checks the two agree on generated URLs.
_PLAIN_URL = re.compile(
    r"(?P<scheme>[Hh][Tt][Tt][Pp][Ss]?)://(?P<host>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<path>/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*)?"
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def normalize_url(url: str) -> str:
    """url-normalize's result, with a fast path for the plain ASCII URLs most feeds carry."""
    m = _PLAIN_URL.fullmatch(url)
    if m is None or "/." in (path := m["path"] or "") or "//" in path:
        return url_normalize(url) or url
    scheme = m["scheme"].lower()
    port = m["port"]
    port = "" if port is None or port == _DEFAULT_PORTS[scheme] else ":" + port
    return f"{scheme}://{m['host'].lower()}{port}{path or '/'}"


def canonical_url(url: str, tracking_params: Iterable[str]) -> str:
    """Normalise a URL so that addresses of the same page compare equal.

    url-normalize handles scheme/host case, default ports, percent-encoding and dot segments; on
    top of it: the AMP forms above, ``www.``, the fragment and tracking parameters are dropped,
    the query sorted, a trailing slash dropped. Cached: feeds repeat related links endlessly.
    """
    return _canonical(url, tuple(tracking_params))


# 2,048 entries: repeats come close together (a story's related items recur in the articles
# published around it); on 10,000 generated files 2,048 entries had the hits of 16,384, and
# the three caches at 16,384 held ~19 MB more in each worker.
@lru_cache(maxsize=2048)
def _canonical(url: str, tracking_params: tuple[str, ...]) -> str:
    normal = normalize_url(url.strip().partition("#")[0])  # the fragment goes anyway
    parts = urlsplit(normal)
    scheme, netloc, path, query = parts.scheme, parts.netloc, parts.path, parts.query
    if netloc.endswith(".cdn.ampproject.org"):
        cached = _AMP_CACHE.match(path)
        if cached:
            inner = ("https://" if cached.group(1) else "http://") + cached.group("rest")
            if query:
                inner += "?" + query
            return _canonical(inner, tracking_params)
    netloc = _host(netloc)
    segments = [s for s in path.split("/") if s.lower() != "amp"]
    path = "/".join(segments) or "/"
    if not path.startswith("/"):
        path = "/" + path
    path = _AMP_SUFFIX.sub(".html", path)
    is_tracking = _tracking_matcher(tuple(tracking_params)).match
    pairs = sorted(
        (k, v) for k, v in parse_qsl(query, keep_blank_values=True)
        if not is_tracking(k.lower()) and k.lower() != "amp" and v.lower() != "amp"
    )
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return urlunsplit((scheme, netloc, path, urlencode(pairs), ""))


def article_id(canonical: str) -> int:
    """A stable positive 63-bit integer: SQLite's INTEGER PRIMARY KEY, fast and compact."""
    digest = hashlib.blake2b(canonical.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


def identity(article: Article, tracking_params: Iterable[str]) -> tuple[str, int]:
    """The canonical URL (originalUrl when given, else webUrl) and the article id."""
    url = canonical_url(article.originalUrl or article.webUrl, tracking_params)
    return url, article_id(url)


# -- text -------------------------------------------------------------------------------------

_APOSTROPHES = re.compile(r"['’‘`´ʼ]")
_WORD = re.compile(r"[^\W_]+")
_TRUNCATED = re.compile(r"(?:\.\.\.|…|\[…\]|\[\.\.\.\])\s*$")
# Where a sentence or a snippet fragment starts: after . ! ? and at ellipses.
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\.\.\.+|…|\[…\]|\[\.\.\.\]")
# Function words left out of the title key, so that "Reducing the carbon footprint of AI" and
# "Reducing carbon footprint of AI" are one title. Short and English: titles in other languages
# simply keep all their words.
STOPWORDS = frozenset(
    "a an the of to in on at for by with from and or but as is are was were be been its it "
    "this that these those into about over after than via".split()
)


def tokens(text: str | None) -> list[str]:
    """Words of a text with entities, Unicode forms, case, apostrophes and punctuation folded."""
    if not text:
        return []
    if "&" in text:
        text = html.unescape(html.unescape(text))
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    text = text.casefold()
    if "'" in text or not text.isascii():
        text = _APOSTROPHES.sub("", text)
    return _WORD.findall(text)


def shingles(words: list[str], size: int) -> frozenset[str]:
    """Word n-grams; a text shorter than ``size`` is one shingle of all its words."""
    if len(words) <= size:
        return frozenset((" ".join(words),)) if words else frozenset()
    return frozenset(map(" ".join, zip(*(words[i:] for i in range(size)))))


def _key(kind: bytes, payload: bytes) -> int:
    """A signed 64-bit key (SQLite INTEGER), namespaced by kind so keys of kinds never meet."""
    return int.from_bytes(hashlib.blake2b(kind + b"\0" + payload, digest_size=8).digest(),
                          "big", signed=True)


@dataclass(frozen=True, slots=True)
class DedupeParams:
    """What the dedupe computations need from ``[dedupe]`` (small, picklable, hashable);
    made by ``DedupeSettings.params()``, where the defaults live."""

    tracking_params: tuple[str, ...]
    shingle_words: int
    num_perm: int
    bands: int
    seed: int
    min_words: int
    anchor_words: int
    containment: float
    title_min_words: int
    title_days: float
    max_candidates: int

    @property
    def rows(self) -> int:
        return self.num_perm // self.bands

    def fingerprint(self) -> str:
        """Changes whenever stored keys or links would come out differently."""
        return (f"dedupe {ALGORITHM}; rensa {RMinHash.ALGORITHM_VERSION}; "
                f"{sorted(self.tracking_params)}; k={self.shingle_words} perm={self.num_perm} "
                f"bands={self.bands} seed={self.seed} min_words={self.min_words} "
                f"anchor={self.anchor_words} "
                f"containment={self.containment} title={self.title_min_words}w/"
                f"{self.title_days}d")


@dataclass(frozen=True, slots=True)
class Features:
    """What ``compare`` looks at for one article, computed the same way in both halves."""

    urls: frozenset[str]  # canonical URL and canonical AMP URLs
    text_key: int | None  # the exact normalised title + excerpt
    title_words: tuple[str, ...]  # content words of the title
    title_truncated: bool  # the title ends in an ellipsis: compare it as a prefix
    text: frozenset[str]  # shingles of title and excerpt
    excerpt: frozenset[str]  # shingles of the excerpt alone ...
    excerpt_words: int  # ... and how many words it has
    title_shingles: frozenset[str]
    anchors: frozenset[str]  # the first words of each sentence or fragment of the excerpt
    provider: str | None
    published: float | None  # epoch seconds


def features(row: Mapping[str, Any], params: DedupeParams) -> Features:
    """Features of an ``articles`` row (title and excerpt as stored, after enrichment)."""
    title_raw = row.get("title") or ""
    title = tokens(title_raw)
    sentences = [tokens(piece) for piece in _SENTENCES.split(row.get("excerpt") or "")]
    excerpt = [word for sentence in sentences for word in sentence]
    k = params.shingle_words
    title_sh = shingles(title, k)
    excerpt_sh = shingles(excerpt, k)
    words = title + ["\x00"] + excerpt  # the separator keeps the two texts apart in the key
    urls = {row["canonical_url"]}
    for field in ("amp_url", "cdn_amp_url"):
        if row.get(field):
            urls.add(canonical_url(row[field], params.tracking_params))
    published = row.get("published_at")
    n = params.anchor_words
    anchors = frozenset(" ".join(words[:n]) for words in sentences if len(words) >= n)
    return Features(
        urls=frozenset(urls),
        text_key=_key(b"text", " ".join(words).encode()) if title or excerpt else None,
        title_words=tuple(w for w in title if w not in STOPWORDS),
        title_truncated=bool(_TRUNCATED.search(title_raw)),
        text=title_sh | excerpt_sh,
        excerpt=excerpt_sh,
        excerpt_words=len(excerpt),
        title_shingles=title_sh,
        anchors=anchors,
        provider=row.get("provider_id") or None,
        published=_epoch(published) if published else None,
    )


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def lookup_keys(f: Features, params: DedupeParams) -> list[int]:
    """The keys under which an article is filed and looked up (sorted, distinct).

    LSH band keys of the MinHash signature, the exact-text key, the long-title key (also its
    truncated-title prefixes), one key per URL (so AMP addresses listed in ``ampWebUrl`` meet
    the article published there), and one per sentence start: an excerpt cut much shorter than
    the other has a low Jaccard similarity, which LSH may miss, but it starts where the other
    text or one of its sentences starts.
    """
    keys = {_key(b"url", u.encode()) for u in f.urls}
    keys.update(_key(b"anchor", a.encode()) for a in f.anchors)
    if f.text_key is not None:
        keys.add(f.text_key)
    n = params.title_min_words
    if len(f.title_words) >= n:
        keys.add(_key(b"title", " ".join(f.title_words).encode()))
        # every long title also files under its first words, where a truncated one meets it
        if len(f.title_words) - f.title_truncated >= n:
            keys.add(_key(b"title-start", " ".join(f.title_words[:n]).encode()))
    signed = f.excerpt if f.excerpt_words >= params.min_words else f.text
    if signed:
        mh = RMinHash(num_perm=params.num_perm, seed=params.seed)
        mh.update(sorted(signed))
        digest = mh.digest()
        r = params.rows
        for band in range(params.bands):
            keys.add(_band_key(band, digest[band * r:(band + 1) * r]))
    return sorted(keys)


_MASK = (1 << 64) - 1


def _band_key(band: int, values: list[int]) -> int:
    """A band's rows folded into a signed 64-bit key (FNV-1a style over the 32-bit values):
    much cheaper than a cryptographic hash per band, and collisions only cost a candidate."""
    h = (0xCBF29CE484222325 ^ band) * 0x100000001B3 & _MASK
    for value in values:
        h = ((h ^ value) * 0x100000001B3) & _MASK
    return h - (1 << 64) if h >= 1 << 63 else h


def pack_keys(keys: list[int]) -> bytes:
    return struct.pack(f"<{len(keys)}q", *keys)


def unpack_keys(blob: bytes | None) -> list[int]:
    return list(struct.unpack(f"<{len(blob) // 8}q", blob)) if blob else []


# -- the confirming rule ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    level: int  # 1 same article (URL), 2 exact text, 3 near-duplicate
    score: float
    rule: str


def containment(a: frozenset[str], b: frozenset[str]) -> float:
    """Share of the smaller set found in the other: a copy cut short is contained in the longer."""
    if not a or not b:
        return 0.0
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return len(small & large) / len(small)


def _title_score(a: Features, b: Features, params: DedupeParams) -> float:
    """1.0 for long titles equal in their content words; for a truncated title that starts the
    other, the share of the other's words it kept; 0.0 otherwise."""
    ta, tb = a.title_words, b.title_words
    if min(len(ta), len(tb)) < params.title_min_words:
        return 0.0
    if ta == tb:
        return 1.0
    if _cut_title_of(a, tb, params) or _cut_title_of(b, ta, params):
        return round(min(len(ta), len(tb)) / max(len(ta), len(tb)), 3)
    return 0.0


def _cut_title_of(cut: Features, full: tuple[str, ...], params: DedupeParams) -> bool:
    """The truncated title is the start of the other (its last word may be cut mid-word)."""
    words = cut.title_words
    if not cut.title_truncated or len(words) - 1 < params.title_min_words or len(words) > len(full):
        return False
    return full[:len(words) - 1] == words[:-1] and full[len(words) - 1].startswith(words[-1])


def compare(a: Features, b: Features, params: DedupeParams) -> Match | None:
    """Are two articles copies of one text? Symmetric, so the clusters do not depend on order.

    - level 1: one lists the other's address as its AMP address;
    - level 2: the same normalised title and excerpt;
    - level 3: the shorter excerpt (or, for short excerpts, title + excerpt) is contained in the
      other at ``containment`` or more, measured on word shingles; when the headlines differ
      entirely, only across providers (one site repeating one teaser under many headlines is a
      paywall or a boilerplate, not a story); or the same long title (``title_min_words`` content
      words, a truncated title as a prefix) published within ``title_days`` of each other.
    """
    if a.urls & b.urls:
        return Match(1, 1.0, "same address (AMP)")
    if a.text_key is not None and a.text_key == b.text_key:
        return Match(2, 1.0, "same title and excerpt")
    if min(a.excerpt_words, b.excerpt_words) >= params.min_words:
        score, what = containment(a.excerpt, b.excerpt), "excerpt containment"
    else:
        score, what = containment(a.text, b.text), "text containment"
    if score >= params.containment:
        related_titles = containment(a.title_shingles, b.title_shingles) >= 0.5
        if related_titles or a.provider is None or a.provider != b.provider:
            return Match(3, round(score, 3), what)
    title = _title_score(a, b, params)
    if title:
        days = params.title_days
        if days <= 0 or (
            a.published is not None and b.published is not None
            and abs(a.published - b.published) <= days * 86400
        ):
            return Match(3, title, "same long title")
    return None
