#!/usr/bin/env python3
"""Generate a large synthetic corpus of news-article Markdown files for benchmarks.

Why this exists: the real corpus (``/work/shared/corpus``, 238 files) is far too
small to measure ingest throughput, and it may not be copied into the repository.
This module uses the real files as *templates* (read with PyYAML at generation
time) and writes N files of the same shape -- YAML front matter with nested
``provider``, ``images``, ``related`` and an empty body -- so that a benchmark
exercises the same parsing, flattening and dedup code paths as real data.

Design choices (and why):

* Text is made by splicing short runs of words taken at random from the corpus
  titles and excerpts (``PhraseMixer``), so two generated articles share no
  long run of words and "distinct" articles are really distinct for a
  near-duplicate detector (re-using a template's text with a few words swapped
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
  is far slower and would not lay the files out like the real ones.  A few
  files are re-read with ``yaml.safe_load`` at the end as a check.
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
from concurrent.futures import ThreadPoolExecutor
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
    ``related`` entries, which triples the text available to ``PhraseMixer``.
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


class PhraseMixer:
    """Makes new text by splicing short runs (2-5 words) of the training text.

    Why: it reads like news copy, costs ~15 random draws per excerpt (a
    per-word Markov walk was most of the generator's CPU time), and phrases
    start at random positions in ~10^4-10^5 words, so two generated texts
    almost never share more than a stray phrase: "distinct" articles stay
    distinct for a shingle/MinHash near-duplicate detector.
    """

    def __init__(self, texts: list[str], min_run: int = 2, max_run: int = 5):
        self.words: list[str] = []
        self.starts: list[str] = []
        for text in texts:
            toks = text.split()
            # Drop the truncation marker; we add our own when cutting excerpts.
            while toks and toks[-1] in ("...", "[…]", "…", "[...]"):
                toks.pop()
            if toks:
                self.starts.append(toks[0])
                self.words.extend(toks)
        self.min_run, self.span = min_run, max_run - min_run + 1

    def words_n(self, rng: random.Random, n: int) -> list[str]:
        """Return ``n`` words: a real opening word, then spliced runs."""
        words, rand = self.words, rng.random
        last = len(words) - self.min_run - self.span
        out = [self.starts[int(rand() * len(self.starts))]]
        while len(out) < n:
            i = int(rand() * last)
            out += words[i:i + self.min_run + int(rand() * self.span)]
        del out[n:]
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
                            h=f"{rng.getrandbits(80):020x}")
        return url + ("&" if "?" in url else "?") + params
    if r < 0.85:
        amp, cdn = amp_urls(url)
        return amp if rng.random() < 0.8 else cdn
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
    text = " ".join(words)
    limit = rng.randint(min_chars, max_chars)
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit + 1)
    if cut <= 0:
        cut = text.find(" ", limit) if " " in text[limit:] else len(text)
    return text[:cut] + (" ..." if rng.random() < 0.85 else " […]")


def make_title(chain: PhraseMixer, rng: random.Random) -> str:
    words = chain.words_n(rng, rng.randint(6, 14))
    t = " ".join(words).rstrip(",;:-–—")
    return t[0].upper() + t[1:] if t else "Untitled"


class Generator:
    """Holds templates, text chains and state while a corpus is generated."""

    def __init__(self, templates: list[dict], titles: list[str], excerpts: list[str], seed: int):
        self.rng = random.Random(seed)
        self.templates = templates
        self.title_chain = PhraseMixer(titles)
        self.text_chain = PhraseMixer(excerpts)
        self.with_related = [i for i, t in enumerate(templates) if t.get("related")]
        self.without_related = [i for i, t in enumerate(templates) if not t.get("related")]
        self.urls: set[str] = set()
        # Per-template precomputation: URL prefix/suffix, image base, key flags.
        self.tinfo = [self._template_info(t) for t in templates]
        self.formats = [self._build_format(t) for t in templates]

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
            "img_cached": bool(img and "isCached" in img),
            "img_title": bool(img and "title" in img),
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
        return f"{base}/{self.rng.getrandbits(64):016x}.jpg"

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
        if kind == "url_variant":
            amp = orig.amp  # the site's AMP page is the same for both addresses
        else:
            amp = amp_urls(url) if "ampWebUrl" in t else None
        return Article(
            tmpl=tmpl, title=title, words=orig.words, excerpt=excerpt, date=date, url=url,
            amp=amp,
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

    @staticmethod
    def _build_format(t: dict) -> str:
        """Turn a template into a ``str.format`` pattern, once per template.

        Why: rendering then costs one C-level ``format`` call per file instead
        of a Python loop over the keys.  Keys keep the template's order and
        the corpus' layout (blank line before each block); constant parts
        (category, type, provider, topics) are baked in.
        """
        def lit(x: str) -> str:
            return x.replace("{", "{{").replace("}", "}}")

        parts = ["---\n"]
        for key, val in t.items():
            if key in ("provider", "topics", "images", "related", "secured"):
                parts.append("\n")
            if key in ("title", "excerpt", "webUrl", "quality", "heat", "published", "secured"):
                parts.append(f"{key}: {{{key}}}\n")
            elif key == "publishedDateTime":
                parts.append("publishedDateTime: {date}\n")
            elif key == "originalUrl":
                parts.append("originalUrl: {original}\n")
            elif key in ("ampWebUrl", "cdnAmpWebUrl"):
                parts.append(f"{key}: {{{'amp' if key == 'ampWebUrl' else 'cdn'}}}\n")
            elif key == "images":
                parts.append("{images}")
            elif key == "related":
                parts.append("{related}")
            elif key == "provider":
                block = (f"provider:\n  name: {plain(str(val.get('name', '')))}\n"
                         f"  domain: {plain(str(val.get('domain', '')))}\n")
                for img in val.get("images") or []:
                    block += (f"  images:\n    - url: {q(str(img.get('url', '')))}\n"
                              f"      width: {img.get('width', 50)}\n      height: {img.get('height', 50)}\n")
                parts.append(lit(block))
            elif key == "topics":
                parts.append(lit("topics:\n" + "".join(f"  - {plain(str(x))}\n" for x in (val or ["AI"]))))
            elif isinstance(val, bool):
                parts.append(f"{key}: {'true' if val else 'false'}\n")
            elif isinstance(val, (int, float)):
                parts.append(f"{key}: {val}\n")
            elif isinstance(val, str):
                parts.append(lit(f"{key}: {plain(val)}\n"))
            # Other nested keys (none in the corpus) are left out on purpose.
        parts.append("---\n\n")
        return "".join(parts)

    def render(self, a: Article, related: list[Article]) -> str:
        """Front matter in the corpus' key order and quoting style."""
        rng = self.rng
        rand = rng.random
        info = self.tinfo[a.tmpl]
        url = a.url
        if a.image_url:
            w, h = a.image_wh
            images = f"images:\n  - url: {q(a.image_url)}\n    width: {w}\n    height: {h}\n"
            if info["img_cached"]:
                images += "    isCached: true\n"
            if info["img_title"]:
                images += f"    title: {q(a.title)}\n"
        else:
            images = "images: []\n"
        if related:
            rel = "related:\n" + "".join([r.rel_block or self.related_block(r) for r in related])
        else:
            rel = "related: []\n"
        secured = base64.b64encode(rng.randbytes(250 + int(rand() * 80))).decode()
        return self.formats[a.tmpl].format(
            title=q(a.title), excerpt=q(a.excerpt), date=fmt_dt(a.date),
            # ~5% unquoted URLs, as some early corpus files have.
            webUrl=url if (rand() < 0.05 and ": " not in url and " #" not in url) else q(url),
            original=q(url if rand() < 0.9 else url_variant(url, rng)),
            amp=q(a.amp[0]) if a.amp else '""', cdn=q(a.amp[1]) if a.amp else '""',
            quality=a.quality, heat=-1 if rand() < 0.4 else 1 + int(rand() * 100),
            published="true" if rand() < 0.6 else "false",
            images=images, related=rel,
            secured=q(secured + ";" + base64.b64encode(rng.randbytes(16)).decode()),
        )

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
    cpu_seconds: float  # user+sys of all threads; wall time varies with disk and load
    kinds: dict[str, int]
    templates: int
    source: str
    labels: Path
    checked: int


def _prepare_out_dir(out: Path, force: bool) -> None:
    """Refuse to write into a non-empty folder we did not generate (safety)."""
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} is not empty (use --force to replace a generated corpus)")
        if not (out / MARKER).exists():
            raise FileExistsError(f"{out} has no {MARKER}; refusing to delete a folder we did not generate")
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
    t0, c0 = time.perf_counter(), time.process_time()
    out = Path(out_dir)
    _prepare_out_dir(out, force)
    root = str(out)
    templates, titles, excerpts, used_source = load_templates(source)
    gen = Generator(templates, titles, excerpts, seed)
    rng = gen.rng

    span = (END - START).total_seconds()
    originals: list[Article] = []  # recent originals only: duplicates point at these
    recent: list[Article] = []     # recent articles of any kind, for `related`
    kinds = {"original": 0, "url_variant": 0, "syndicated": 0, "excerpt_cut": 0}
    labels: list[str] = ["a\tb\tlabel\tkind\n"]
    c1 = url_variant_rate
    c2 = c1 + syndicated_rate
    c3 = c2 + excerpt_cut_rate
    total_bytes = 0
    dir_names: set[str] = set()
    cur_dir = None
    written: list[str] = []
    # Writing is handed to threads: open/write/close release the GIL, so on
    # 2 cores the kernel's file-creation work overlaps with generating text.
    pool = ThreadPoolExecutor(max_workers=2)
    pending: list = []
    batch: list[tuple[str, bytes]] = []

    for i in range(count):
        r = rng.random()
        if r < c3 and originals:
            kind = "url_variant" if r < c1 else "syndicated" if r < c2 else "excerpt_cut"
            orig = rng.choice(originals)
            art = gen.duplicate(orig, kind)
        else:
            kind, orig = "original", None
            base = START + _dt.timedelta(seconds=span * i / max(count, 1))
            date = base + _dt.timedelta(minutes=rng.randint(0, 24 * 60))
            art = gen.new_article(date.replace(second=0, microsecond=0))
            originals.append(art)
            if len(originals) > 600:
                del originals[:100]
        kinds[kind] += 1

        k = min(gen.n_related(art.tmpl), len(recent))
        related = rng.sample(recent, k) if k else []
        text = gen.render(art, related)

        sub = f"{i // per_dir:04d}"
        if sub != cur_dir:
            cur_dir = sub
            os.makedirs(os.path.join(root, sub), exist_ok=True)
            dir_names = set()
        name = f"{art.date:%Y-%m-%d}-{slugify(art.title)}"
        if name in dir_names:
            name = f"{name}-{i}"
        dir_names.add(name)
        art.path = f"{sub}/{name}.md"
        data = text.encode("utf-8")
        full = os.path.join(root, art.path)
        batch.append((full, data))
        if len(batch) >= 200:
            pending.append(pool.submit(_write_batch, batch))
            batch = []
        total_bytes += len(data)
        written.append(full)
        if orig is not None:
            labels.append(f"{orig.path}\t{art.path}\tdup\t{kind}\n")

        recent.append(art)
        if len(recent) > 400:
            del recent[:100]

    if batch:
        pending.append(pool.submit(_write_batch, batch))
    pool.shutdown(wait=True)
    for fut in pending:
        fut.result()  # re-raise any write error
    (out / "LABELS.tsv").write_text("".join(labels), encoding="utf-8")
    checked = _check_files(written, check)
    secs = time.perf_counter() - t0
    cpu = time.process_time() - c0
    stats = GenStats(out_dir=out, files=count, bytes=total_bytes, seconds=secs, cpu_seconds=cpu, kinds=kinds,
                     templates=len(templates), source=used_source, labels=out / "LABELS.tsv",
                     checked=checked)
    meta = {"count": count, "seed": seed, "per_dir": per_dir, "source": used_source,
            "templates": len(templates), "bytes": total_bytes, "seconds": round(secs, 3), "cpu_seconds": round(cpu, 3),
            "kinds": kinds, "rates": {"url_variant": url_variant_rate, "syndicated": syndicated_rate,
                                      "excerpt_cut": excerpt_cut_rate}}
    (out / MARKER).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return stats


def _write_batch(batch: list[tuple[str, bytes]]) -> None:
    """Write files with raw ``os`` calls (less overhead than ``open()``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    for path, data in batch:
        fd = os.open(path, flags, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def _check_files(paths: list[str], n: int) -> int:
    """Parse ``n`` evenly spread files with ``yaml.safe_load``; raise on a bad one.

    Why: the YAML is hand-written for speed, so make sure it stays valid and
    has the fields the pipeline keys on.
    """
    if not paths or n <= 0:
        return 0
    step = max(1, len(paths) // n)
    picked = paths[::step][:n]
    for p in picked:
        with open(p, encoding="utf-8") as fh:
            doc = yaml.safe_load(_split_front_matter(fh.read()))
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
    try:
        st = generate(args.out_dir, count=args.count, seed=args.seed, source=args.source,
                      per_dir=args.per_dir, force=args.force, check=args.check)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {st.files} files, {st.bytes / 1e6:.1f} MB ({st.bytes / max(st.files, 1) / 1024:.1f} KiB avg) "
          f"in {st.seconds:.2f}s ({st.files / st.seconds:,.0f} files/s, cpu {st.cpu_seconds:.2f}s) to {st.out_dir}")
    print(f"templates: {st.templates} from {st.source}; kinds: {st.kinds}; "
          f"checked {st.checked} files with yaml.safe_load; labels: {st.labels}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
