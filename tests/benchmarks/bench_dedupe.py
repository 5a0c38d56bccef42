#!/usr/bin/env python3
"""Dedupe cost per article, and whether it grows with the database.

    .venv/bin/python tests/benchmarks/bench_dedupe.py [--sizes 10000 100000] [--measure 2000]

Synthetic articles (titles and excerpts drawn from a Zipf-distributed vocabulary, so that common
phrases are shared as in real news, with ~12% planted copies: the same text at another address,
an excerpt cut shorter, a dateline added) are prepared with the real pure half
(``prepare.build``) and written with the real single writer (``Store.write_batch``) into a
database filled to each size; then ``--measure`` more articles are timed. Reported per article:
the pure dedupe part (features + keys, in the workers), the whole writer, and the writer's
clustering part (``Clusters.attach``), plus the database's size.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline import clusters as clusters_mod  # noqa: E402
from pipeline import dedupe, logs  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.ingest import options_from  # noqa: E402
from pipeline.prepare import build  # noqa: E402
from pipeline.records import FileFacts  # noqa: E402
from pipeline.store import Store  # noqa: E402
from pipeline.validate import Article  # noqa: E402


class Feed:
    """A deterministic stream of article documents with planted copies."""

    def __init__(self, seed: int = 1, vocabulary: int = 20_000) -> None:
        self.rng = random.Random(seed)
        syllables = ["ka", "lo", "mi", "ren", "tu", "sa", "vor", "el", "din", "qua", "pe", "zor"]
        words = set()
        while len(words) < vocabulary:
            words.add("".join(self.rng.choice(syllables) for _ in range(self.rng.randint(1, 4))))
        self.words = sorted(words)
        self.weights = [1 / (rank + 1) for rank in range(vocabulary)]  # Zipf
        self.recent: list[dict] = []
        self.planted: list[tuple[int, int]] = []  # (copy, original) article numbers
        self.n = 0
        self.start = datetime(2020, 1, 1, tzinfo=UTC)

    def _text(self, n: int) -> str:
        return " ".join(self.rng.choices(self.words, self.weights, k=n)).capitalize() + "."

    def next(self) -> dict:
        self.n += 1
        rng = self.rng
        when = self.start + timedelta(minutes=7 * self.n + rng.randint(0, 600))
        doc = {
            "title": self._text(rng.randint(6, 12))[:-1],
            "excerpt": " ".join(self._text(rng.randint(8, 16)) for _ in range(rng.randint(2, 4))),
            "publishedDateTime": when.isoformat(),
            "webUrl": f"https://site{rng.randint(1, 400)}.example/news/{self.n}",
            "provider": {"name": "Site", "domain": f"site{rng.randint(1, 400)}.example"},
            "topics": ["AI"],
            "images": [{"url": f"https://img.example/{self.n}.jpg", "width": 800, "height": 600}],
        }
        roll = rng.random()
        if self.recent and roll < 0.12:
            original = rng.choice(self.recent)
            self.planted.append((self.n, original["n"]))
            doc["title"] = original["title"] if roll < 0.08 else self._text(9)[:-1]
            if roll < 0.04:
                doc["excerpt"] = original["excerpt"]
            elif roll < 0.08:
                doc["excerpt"] = original["excerpt"][: len(original["excerpt"]) * 2 // 3] + " ..."
            else:
                doc["excerpt"] = "LONDON, (Wire) -- " + original["excerpt"]
        self.recent = (self.recent + [{**doc, "n": self.n}])[-500:]
        return doc


def prepare(feed: Feed, count: int, options) -> tuple[list, float]:
    """Prepared records, and the µs per article of the pure dedupe part (features + keys)."""
    out, pure = [], 0.0
    params = options.dedupe_params
    for _ in range(count):
        article = Article.model_validate(feed.next())
        item = build(article, FileFacts(f"/bench/{feed.n}.md", 1000, feed.n, f"{feed.n:064x}"),
                     options)
        t = time.perf_counter()
        f = dedupe.features(item.article, params)
        dedupe.lookup_keys(f, params)
        pure += time.perf_counter() - t
        out.append(item)
    return out, pure / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--measure", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    logs.configure(level="error")
    settings = Settings()
    options = options_from(settings)

    attach_time = [0.0]
    original_attach = clusters_mod.Clusters.attach

    def timed_attach(self, *a, **k):
        t = time.perf_counter()
        try:
            return original_attach(self, *a, **k)
        finally:
            attach_time[0] += time.perf_counter() - t

    clusters_mod.Clusters.attach = timed_attach  # type: ignore[method-assign]

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        store = Store(db, dedupe=settings.dedupe.params())
        feed = Feed()
        have = 0
        print(f"{'articles':>9} {'pure µs':>8} {'writer µs':>10} {'cluster µs':>11} "
              f"{'files/s':>8} {'clusters':>9} {'keys rows':>10} {'db MB':>7} {'planted found':>14}")
        for size in sorted(args.sizes):
            t0 = time.perf_counter()
            while have < size:
                batch, _ = prepare(feed, min(args.batch, size - have), options)
                store.write_batch(batch)
                have += len(batch)
            fill = time.perf_counter() - t0
            items, pure_us = prepare(feed, args.measure, options)
            attach_time[0] = 0.0
            t = time.perf_counter()
            for i in range(0, len(items), args.batch):
                store.write_batch(items[i:i + args.batch])
            elapsed = time.perf_counter() - t
            have += len(items)
            n_clusters = store.conn.execute("SELECT count(*) FROM clusters").fetchone()[0]
            n_keys = store.conn.execute("SELECT count(*) FROM dedupe_keys").fetchone()[0]
            mb = sum(os.path.getsize(p) for p in Path(tmp).iterdir()) / 1e6
            group = dict(store.conn.execute(
                "SELECT s.path, coalesce(a.cluster_id, a.id) FROM sources s "
                "JOIN articles a ON a.id = s.article_id"))
            found = sum(group[f"/bench/{a}.md"] == group[f"/bench/{b}.md"]
                        for a, b in feed.planted)
            false = store.conn.execute("SELECT coalesce(sum(size), 0) FROM clusters").fetchone()[0]
            print(f"{size:>9} {pure_us:>8.1f} {elapsed / len(items) * 1e6:>10.1f} "
                  f"{attach_time[0] / len(items) * 1e6:>11.1f} {len(items) / elapsed:>8.0f} "
                  f"{n_clusters:>9} {n_keys:>10} {mb:>7.0f} {found:>6}/{len(feed.planted):<7}"
                  f"  (filled in {fill:.0f} s; {false} articles in clusters)",
                  flush=True)
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
