#!/usr/bin/env python3
"""Why the story clusters differ from LABELS.tsv: missed and false pairs, with their scores.

    .venv/bin/python tests/benchmarks/dedupe_confusion.py [CORPUS] [--db FILE]

Backfills CORPUS (default ../shared/corpus) into a fresh database (a temporary one unless --db),
then prints pairwise precision and recall and, for every ``dup`` pair not grouped and every
unlabelled pair grouped, the measures ``dedupe.compare`` looks at.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline import dedupe, logs  # noqa: E402
from pipeline.clusters import _CANDIDATE_COLUMNS  # noqa: E402
from pipeline.config import load_settings  # noqa: E402
from pipeline.ingest import backfill  # noqa: E402
from tests.labels import evaluate, groups, read_labels  # noqa: E402


def explain(conn: sqlite3.Connection, root: Path, a: str, b: str, params) -> str:
    cols = ", ".join(f"a.{c}" for c in _CANDIDATE_COLUMNS)
    feats = []
    for rel in (a, b):
        row = conn.execute(
            f"SELECT {cols} FROM sources s JOIN articles a ON a.id = s.article_id "
            "WHERE s.path = ?", (str(root / rel),)).fetchone()
        feats.append((row, dedupe.features(dict(zip(_CANDIDATE_COLUMNS, row)), params)))
    (ra, fa), (rb, fb) = feats
    match = dedupe.compare(fa, fb, params)
    lines = [
        f"  {a}\n  {b}",
        f"    decision: {match}",
        f"    excerpt containment {dedupe.containment(fa.excerpt, fb.excerpt):.3f} "
        f"(words {fa.excerpt_words}/{fb.excerpt_words}), text containment "
        f"{dedupe.containment(fa.text, fb.text):.3f}, title containment "
        f"{dedupe.containment(fa.title_shingles, fb.title_shingles):.3f}, providers "
        f"{fa.provider}/{fb.provider}",
        f"    titles: {ra[2]!r} / {rb[2]!r}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--db")
    args = parser.parse_args()
    corpus = Path(args.corpus).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(args.db or Path(tmp) / "confusion.db")
        settings = load_settings(None, db=str(db), log_file="", log_level="error", workers=2)
        logs.configure(level="error")
        backfill(settings, [str(corpus)])
        result = evaluate(groups(db, corpus), read_labels(corpus))
        print(f"precision {result.precision:.3f} ({result.grouped_dup} dup / "
              f"{result.grouped_dup + result.grouped_other} grouped non-event pairs), "
              f"recall {result.recall:.3f} ({result.grouped_dup} / {result.dup_total} dup pairs)")
        params = settings.dedupe.params()
        conn = sqlite3.connect(db)
        for title, pairs in (("missed pairs", result.missed), ("false pairs", result.false)):
            print(f"\n{title}: {len(pairs)}")
            for a, b in pairs:
                print(explain(conn, corpus, a, b, params))
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
