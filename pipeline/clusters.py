"""Story clusters: the database half of dedupe levels 1 (AMP aliases), 2 and 3.

Called by the single writer inside its batch transaction. State lives in SQLite only, so a
restart needs no rebuild and memory does not grow with the database:

- ``dedupe_keys (key, article_id)``: every article filed under its LSH band keys, exact-text key,
  title keys and URL keys (``dedupe.lookup_keys``). Candidates of a new article are the articles
  sharing a key with it: one indexed query.
- ``dedupe_links (article_id, other_id, level, score, rule)``: confirmed duplicate pairs, stored
  both ways. A cluster is a connected component of these links, so the clusters depend only on
  which pairs are duplicates, never on the order the files came in.
- ``articles.cluster_id`` / ``articles.duplicate_of``: the component's representative (earliest
  published member, ties by smaller id); the cluster id *is* the representative's id. An article
  with no duplicate has NULL in both (and no ``clusters`` row), so ``clusters`` lists only real
  stories with copies and a representative always satisfies ``duplicate_of IS NULL``.
- ``clusters``: one row per cluster with its size, first/last publication and providers,
  refreshed once per batch for the clusters the batch touched.

When an article's text changes, or it is deleted, it is detached (its keys and links removed) and
what remains of its cluster is split into its connected components again; a changed article is
then attached afresh.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import dedupe
from .dedupe import DedupeParams, Features, Match
from .logs import get_logger

log = get_logger()

_CANDIDATE_COLUMNS = (
    "id", "canonical_url", "title", "excerpt", "provider_id", "published_at", "amp_url",
    "cdn_amp_url",
)


@dataclass(slots=True)
class Placement:
    """Where an article ended up, and why: its best match (lowest level, highest score)."""

    level: int | None = None
    matched_id: int | None = None
    score: float | None = None
    rule: str = ""
    cluster_id: int | None = None
    links: int = 0

    def describe(self) -> str:
        if self.level is None:
            return "no duplicate"
        return (f"level {self.level} duplicate of {self.matched_id} ({self.rule}, score "
                f"{self.score}); cluster {self.cluster_id}, {self.links} link(s)")


# A candidate's features (~11 KB each: sets of shingles) are rarely needed twice: on 20,000
# generated files 8,192 entries gave 195 hits for 1,942 misses and 1,024 gave 180, but 8,192
# entries held ~90 MB of the writer's memory once full (at 100,000 files).
@lru_cache(maxsize=1024)
def _features(values: tuple[Any, ...], params: DedupeParams) -> Features:
    return dedupe.features(dict(zip(_CANDIDATE_COLUMNS, values, strict=True)), params)


def chunks(items: list[Any], size: int = 500) -> Iterable[list[Any]]:
    """``items`` in slices of ``size``: SQLite binds at most so many parameters a statement."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Clusters:
    def __init__(self, conn: sqlite3.Connection, params: DedupeParams) -> None:
        self.conn = conn
        self.params = params
        self.touched: set[int] = set()  # cluster ids whose clusters row needs a refresh
        # inside ``batch``: key -> the articles filed under it (the database's rows and the
        # batch's own), for every key looked up so far; and the batch's rows not written yet
        self._index: dict[int, set[int]] | None = None
        self._pending: list[tuple[int, int]] = []

    @contextlib.contextmanager
    def batch(self, keys: Iterable[int]) -> Iterator[None]:
        """Look up the keys a batch of articles is filed under in one query, and write the
        batch's own ``dedupe_keys`` rows in one key-ordered ``executemany`` at its end.

        Per article, an INSERT plus a GROUP BY look-up cost the single writer ~130 µs a file; per
        batch, ~45 µs (measured on 20,000 files). Every ``attach`` happens inside one.
        """
        self._index, self._pending = {}, []
        try:
            self._fetch(keys)
            yield
            self._write_pending()
        finally:
            self._index, self._pending = None, []

    def _fetch(self, keys: Iterable[int]) -> None:
        assert self._index is not None
        wanted = sorted({k for k in keys if k not in self._index})
        for chunk in chunks(wanted):
            for k in chunk:
                self._index[k] = set()
            for key, aid in self.conn.execute(
                f"SELECT key, article_id FROM dedupe_keys WHERE key IN "
                f"({', '.join('?' for _ in chunk)})", chunk,
            ):
                self._index[key].add(aid)

    def _write_pending(self) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO dedupe_keys (key, article_id) VALUES (?, ?)",
            sorted(self._pending),
        )
        self._pending.clear()

    def _candidates(self, aid: int, keys: list[int]) -> list[int]:
        """The other articles sharing the most keys with this one (ties: smaller id first)."""
        assert self._index is not None, "attach runs inside Clusters.batch"
        self._fetch(keys)
        shared = Counter(other for k in set(keys) for other in self._index[k] if other != aid)
        return sorted(shared, key=lambda other: (-shared[other], other))[
            :self.params.max_candidates]

    # -- the writer's entry points -------------------------------------------------------------

    def attach(self, aid: int, article: Mapping[str, Any], keys: list[int]) -> Placement:
        """File a (new or changed) article under its keys, link its duplicates, merge clusters.

        ``article`` is its row; its features are computed here, only when it has candidates
        (one article in ten): shipped from the workers, they cost the writer's process ~50 µs a
        file to unpickle, and computing them ~60 µs an article.
        """
        conn = self.conn
        candidates = self._candidates(aid, keys)
        for k in keys:
            self._index[k].add(aid)  # type: ignore[index]
        self._pending += [(k, aid) for k in keys]
        if not candidates:
            return Placement()
        cols = ", ".join(_CANDIDATE_COLUMNS)
        rows = conn.execute(
            f"SELECT {cols}, cluster_id FROM articles WHERE id IN "
            f"({', '.join('?' for _ in candidates)}) AND deleted_at IS NULL",
            candidates,
        ).fetchall()
        matches: list[tuple[Match, int, int | None]] = []
        features = _features(tuple(article.get(c) for c in _CANDIDATE_COLUMNS), self.params)
        for row in rows:
            match = dedupe.compare(features, _features(tuple(row[:-1]), self.params), self.params)
            if match is not None:
                matches.append((match, row[0], row[-1]))
        if not matches:
            return Placement()
        conn.executemany(
            "INSERT OR REPLACE INTO dedupe_links (article_id, other_id, level, score, rule) "
            "VALUES (?, ?, ?, ?, ?)",
            [(a, b, m.level, m.score, m.rule) for m, other, _ in matches
             for a, b in ((aid, other), (other, aid))],
        )
        members = {aid}
        for cid in {c for _, _, c in matches if c is not None}:
            members.update(r[0] for r in conn.execute(
                "SELECT id FROM articles WHERE cluster_id = ?", (cid,)))
        members.update(other for _, other, c in matches if c is None)
        rep = self._relabel(members)
        best, other, _ = min(matches, key=lambda t: (t[0].level, -t[0].score, t[1]))
        return Placement(best.level, other, best.score, best.rule, rep, len(matches))

    def replace(
        self, aid: int, article: Mapping[str, Any], keys: list[int], old_keys: list[int],
        old_facts: tuple[Any, ...], new_facts: tuple[Any, ...], revived: bool,
    ) -> Placement | None:
        """Re-evaluate an article whose content changed; None when nothing dedupe sees changed.

        ``*_facts`` are the other columns ``compare`` and the representative depend on
        (publication time, provider).
        """
        if not revived and old_keys == keys and old_facts == new_facts:
            return None
        self.detach(aid, old_keys)
        return self.attach(aid, article, keys)

    def detach(self, aid: int, keys: list[int] | None = None) -> None:
        """Take an article out of the look-up tables and its cluster; split what remains."""
        conn = self.conn
        row = conn.execute(
            "SELECT cluster_id, dedupe_keys FROM articles WHERE id = ?", (aid,)
        ).fetchone()
        if row is None:
            return
        cid = row[0]
        if keys is None:
            keys = dedupe.unpack_keys(row[1])
        if self._index is not None:
            self._write_pending()  # the rows deleted below may be the batch's own
            for k in keys:
                self._index.get(k, set()).discard(aid)
        conn.executemany(
            "DELETE FROM dedupe_keys WHERE key = ? AND article_id = ?", [(k, aid) for k in keys]
        )
        others = [r[0] for r in conn.execute(
            "SELECT other_id FROM dedupe_links WHERE article_id = ?", (aid,))]
        conn.execute("DELETE FROM dedupe_links WHERE article_id = ?", (aid,))
        conn.executemany(
            "DELETE FROM dedupe_links WHERE article_id = ? AND other_id = ?",
            [(o, aid) for o in others],
        )
        if cid is None:
            return
        conn.execute(
            "UPDATE articles SET cluster_id = NULL, duplicate_of = NULL WHERE id = ?", (aid,)
        )
        self.touched.add(cid)
        remaining = [r[0] for r in conn.execute(
            "SELECT id FROM articles WHERE cluster_id = ?", (cid,))]
        for component in self._components(remaining):
            self._relabel(component)

    def flush(self) -> None:
        """Bring the ``clusters`` rows of the clusters touched since the last flush up to date."""
        conn = self.conn
        for cid in sorted(self.touched):
            size, first, last = conn.execute(
                "SELECT count(*), min(published_at), max(published_at) FROM articles "
                "WHERE cluster_id = ?", (cid,)
            ).fetchone()
            if size < 2:
                conn.execute("DELETE FROM clusters WHERE id = ?", (cid,))
                continue
            providers = [r[0] for r in conn.execute(
                "SELECT DISTINCT provider_id FROM articles WHERE cluster_id = ? "
                "AND provider_id IS NOT NULL ORDER BY provider_id", (cid,))]
            conn.execute(
                "INSERT OR REPLACE INTO clusters (id, representative, size, first_published, "
                "last_published, providers) VALUES (?, ?, ?, ?, ?, ?)",
                (cid, cid, size, first, last, json.dumps(providers)),
            )
        self.touched.clear()

    def ensure_current(self) -> int:
        """Recompute keys, links and clusters when the stored ones were made differently.

        The fingerprint names the algorithm and every parameter the keys and links depend on;
        a database made before this feature, or with other thresholds, is brought up to date
        once, in the caller's transaction. Returns how many articles were re-filed.
        """
        conn = self.conn
        fingerprint = self.params.fingerprint()
        row = conn.execute("SELECT value FROM dedupe_state WHERE key = 'fingerprint'").fetchone()
        if row is not None and row[0] == fingerprint:
            return 0
        conn.execute("DELETE FROM dedupe_keys")
        conn.execute("DELETE FROM dedupe_links")
        conn.execute("DELETE FROM clusters")
        conn.execute("UPDATE articles SET cluster_id = NULL, duplicate_of = NULL "
                     "WHERE cluster_id IS NOT NULL OR duplicate_of IS NOT NULL")
        cols = ", ".join(_CANDIDATE_COLUMNS)
        count = 0
        rows = conn.execute(
            f"SELECT {cols} FROM articles WHERE deleted_at IS NULL ORDER BY id").fetchall()
        for chunk in chunks(rows):
            filed = []
            for values in chunk:
                article = dict(zip(_CANDIDATE_COLUMNS, values, strict=True))
                keys = dedupe.lookup_keys(_features(values, self.params), self.params)
                filed.append((values[0], article, keys))
            with self.batch(k for _, _, keys in filed for k in keys):
                for aid, article, keys in filed:
                    conn.execute("UPDATE articles SET dedupe_keys = ? WHERE id = ?",
                                 (dedupe.pack_keys(keys), aid))
                    self.attach(aid, article, keys)
                    count += 1
        self.flush()
        conn.execute(
            "INSERT OR REPLACE INTO dedupe_state (key, value) VALUES ('fingerprint', ?)",
            (fingerprint,),
        )
        if count:
            log.warning("dedupe.rebuilt", articles=count, fingerprint=fingerprint)
        return count

    # -- helpers --------------------------------------------------------------------------------

    def _components(self, ids: list[int]) -> list[set[int]]:
        """Connected components of the links among ``ids``."""
        inside = set(ids)
        adjacent: dict[int, list[int]] = {i: [] for i in ids}
        for chunk in chunks(ids):
            for a, b in self.conn.execute(
                f"SELECT article_id, other_id FROM dedupe_links WHERE article_id IN "
                f"({', '.join('?' for _ in chunk)})", chunk,
            ):
                if b in inside:
                    adjacent[a].append(b)
        seen: set[int] = set()
        components = []
        for start in ids:
            if start in seen:
                continue
            stack, component = [start], {start}
            seen.add(start)
            while stack:
                for nxt in adjacent[stack.pop()]:
                    if nxt not in seen:
                        seen.add(nxt)
                        component.add(nxt)
                        stack.append(nxt)
            components.append(component)
        return components

    def _relabel(self, members: set[int]) -> int | None:
        """Point every member at the component's representative; returns the cluster id."""
        rows = []
        for chunk in chunks(sorted(members)):
            rows += self.conn.execute(
                f"SELECT id, published_at, cluster_id, duplicate_of FROM articles WHERE id IN "
                f"({', '.join('?' for _ in chunk)})", chunk,
            ).fetchall()
        if len(rows) > 1:
            rep = min(rows, key=lambda r: (r[1] is None, r[1] or "", r[0]))[0]
            self.touched.add(rep)
        else:
            rep = None
        updates = []
        for aid, _, cid, dup in rows:
            want = (rep, None if aid == rep else rep)
            if (cid, dup) != want:
                updates.append((*want, aid))
                if cid is not None:
                    self.touched.add(cid)
        self.conn.executemany(
            "UPDATE articles SET cluster_id = ?, duplicate_of = ? WHERE id = ?", updates
        )
        return rep
