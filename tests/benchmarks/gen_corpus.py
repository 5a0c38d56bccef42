#!/usr/bin/env python3
"""Generate a large synthetic corpus of news-article Markdown files for benchmarks.

Why this exists: the real corpus (``/work/shared/corpus``, 238 files) is far too
small to measure ingest throughput, and it may not be copied into the repository.
This module uses the real files as *templates* (read with PyYAML at generation
time) and writes N files of the same shape -- YAML front matter with nested
``provider``, ``images``, ``related`` and an empty body -- so that a benchmark
exercises the same parsing, flattening and dedup code paths as real data.

Design choices (and why):

* Text is made by a word-bigram Markov chain trained on the corpus titles and
  excerpts, with frequent random restarts.  Restarts keep two generated articles
  from sharing long runs of words, so "distinct" articles are really distinct for
  a near-duplicate detector (re-using a template's text with a few words swapped
  would make every file a near-duplicate of ~N/238 others).
* A realistic share of duplicates is planted on purpose, of the kinds the
  pipeline must group (see the corpus README):
    - ``url_variant`` (~5%): same article, same address plus tracking
      parameters (``utm_*``, ``fbclid``...) or an AMP / ``www.`` variant;
    - ``syndicated`` (~5%): same title and excerpt under another outlet's URL;
    - ``excerpt_cut`` (~3%): the same text at another outlet with the excerpt
      cut at a different place.
  Every planted pair is written to ``OUT_DIR/LABELS.tsv`` (``a``, ``b``,
  ``label``, ``kind``) so a benchmark can also check recall.
* Dates grow with the file index (plus jitter) and duplicates point at recent
  originals, as they do in a real feed; ``related`` entries refer to other
  recently generated articles.  Their number is drawn so a typical file is
  4-6 KB, with a long tail up to ~60 entries (~50 KB) like the real corpus.
* YAML is written by hand in the corpus' style (double-quoted strings, plain
  datetimes/ints/bools, blank lines between top-level blocks): PyYAML's emitter
  would be ~50x slower and would not look like the real files.
* Output is deterministic for a given seed (a private ``random.Random``, sorted
  inputs, no reliance on ``hash()``), so runs are comparable.

CLI::

    python tests/benchmarks/gen_corpus.py OUT_DIR --count 20000 [--seed 1] \
        [--source /work/shared/corpus] [--per-dir 1000] [--force]
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import json
import os
import random
import re
import shutil
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

try:  # libyaml makes loading the templates ~10x faster; fall back if absent.
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

DEFAULT_SOURCE = Path("/work/shared/corpus")
MARKER = "GENERATED.json"  # written into OUT_DIR; --force only deletes dirs that have it

# Default duplicate rates (share of all generated files).
URL_VARIANT_RATE = 0.05
SYNDICATED_RATE = 0.05
EXCERPT_CUT_RATE = 0.03

# First and last publication date of the synthetic feed.
START = _dt.datetime(2019, 12, 1, tzinfo=_dt.timezone.utc)
END = _dt.datetime(2022, 12, 31, tzinfo=_dt.timezone.utc)

# ---------------------------------------------------------------------------
# Built-in fallback templates (our own invented data, used only when the real
# corpus folder is absent, e.g. on CI without shared/).  They cover the field
# variants the real files have: originalUrl or not, AMP URLs or not,
# quality/heat/published/related or not, provider logos, image titles/isCached.
# ---------------------------------------------------------------------------
_FALLBACK_TEXT = """
Researchers at a university lab trained a neural network to spot early signs of crop disease from drone images, and the model now flags infected fields days before farmers notice.
A startup that builds speech recognition for call centers raised a new funding round to expand into healthcare and insurance, where transcripts must stay private.
The city council voted to limit the use of facial recognition by police after a debate about accuracy, bias and the lack of clear rules for storing images.
Chip makers are racing to ship accelerators for machine learning at the edge, promising lower power use for cameras, cars and factory robots.
A new report says the market for artificial intelligence in retail will grow quickly over the next five years as stores automate inventory and pricing.
Engineers released an open source toolkit that helps developers test language models for errors, toxic output and leaks of personal data.
Hospitals are testing software that reads chest scans and ranks urgent cases first, but doctors warn that the tools need more validation.
The company said its self-driving trucks completed a pilot on public highways without a safety driver, a first for the freight industry.
Regulators published draft guidance on how banks may use automated decision systems for lending, asking for explanations customers can understand.
A team of scientists used deep learning to predict the shape of proteins, a step that could speed up the search for new drugs and vaccines.
Teachers are divided over chatbots in the classroom: some see a tutor for every student, others fear a wave of copied homework.
The cloud provider announced new instances for training large models, along with tools that cut the cost of serving predictions at scale.
Analysts expect investment in computer vision for manufacturing to double as plants look for defects on assembly lines in real time.
""".strip()

_FALLBACK_TEMPLATES: list[dict] = [
    {
        "category": "news", "title": "", "excerpt": "",
        "publishedDateTime": START,
        "webUrl": "https://news.example.com/2020/04/22/sample-article/",
        "ampWebUrl": "https://news.example.com/2020/04/22/sample-article/amp/",
        "cdnAmpWebUrl": "https://news-example-com.cdn.ampproject.org/c/s/news.example.com/2020/04/22/sample-article/amp/",
        "type": "article", "quality": 40, "heat": 60, "published": True,
        "provider": {"name": "Example News", "domain": "example.com",
                     "images": [{"url": "/assets/images/organizations/example.com-50x50.jpg",
                                 "width": 50, "height": 50}]},
        "topics": ["AI", "Machine Learning"],
        "images": [{"url": "https://cdn.example.com/uploads/2020/04/photo.jpg",
                    "width": 1200, "height": 630, "title": ""}],
        "related": [{"title": "", "excerpt": "", "publishedDateTime": START,
                     "webUrl": "", "type": "article",
                     "provider": {"name": "", "domain": ""}, "quality": 10}],
        "secured": "",
    },
    {
        "category": "news", "title": "", "excerpt": "",
        "publishedDateTime": START,
        "webUrl": "https://www.example.org/technology/sample-article-123456.html",
        "type": "article", "quality": 20, "heat": -1, "published": False,
        "provider": {"name": "The Example Herald", "domain": "example.org"},
        "topics": ["AI", "Computer Vision"],
        "images": [{"url": "https://img.example.org/media/photo.jpg",
                    "width": 1024, "height": 576, "isCached": True}],
        "related": [{"title": "", "excerpt": "", "publishedDateTime": START,
                     "webUrl": "", "type": "article",
                     "provider": {"name": "", "domain": ""}, "quality": 10}],
        "secured": "",
    },
    {
        "category": "news", "title": "", "excerpt": "",
        "publishedDateTime": START,
        "originalUrl": "https://tech.example.net/news/sample-article",
        "webUrl": "https://tech.example.net/news/sample-article",
        "type": "article",
        "provider": {"name": "Example Tech Wire", "domain": "example.net"},
        "topics": ["AI"],
        "images": [{"url": "https://tech.example.net/images/photo.png",
                    "width": 800, "height": 450, "isCached": True, "title": ""}],
        "secured": "",
    },
]


# ---------------------------------------------------------------------------
# Loading templates and training the text model
# ---------------------------------------------------------------------------
def _split_front_matter(text: str) -> str:
    """Return the YAML between the leading ``---`` line and the next one."""
    if not text.startswith("---"):
        return ""
    end = text.find("\n---", 3)
    return text[3:end] if end != -1 else text[3:]


def load_templates(source: Path | str | None = DEFAULT_SOURCE) -> tuple[list[dict], list[str], list[str], str]:
    """Read the real corpus as templates; fall back to built-in ones.

    Returns ``(templates, titles, excerpts, origin)`` where ``origin`` is the
    folder read or ``"built-in"``; titles/excerpts include those of
    ``related`` entries, which triples the text available to the Markov chain.
    Files are read in sorted order so the result is deterministic.
    """
    templates: list[dict] = []
    titles: list[str] = []
    excerpts: list[str] = []
    src = Path(source) if source else None
    if src is not None and src.is_dir():
        for path in sorted(src.rglob("*.md")):
            fm = _split_front_matter(path.read_text(encoding="utf-8"))
            try:
                doc = yaml.load(fm, Loader=_Loader)
            except yaml.YAMLError:
                continue  # a broken file is no use as a template
            if not isinstance(doc, dict) or "webUrl" not in doc or "provider" not in doc:
                continue
            templates.append(doc)
            for item in [doc] + list(doc.get("related") or []):
                if isinstance(item.get("title"), str):
                    titles.append(item["title"])
                if isinstance(item.get("excerpt"), str):
                    excerpts.append(item["excerpt"])
    origin = str(src)
    if not templates:
        origin = "built-in"
        templates = [dict(t) for t in _FALLBACK_TEMPLATES]
        sentences = [s.strip() for s in _FALLBACK_TEXT.splitlines() if s.strip()]
        excerpts = sentences
        titles = [" ".join(s.split()[:9]).rstrip(",:") for s in sentences]
    # Deduplicate while keeping order (related entries repeat across files).
    titles = list(dict.fromkeys(titles))
    excerpts = list(dict.fromkeys(excerpts))
    return templates, titles, excerpts, origin


class Markov:
    """Word-bigram chain with random restarts.

    Why restarts: the training text is small, so many words have a single
    successor and a pure chain would copy long runs of real excerpts into many
    generated ones, making them look like near-duplicates of each other.
    """

    def __init__(self, texts: list[str], restart: float):
        self.restart = restart
        self.starts: list[str] = []
        self.words: list[str] = []
        succ: dict[str, list[str]] = {}
        for text in texts:
            toks = text.split()
            # Drop the truncation marker; we add our own when cutting excerpts.
            while toks and toks[-1] in ("...", "[…]", "…", "[...]"):
                toks.pop()
            if len(toks) < 2:
                continue
            self.starts.append(toks[0])
            self.words.extend(toks)
            for a, b in zip(toks, toks[1:]):
                succ.setdefault(a, []).append(b)
        self.succ = succ

    def words_n(self, rng: random.Random, n: int) -> list[str]:
        """Return ``n`` words of chain output."""
        # int(random() * len) instead of rng.choice: ~3x faster, and this loop
        # is most of the generator's CPU time.
        succ, words, restart = self.succ, self.words, self.restart
        nwords, rand = len(words), rng.random
        starts = self.starts
        w = starts[int(rand() * len(starts))]
        out = [w]
        for _ in range(n - 1):
            nxt = succ.get(w)
            if nxt is None or rand() < restart:
                w = words[int(rand() * nwords)]
            else:
                w = nxt[int(rand() * len(nxt))]
            out.append(w)
        return out


# ---------------------------------------------------------------------------
# Small helpers for URLs, YAML scalars and file names
# ---------------------------------------------------------------------------
_NEEDS_ESCAPE = re.compile(r'[\\"\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]')
_PLAIN_SAFE = re.compile(r"^[A-Za-z][A-Za-z0-9 .,&()'/+-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
_SLUG_DROP = re.compile(r"['’‘`]")
_SLUG_SEP = re.compile(r"[^a-z0-9]+")


def _esc_char(m: re.Match) -> str:
    c = m.group(0)
    if c == "\\":
        return "\\\\"
    if c == '"':
        return '\\"'
    return "\\u%04x" % ord(c)


def q(s: str) -> str:
    """Double-quoted YAML scalar, escaped like the corpus (``\\"``)."""
    if _NEEDS_ESCAPE.search(s):
        s = _NEEDS_ESCAPE.sub(_esc_char, s)
    return '"' + s + '"'


def plain(s: str) -> str:
    """Plain scalar when it is safe (provider names, topics), else quoted."""
    if _PLAIN_SAFE.match(s) and s.lower() not in _YAML_WORDS and not s.endswith(" "):
        return s
    return q(s)


def fmt_dt(d: _dt.datetime) -> str:
    """Corpus style: ``2020-04-22T10:09:00Z`` (unquoted -> a YAML timestamp)."""
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def slugify(title: str, limit: int = 90) -> str:
    s = _SLUG_SEP.sub("-", _SLUG_DROP.sub("", title.lower())).strip("-")
    return s[:limit].rstrip("-") or "article"


def split_url(url: str) -> tuple[str, str, str]:
    """``(scheme, host, path_and_query)`` without urllib overhead."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "https", "", url
    host, slash, path = rest.partition("/")
    return scheme, host, slash + path


def amp_urls(url: str) -> tuple[str, str]:
    """AMP and Google-AMP-cache addresses, in one of the styles the corpus has.

    The style is fixed per host (crc32, not ``hash()``, to stay deterministic),
    as a real site uses one AMP scheme for all its pages.
    """
    scheme, host, path = split_url(url)
    style = zlib.crc32(host.encode()) % 5
    if style == 0:
        amp = f"{scheme}://amp.{host.removeprefix('www.')}{path}"
    elif style == 1:
        amp = url.rstrip("/") + "/amp/"
    elif style == 2:
        amp = url + ("&amp" if "?" in url else "?amp")
    elif style == 3:
        amp = f"{scheme}://{host}/amp{path}"
    else:
        amp = re.sub(r"\.html?$", "", url.rstrip("/")) + ".amp"
    _, ahost, apath = split_url(amp)
    cdn = f"https://{ahost.replace('-', '--').replace('.', '-')}.cdn.ampproject.org/c/s/{ahost}{apath}"
    return amp, cdn


_TRACKING = [
    "utm_source=twitter&utm_medium=social&utm_campaign={c}",
    "utm_source=facebook&utm_medium=social",
    "utm_source=newsletter&utm_medium=email&utm_campaign={c}",
    "utm_source=feedburner&utm_medium=feed&utm_campaign=Feed%3A+{c}",
    "utm_source=linkedin.com&utm_medium=referral",
    "fbclid=IwAR{h}",
    "ref=rss",
    "utm_content={c}&utm_source=dlvr.it&utm_medium=twitter",
]


def url_variant(url: str, rng: random.Random) -> str:
    """Same article, other address: tracking params, AMP form, or www toggled."""
    r = rng.random()
    if r < 0.55:
        tpl = rng.choice(_TRACKING)
        params = tpl.format(c=rng.choice(["ai", "tech", "daily", "news", "top-stories"]),
                            h=base64.b32encode(rng.randbytes(10)).decode().rstrip("=").lower())
        return url + ("&" if "?" in url else "?") + params
    if r < 0.85:
        return amp_urls(url)[rng.random() < 0.8 and 0 or 1]
    scheme, host, path = split_url(url)
    host = host[4:] if host.startswith("www.") else "www." + host
    return f"{scheme}://{host}{path}"


# ---------------------------------------------------------------------------
# Articles and rendering
# ---------------------------------------------------------------------------
@dataclass
class Article:
    """One generated article (the fields that vary; the rest comes from its template)."""
    tmpl: int
    title: str
    words: list[str]          # "full text" the excerpt was cut from
    excerpt: str
    date: _dt.datetime
    url: str
    amp: tuple[str, str] | None
    image_url: str | None
    image_wh: tuple[int, int]
    quality: int
    path: str = ""            # relative path of the written file
    rel_block: str = field(default="", repr=False)  # cached YAML as a `related` entry


def cut_excerpt(words: list[str], rng: random.Random, min_chars: int = 140, max_chars: int = 340) -> str:
    """Cut the text at a word boundary, corpus style (``" ..."`` or ``" […]"``)."""
    limit = rng.randint(min_chars, max_chars)
    out, n = [], 0
    for w in words:
        if n + len(w) + 1 > limit and out:
            break
        out.append(w)
        n += len(w) + 1
    text = " ".join(out)
    if len(out) == len(words):
        return text
    return text + (" ..." if rng.random() < 0.85 else " […]")


def make_title(chain: Markov, rng: random.Random) -> str:
    words = chain.words_n(rng, rng.randint(6, 14))
    t = " ".join(words).rstrip(",;:-–—")
    return t[0].upper() + t[1:] if t else "Untitled"


class Generator:
    """Holds templates, text chains and state while a corpus is generated."""

    def __init__(self, templates: list[dict], titles: list[str], excerpts: list[str], seed: int):
        self.rng = random.Random(seed)
        self.templates = templates
        self.title_chain = Markov(titles, restart=0.35)
        self.text_chain = Markov(excerpts, restart=0.25)
        self.with_related = [i for i, t in enumerate(templates) if t.get("related")]
        self.without_related = [i for i, t in enumerate(templates) if not t.get("related")]
        self.urls: set[str] = set()
        # Per-template precomputation: URL prefix/suffix, image base, key flags.
        self.tinfo = [self._template_info(t) for t in templates]

    @staticmethod
    def _template_info(t: dict) -> dict:
        scheme, host, path = split_url(str(t.get("webUrl", "")))
        if not host:
            host = str(t["provider"].get("domain") or "news.example.com")
        path = path.split("?")[0]
        trail = "/" if path.endswith("/") else ""
        core = path.rstrip("/")
        base_dir, _, last = core.rpartition("/")
        ext = ""
        m = re.search(r"\.(html?|php|aspx?)$", last)
        if m:
            ext = m.group(0)
        # Drop date-like parts of the directory; we add the article's own date.
        dirs = [d for d in base_dir.split("/") if d and not d.isdigit()][:2]
        dated = bool(re.search(r"/(19|20)\d\d/", path))
        images = t.get("images") or []
        img = images[0] if images and isinstance(images[0], dict) else None
        img_base = None
        if img and isinstance(img.get("url"), str):
            img_base = img["url"].rsplit("/", 1)[0]
        rel = (t.get("related") or [{}])[0]
        return {
            "prefix": f"{scheme}://{host}/" + "".join(d + "/" for d in dirs),
            "dated": dated, "ext": ext, "trail": trail,
            "img_base": img_base,
            "img_keys": list(img.keys()) if img else [],
            "img_wh": (img.get("width") or 1200, img.get("height") or 630) if img else (0, 0),
            "rel_has_images": "images" in rel,
        }

    # -- building articles --------------------------------------------------
    def _url(self, tmpl: int, slug: str, date: _dt.datetime) -> str:
        info, rng = self.tinfo[tmpl], self.rng
        mid = date.strftime("%Y/%m/%d/") if info["dated"] else ""
        tail = slug
        if rng.random() < 0.3:  # many sites append a numeric article id
            tail = f"{slug}-{rng.randint(10**5, 10**8)}"
        url = f"{info['prefix']}{mid}{tail}{info['ext']}{info['trail']}"
        while url in self.urls:  # distinct articles must have distinct addresses
            url = f"{info['prefix']}{mid}{slug}-{rng.randint(10**5, 10**8)}{info['ext']}{info['trail']}"
        self.urls.add(url)
        return url

    def _image(self, tmpl: int) -> str | None:
        base = self.tinfo[tmpl]["img_base"]
        if base is None:
            return None
        name = base64.b32encode(self.rng.randbytes(10)).decode().rstrip("=").lower()
        return f"{base}/{name}.jpg"

    def new_article(self, date: _dt.datetime) -> Article:
        rng = self.rng
        pool = self.with_related if (self.with_related and rng.random() < 0.8) else (self.without_related or self.with_related)
        tmpl = rng.choice(pool)
        title = make_title(self.title_chain, rng)
        words = self.text_chain.words_n(rng, rng.randint(45, 75))
        url = self._url(tmpl, slugify(title, 70), date)
        t = self.templates[tmpl]
        return Article(
            tmpl=tmpl, title=title, words=words, excerpt=cut_excerpt(words, rng),
            date=date, url=url, amp=amp_urls(url) if "ampWebUrl" in t else None,
            image_url=self._image(tmpl), image_wh=self.tinfo[tmpl]["img_wh"],
            quality=rng.randint(1, 150),
        )

    def duplicate(self, orig: Article, kind: str) -> Article:
        """A planted duplicate of ``orig`` (see module docstring for kinds)."""
        rng = self.rng
        date = orig.date + _dt.timedelta(minutes=rng.randint(0, 48 * 60))
        if kind == "url_variant":
            tmpl, title, excerpt = orig.tmpl, orig.title, orig.excerpt
            url = url_variant(orig.url, rng)
        else:
            # Another outlet: a different template (provider), its own address.
            tmpl = rng.choice(self.with_related + self.without_related)
            title = orig.title
            excerpt = orig.excerpt if kind == "syndicated" else cut_excerpt(orig.words, rng, 100, 420)
            if kind == "excerpt_cut" and excerpt == orig.excerpt:
                # Force a different cut point: a few words shorter or longer.
                n = len(orig.excerpt.split()) - 1 + rng.choice((-4, -3, 3, 4))
                n = max(8, min(n, len(orig.words)))
                excerpt = " ".join(orig.words[:n]) + " ..."
            url = self._url(tmpl, slugify(title, 70), date)
        t = self.templates[tmpl]
        return Article(
            tmpl=tmpl, title=title, words=orig.words, excerpt=excerpt, date=date, url=url,
            amp=amp_urls(url) if "ampWebUrl" in t else None,
            image_url=self._image(tmpl) if kind != "url_variant" else orig.image_url,
            image_wh=self.tinfo[tmpl]["img_wh"], quality=rng.randint(1, 150),
        )

    # -- rendering ----------------------------------------------------------
    def related_block(self, a: Article) -> str:
        """``a`` as a ``related:`` list entry, cached since it is reused often."""
        if a.rel_block:
            return a.rel_block
        prov = self.templates[a.tmpl]["provider"]
        lines = [
            f"  - title: {q(a.title)}",
            f"    excerpt: {q(a.excerpt)}",
            f"    publishedDateTime: {fmt_dt(a.date)}",
            f"    webUrl: {q(a.url)}",
        ]
        if a.amp:
            lines.append(f"    ampWebUrl: {q(a.amp[0])}")
            lines.append(f"    cdnAmpWebUrl: {q(a.amp[1])}")
        lines += [
            "    type: article",
            "    provider:",
            f"      name: {plain(str(prov.get('name', '')))}",
            f"      domain: {plain(str(prov.get('domain', '')))}",
            f"    quality: {a.quality}",
        ]
        if a.image_url and self.tinfo[a.tmpl]["rel_has_images"]:
            w, h = a.image_wh
            lines += ["    images:", f"      - url: {q(a.image_url)}",
                      f"        width: {w}", f"        height: {h}"]
        a.rel_block = "\n".join(lines) + "\n"
        return a.rel_block

    def render(self, a: Article, related: list[Article]) -> str:
        """Front matter in the corpus' key order and quoting style."""
        rng = self.rng
        t = self.templates[a.tmpl]
        info = self.tinfo[a.tmpl]
        out: list[str] = ["---\n"]
        blank_before = {"provider", "topics", "images", "related", "secured"}
        for key, val in t.items():
            if key in blank_before:
                out.append("\n")
            if key == "title":
                out.append(f"title: {q(a.title)}\n")
            elif key == "excerpt":
                out.append(f"excerpt: {q(a.excerpt)}\n")
            elif key == "publishedDateTime":
                out.append(f"publishedDateTime: {fmt_dt(a.date)}\n")
            elif key == "originalUrl":
                orig = a.url if rng.random() < 0.9 else url_variant(a.url, rng)
                out.append(f"originalUrl: {q(orig)}\n")
            elif key == "webUrl":
                # ~5% unquoted, as some early corpus files are.
                u = a.url
                out.append(f"webUrl: {u if (rng.random() < 0.05 and ': ' not in u and ' #' not in u) else q(u)}\n")
            elif key in ("ampWebUrl", "cdnAmpWebUrl"):
                if a.amp:
                    out.append(f"{key}: {q(a.amp[0] if key == 'ampWebUrl' else a.amp[1])}\n")
            elif key == "quality":
                out.append(f"quality: {a.quality}\n")
            elif key == "heat":
                out.append(f"heat: {rng.choice((-1, rng.randint(1, 100)))}\n")
            elif key == "published":
                out.append(f"published: {'true' if rng.random() < 0.6 else 'false'}\n")
            elif key == "provider":
                out.append("provider:\n")
                out.append(f"  name: {plain(str(val.get('name', '')))}\n")
                out.append(f"  domain: {plain(str(val.get('domain', '')))}\n")
                for img in val.get("images") or []:
                    out.append(f"  images:\n    - url: {q(str(img.get('url', '')))}\n"
                               f"      width: {img.get('width', 50)}\n      height: {img.get('height', 50)}\n")
            elif key == "topics":
                out.append("topics:\n")
                for topic in val or ["AI"]:
                    out.append(f"  - {plain(str(topic))}\n")
            elif key == "images":
                if a.image_url:
                    w, h = a.image_wh
                    out.append(f"images:\n  - url: {q(a.image_url)}\n    width: {w}\n    height: {h}\n")
                    if "isCached" in info["img_keys"]:
                        out.append("    isCached: true\n")
                    if "title" in info["img_keys"]:
                        out.append(f"    title: {q(a.title)}\n")
                else:
                    out.append("images: []\n")
            elif key == "related":
                if related:
                    out.append("related:\n")
                    out.extend(self.related_block(r) for r in related)
                else:
                    out.append("related: []\n")
            elif key == "secured":
                body = base64.b64encode(rng.randbytes(rng.randint(250, 330))).decode()
                tail = base64.b64encode(rng.randbytes(16)).decode()
                out.append(f"secured: {q(body + ';' + tail)}\n")
            elif isinstance(val, bool):
                out.append(f"{key}: {'true' if val else 'false'}\n")
            elif isinstance(val, (int, float)):
                out.append(f"{key}: {val}\n")
            elif isinstance(val, str):
                out.append(f"{key}: {plain(val)}\n")
            # Unknown nested keys (none in the corpus) are left out on purpose.
        out.append("---\n\n")
        return "".join(out)

    def n_related(self, tmpl: int) -> int:
        """How many related entries: median ~5 (-> 4-6 KB files), tail to ~60."""
        if not self.templates[tmpl].get("related"):
            return 0
        r = self.rng.random()
        if r < 0.02:
            return self.rng.randint(30, 62)
        if r < 0.10:
            return self.rng.randint(10, 25)
        return self.rng.randint(2, 8)


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------
@dataclass
class GenStats:
    """What ``generate`` did; ``seconds`` is wall time including template loading."""
    out_dir: Path
    files: int
    bytes: int
    seconds: float
    kinds: dict[str, int]
    templates: int
    source: str
    labels: Path
    checked: int


def _prepare_out_dir(out: Path, force: bool) -> None:
    """Refuse to write into a non-empty folder we did not generate (safety)."""
    if out.exists() and any(out.iterdir()):
        if not force:
            raise SystemExit(f"{out} is not empty (use --force to replace a generated corpus)")
        if not (out / MARKER).exists():
            raise SystemExit(f"{out} has no {MARKER}; refusing to delete a folder we did not generate")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def generate(out_dir: Path | str, count: int = 20000, seed: int = 1,
             source: Path | str | None = DEFAULT_SOURCE, per_dir: int = 1000,
             url_variant_rate: float = URL_VARIANT_RATE, syndicated_rate: float = SYNDICATED_RATE,
             excerpt_cut_rate: float = EXCERPT_CUT_RATE, force: bool = False,
             check: int = 5) -> GenStats:
    """Write ``count`` article files under ``out_dir/NNNN/YYYY-MM-DD-slug.md``.

    Also writes ``out_dir/LABELS.tsv`` (planted duplicate pairs) and
    ``out_dir/GENERATED.json`` (parameters + stats).  ``check`` files, spread
    over the output, are re-read with ``yaml.safe_load`` as a sanity check.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    _prepare_out_dir(out, force)
    templates, titles, excerpts, used_source = load_templates(source)
    gen = Generator(templates, titles, excerpts, seed)
    rng = gen.rng

    span = (END - START).total_seconds()
    originals: list[Article] = []
    recent: list[Article] = []   # ring of recent articles, for `related`
    kinds = {"original": 0, "url_variant": 0, "syndicated": 0, "excerpt_cut": 0}
    labels: list[str] = ["a\tb\tlabel\tkind\n"]
    c1 = url_variant_rate
    c2 = c1 + syndicated_rate
    c3 = c2 + excerpt_cut_rate
    total_bytes = 0
    dir_names: set[str] = set()
    cur_dir = None
    written: list[Path] = []

    for i in range(count):
        r = rng.random()
        if r < c3 and originals:
            kind = "url_variant" if r < c1 else "syndicated" if r < c2 else "excerpt_cut"
            orig = rng.choice(originals[-500:])
            art = gen.duplicate(orig, kind)
        else:
            kind, orig = "original", None
            base = START + _dt.timedelta(seconds=span * i / max(count, 1))
            date = base + _dt.timedelta(minutes=rng.randint(0, 24 * 60))
            art = gen.new_article(date.replace(second=0, microsecond=0))
            originals.append(art)
        kinds[kind] += 1

        k = min(gen.n_related(art.tmpl), len(recent))
        related = rng.sample(recent, k) if k else []
        text = gen.render(art, related)

        sub = f"{i // per_dir:04d}"
        if sub != cur_dir:
            cur_dir = sub
            (out / sub).mkdir(exist_ok=True)
            dir_names = set()
        name = f"{art.date:%Y-%m-%d}-{slugify(art.title)}"
        if name in dir_names:
            name = f"{name}-{i}"
        dir_names.add(name)
        art.path = f"{sub}/{name}.md"
        data = text.encode("utf-8")
        with open(out / art.path, "wb") as fh:
            fh.write(data)
        total_bytes += len(data)
        written.append(out / art.path)
        if orig is not None:
            labels.append(f"{orig.path}\t{art.path}\tdup\t{kind}\n")

        recent.append(art)
        if len(recent) > 400:
            del recent[:100]

    (out / "LABELS.tsv").write_text("".join(labels), encoding="utf-8")
    checked = _check_files(written, check)
    secs = time.perf_counter() - t0
    stats = GenStats(out_dir=out, files=count, bytes=total_bytes, seconds=secs, kinds=kinds,
                     templates=len(templates), source=used_source, labels=out / "LABELS.tsv",
                     checked=checked)
    meta = {"count": count, "seed": seed, "per_dir": per_dir, "source": used_source,
            "templates": len(templates), "bytes": total_bytes, "seconds": round(secs, 3),
            "kinds": kinds, "rates": {"url_variant": url_variant_rate, "syndicated": syndicated_rate,
                                      "excerpt_cut": excerpt_cut_rate}}
    (out / MARKER).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return stats


def _check_files(paths: list[Path], n: int) -> int:
    """Parse ``n`` evenly spread files with ``yaml.safe_load``; raise on a bad one.

    Why: the YAML is hand-written for speed, so make sure it stays valid and
    has the fields the pipeline keys on.
    """
    if not paths or n <= 0:
        return 0
    step = max(1, len(paths) // n)
    picked = paths[::step][:n]
    for p in picked:
        doc = yaml.safe_load(_split_front_matter(p.read_text(encoding="utf-8")))
        for key in ("title", "excerpt", "webUrl", "publishedDateTime", "provider"):
            if key not in doc:
                raise ValueError(f"{p}: missing {key}")
        if not isinstance(doc["publishedDateTime"], _dt.datetime):
            raise ValueError(f"{p}: publishedDateTime is not a timestamp")
    return len(picked)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                    help="real corpus used as templates (built-in templates if absent)")
    ap.add_argument("--per-dir", type=int, default=1000, help="files per subfolder")
    ap.add_argument("--check", type=int, default=5, help="files re-parsed with yaml.safe_load")
    ap.add_argument("--force", action="store_true", help="replace a previously generated OUT_DIR")
    args = ap.parse_args(argv)
    st = generate(args.out_dir, count=args.count, seed=args.seed, source=args.source,
                  per_dir=args.per_dir, force=args.force, check=args.check)
    print(f"wrote {st.files} files, {st.bytes / 1e6:.1f} MB ({st.bytes / max(st.files, 1) / 1024:.1f} KiB avg) "
          f"in {st.seconds:.2f}s ({st.files / st.seconds:,.0f} files/s) to {st.out_dir}")
    print(f"templates: {st.templates} from {st.source}; kinds: {st.kinds}; "
          f"checked {st.checked} files with yaml.safe_load; labels: {st.labels}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
