#!/usr/bin/env python3
"""Cost of each enricher, in µs per article, on the real corpus; and what language it finds.

    .venv/bin/python tests/benchmarks/bench_enrich.py [CORPUS] [--rounds N] [--with-opt-in]

Files are parsed and validated once; then every enricher runs over every article, in registry
order (each sees what the earlier ones filled, as in the pipeline), ``--rounds`` times. The
figure per enricher is the best round of process CPU time (the machine is shared and noisy;
the minimum is the least disturbed). ``build`` is the whole dedupe + enrich step of ``prepare.build``. Caches
(related URLs, provider domains) are warm after the first round, as in a long backfill.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from pipeline import enrich, parse, validate
from pipeline.config import Settings
from pipeline.enrichers import REGISTRY, Context
from pipeline.ingest import options_from
from pipeline.prepare import Options, _image, build

# CPU time of this process: on a shared, loaded machine wall time mostly measures the neighbours
CLOCK = time.process_time
DEFAULT_CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def load(corpus: Path) -> list[tuple[object, object]]:
    out = []
    for path in sorted(corpus.rglob("*.md")):
        got = parse.read(str(path), 5_000_000)
        facts, data = got  # type: ignore[misc]
        parsed = parse.parse(facts, data)
        article = validate.validate(parsed)  # type: ignore[arg-type]
        if not isinstance(article, validate.Article):
            continue
        out.append((article, facts))
    return out


def fresh_context(article, prepared_row, options: Options) -> Context:
    """The context as build() makes it before enrichment."""
    row = {k: prepared_row[k] for k in ("id", "canonical_url", "body", "published_at",
                                        "amp_url", "cdn_amp_url")}
    row.update(title=article.title, excerpt=article.excerpt, provider_id=None, topics="[]")
    images = [_image(i, "article") for i in article.images]
    if article.provider:
        images += [_image(i, "provider") for i in article.provider.images]
    related = [{"url": r.originalUrl or r.webUrl, "canonical_url": None, "target_id": None,
                "title": r.title, "excerpt": r.excerpt,
                "provider_name": r.provider.name if r.provider else None,
                "provider_domain": r.provider.domain if r.provider else None,
                "published_at": None, "quality": r.quality} for r in article.related]
    return Context(article, row, None, list(article.topics), images, related,
                   datetime.now(UTC), options.tracking_params)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--with-opt-in", action="store_true", help="also time opt-in enrichers")
    args = ap.parse_args()
    settings = Settings()
    options = options_from(settings)
    names = [e.name for e in REGISTRY if e.default or args.with_opt_in]
    items = load(args.corpus)
    n = len(items)
    base_rows = [build(a, f, Options(options.max_file_bytes, options.tracking_params, ()))
                 .article for a, f in items]
    best: dict[str, float] = {}
    enrichers = [e for e in REGISTRY if e.name in names]
    for _ in range(args.rounds):
        contexts = [fresh_context(a, r, options) for (a, _f), r in zip(items, base_rows)]
        for e in enrichers:  # one enricher over every article, then the next (registry order)
            opts = options.enrich_options.get(e.name)
            t0 = CLOCK()
            for ctx in contexts:
                ctx.row.update(e.fn(ctx, opts))
            us = (CLOCK() - t0) * 1e6 / n
            best[e.name] = min(best.get(e.name, us), us)
    full = Options(options.max_file_bytes, options.tracking_params, tuple(names),
                   options.enrich_options)
    empty = Options(options.max_file_bytes, options.tracking_params, ())
    build_us: dict[str, float] = {}
    for _ in range(args.rounds):
        for label, opts in (("with", full), ("without", empty)):
            t0 = CLOCK()
            for a, f in items:
                build(a, f, opts)
            us = (CLOCK() - t0) * 1e6 / n
            build_us[label] = min(build_us.get(label, us), us)

    langs = Counter()
    low = []
    for ctx in (fresh_context(a, r, options) for (a, _f), r in zip(items, base_rows)):
        enrich.enrich(ctx, ["text", "language"], options.enrich_options)
        langs[ctx.row["language"]] += 1
        if ctx.row["language"] != "en" or (ctx.row["language_confidence"] or 0) < 0.8:
            low.append((ctx.row["language"], ctx.row["language_confidence"], ctx.row["title"][:70]))
    result = {
        "articles": n,
        "us_per_article": {k: round(v, 1) for k, v in best.items()},
        "enrichers_total_us": round(sum(best.values()), 1),
        "build_with_enrichers_us": round(build_us["with"], 1),
        "build_without_enrichers_us": round(build_us["without"], 1),
        "languages": dict(langs),
        "not_english_or_unsure": low,
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
