"""``pipeline reprocess``: dedupe and enrichment again over the stored articles, files unread.

The latest ``article_versions.snapshot`` of an article is its whole validated document, so it is
validated again, rebuilt with ``prepare.build`` (the same code as ingest, with the current
configuration) and written back by the single writer with ``Store.refresh_batch``: enrichment
columns and child rows only, never a new content version.

An article whose canonical URL would change under the current dedupe rules is reported and left
as it is: moving an article to a new id means moving its sources and its version history, which
is what a re-ingest of its files does (``pipeline backfill --force PATH``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from .config import Settings
from .enrichers import BY_NAME, REGISTRY, VERSIONS_COLUMN, owner_of
from .ingest import options_from
from .logs import get_logger
from .prepare import Options, build
from .records import FileFacts, Prepared
from .schema import article_columns
from .store import Store
from .validate import Article

log = get_logger()

# what enrichment never rewrites: identity, content fingerprint, versioning and lifecycle
_KEPT = frozenset({"id", "canonical_url", "content_hash", "version", "first_seen_at",
                   "updated_at", "deleted_at"})
_CHILD_PARTS = frozenset({"images", "related", "topics"})
MAX_LISTED = 50  # identity changes and invalid snapshots listed in the summary


def plan(settings: Settings, only: list[str] | None) -> tuple[Options, list[str], bool]:
    """The options to build with, the article columns to write, and whether child rows are
    rewritten. With ``only``, those enrichers run even when not enabled, and only what they
    own or touch is written; the enabled ones before them still run, so they see the same
    input as during ingest."""
    options = options_from(settings)
    if not only:
        columns = [c for c in article_columns() if c not in _KEPT]
        return options, columns, True
    enabled = set(options.enrichers) | set(only)
    names = tuple(e.name for e in REGISTRY if e.name in enabled)
    options = dataclasses.replace(options, enrichers=names)
    all_columns = article_columns()
    owned: list[str] = []
    for name in only:
        enricher = BY_NAME[name]
        owned += [c for c in [*enricher.columns, *enricher.touches]
                  if c in all_columns and c not in _KEPT and c not in owned]
    children = any(t in _CHILD_PARTS for name in only for t in BY_NAME[name].touches)
    return options, [*owned, VERSIONS_COLUMN], children


def reprocess(
    settings: Settings,
    only: list[str] | None = None,
    *,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Re-run dedupe and enrichment over every stored article; returns what changed."""
    start = time.perf_counter()
    options, columns, children = plan(settings, only)
    db_path = str(settings.db)
    store = Store(db_path, settings.busy_timeout_ms, dedupe=settings.dedupe.params())
    run_id = None if dry_run else store.begin_run("reprocess", [db_path])
    log.info("run.start", kind="reprocess", db=db_path, run_id=run_id, only=only or None,
             enrichers=list(options.enrichers), dry_run=dry_run)
    counts: Counter[str] = Counter()
    by_enricher: defaultdict[str, Counter[str]] = defaultdict(Counter)
    by_table: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    identity_changed: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    status = "failed"
    try:
        total = store.conn.execute("SELECT count(*) FROM articles").fetchone()[0]
        if on_total:
            on_total(total)
        last_id = -1
        while True:
            page = _page(store, last_id, settings.batch_size)
            if not page:
                break
            last_id = page[-1][0]
            batch: list[Prepared] = []
            for aid, canonical, first_seen, enriched_with, snapshot, sha256, source in page:
                prepared = _rebuild(aid, snapshot, sha256, source, first_seen, options, invalid)
                if prepared is None:
                    counts["invalid"] += 1
                elif prepared.article_id != aid:
                    counts["identity_changed"] += 1
                    identity_changed.append({"id": aid, "canonical_url": canonical,
                                             "new_canonical_url": prepared.article["canonical_url"]})
                    log.warning("reprocess", article_id=aid, outcome="identity changed, kept",
                                canonical_url=canonical,
                                new_canonical_url=prepared.article["canonical_url"])
                else:
                    if only:
                        prepared.article[VERSIONS_COLUMN] = _merge_versions(
                            enriched_with, prepared.article[VERSIONS_COLUMN], only)
                    for err in prepared.errors:
                        failures[err.split(":", 1)[0]] += 1
                        log.warning("enrich", article_id=aid, outcome="enricher failed", error=err)
                    batch.append(prepared)
            for change in store.refresh_batch(batch, columns, children=children, dry_run=dry_run):
                touched = change["columns"] + change["children"]
                counts["changed" if touched else "unchanged"] += 1
                for col in change["columns"]:
                    by_enricher[owner_of(col) or "(versions)"][col] += 1
                for table in change["children"]:
                    by_table[table] += 1
                log.debug("reprocess", article_id=change["id"],
                          outcome="changed" if touched else "unchanged", changed=touched)
            if progress:
                progress(len(page))
        status = "completed"
    finally:
        elapsed = time.perf_counter() - start
        if run_id is not None:
            store.end_run(run_id, {"updated": counts["changed"], "unchanged": counts["unchanged"],
                                   "skipped": counts["identity_changed"] + counts["invalid"]},
                          elapsed, status)
        store.close()
    seen = sum(counts.values())
    summary: dict[str, Any] = {
        "run_id": run_id, "db": db_path, "dry_run": dry_run, "only": only or None,
        "enrichers": list(options.enrichers), "articles": seen,
        "changed": counts["changed"], "unchanged": counts["unchanged"],
        "identity_changed": counts["identity_changed"], "invalid": counts["invalid"],
        "columns": {name: dict(sorted(cols.items())) for name, cols in sorted(by_enricher.items())},
        "child_tables": dict(sorted(by_table.items())),
        "enricher_failures": dict(sorted(failures.items())),
        "identity_changes": identity_changed[:MAX_LISTED],
        "invalid_snapshots": invalid[:MAX_LISTED],
        "elapsed_s": round(elapsed, 3),
        "articles_per_s": round(seen / elapsed, 1) if elapsed > 0 else None,
    }
    log.info("run.end", kind="reprocess",
             **{k: v for k, v in summary.items() if k not in ("identity_changes", "invalid_snapshots")})
    return summary


def _page(store: Store, after: int, size: int) -> list[tuple[Any, ...]]:
    """Articles with their latest version (its snapshot is the whole validated document)."""
    return store.conn.execute(
        f"SELECT a.id, a.canonical_url, a.first_seen_at, a.{VERSIONS_COLUMN}, v.snapshot, "
        "v.sha256, v.source_path FROM articles a JOIN article_versions v ON v.article_id = a.id "
        "AND v.version = (SELECT max(version) FROM article_versions WHERE article_id = a.id) "
        "WHERE a.id > ? ORDER BY a.id LIMIT ?",
        (after, size),
    ).fetchall()


def _rebuild(aid: int, snapshot: str, sha256: str | None, source: str | None,
             first_seen: str | None, options: Options,
             invalid: list[dict[str, Any]]) -> Prepared | None:
    try:
        article = Article.model_validate(json.loads(snapshot))
    except (ValidationError, ValueError) as exc:
        # the document no longer passes validation (the rules changed): keep the stored row
        reason = str(exc).splitlines()[0]
        invalid.append({"id": aid, "reason": reason})
        log.warning("reprocess", article_id=aid, outcome="snapshot invalid, kept", reason=reason)
        return None
    seen_at = datetime.fromisoformat(first_seen.replace("Z", "+00:00")) if first_seen else None
    return build(article, FileFacts(source or "", 0, 0, sha256 or ""), options, seen_at=seen_at)


def _merge_versions(stored: str | None, fresh: str, only: list[str]) -> str:
    """With ``--only``, the other enrichers' versions stay as stored."""
    versions = json.loads(stored) if stored else {}
    ran = json.loads(fresh)
    for name in only:
        versions.pop(name, None)
        if name in ran:
            versions[name] = ran[name]
    return json.dumps(versions, sort_keys=True)
