"""Pairwise evaluation of story clusters against a LABELS.tsv (the corpus README's definition).

Two files are *grouped* when they became the same article (level 1) or articles of one cluster.
Precision = grouped pairs labelled ``dup`` / grouped pairs not labelled ``event``;
recall = ``dup`` pairs grouped / all ``dup`` pairs. ``event`` pairs are neutral.
"""

from __future__ import annotations

import csv
import itertools
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path


def read_labels(corpus: Path) -> dict[frozenset[str], str]:
    with open(corpus / "LABELS.tsv", encoding="utf-8", newline="") as fh:
        return {frozenset((r["a"], r["b"])): r["label"] for r in csv.DictReader(fh, delimiter="\t")}


def groups(db_path: Path, root: Path) -> dict[str, int]:
    """Relative file path -> group (cluster id, else article id) for every ingested file."""
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute(
            "SELECT s.path, coalesce(a.cluster_id, a.id) FROM sources s "
            "JOIN articles a ON a.id = s.article_id WHERE s.status = 'ingested'"
        ).fetchall()
    finally:
        conn.close()
    return {os.path.relpath(path, root): group for path, group in rows}


@dataclass
class Evaluation:
    grouped_dup: int = 0
    grouped_other: int = 0
    dup_total: int = 0
    missed: list[tuple[str, str]] = field(default_factory=list)
    false: list[tuple[str, str]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        grouped = self.grouped_dup + self.grouped_other
        return self.grouped_dup / grouped if grouped else 1.0

    @property
    def recall(self) -> float:
        return self.grouped_dup / self.dup_total if self.dup_total else 1.0


def evaluate(group_of: dict[str, int], labels: dict[frozenset[str], str]) -> Evaluation:
    result = Evaluation()
    result.dup_total = sum(1 for label in labels.values() if label == "dup")
    for a, b in itertools.combinations(sorted(group_of), 2):
        label = labels.get(frozenset((a, b)))
        together = group_of[a] == group_of[b]
        if label == "dup":
            if together:
                result.grouped_dup += 1
            else:
                result.missed.append((a, b))
        elif together and label != "event":
            result.grouped_other += 1
            result.false.append((a, b))
    return result
