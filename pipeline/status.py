"""``pipeline status``: is the daemon alive, how far behind is it, and what does the database hold.

Whether a daemon runs is the lock's answer (the kernel releases it when the process dies); how
well it runs is the heartbeat's (a hung daemon keeps its lock but stops beating).
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from typing import Any

from .config import Settings
from .watch import DaemonLock


def read_status(settings: Settings) -> dict[str, Any]:
    """The daemon's state and the database's totals; FileNotFoundError if there is no database."""
    db_path = str(settings.db)
    if not os.path.isfile(db_path):
        raise FileNotFoundError(f"no database at {db_path}")
    holder = DaemonLock.holder(db_path)
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True,
                           timeout=settings.busy_timeout_ms / 1000)
    conn.row_factory = sqlite3.Row
    try:
        beat = _heartbeat(conn)
        totals = _totals(conn)
    finally:
        conn.close()
    age = _age_s(beat.get("updated_at")) if beat else None
    if holder is None:
        state = "not running"
    elif age is not None and age > settings.watch.stale_after_s:
        state = "stale"
    else:
        state = "alive"
    daemon: dict[str, Any] = {"state": state, "heartbeat_age_s": age}
    if holder:
        daemon.update(pid=holder.get("pid"), host=holder.get("host"))
    if beat:
        daemon.update({k: beat[k] for k in beat if k not in ("id",)})
        if holder is None:
            daemon.pop("pid", None)
            daemon["last_pid"] = beat.get("pid")
        behind = (beat.get("queue_depth") or 0) + (beat.get("pending") or 0)
        daemon["behind_files"] = behind
        lag = _lag_s(beat.get("last_event_at"), beat.get("last_commit_at"))
        daemon["behind_s"] = lag
    return {"db": db_path, "daemon": daemon, "totals": totals}


def _heartbeat(conn: sqlite3.Connection) -> dict[str, Any]:
    try:
        row = conn.execute("SELECT * FROM daemon_heartbeat WHERE id = 1").fetchone()
    except sqlite3.OperationalError:  # a database no daemon has opened yet
        return {}
    return dict(row) if row else {}


def _totals(conn: sqlite3.Connection) -> dict[str, Any]:
    one = conn.execute(
        "SELECT count(*) AS articles, count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted "
        "FROM articles").fetchone()
    sources = {r[0]: r[1] for r in conn.execute(
        "SELECT status, count(*) FROM sources GROUP BY status")}
    last = conn.execute("SELECT max(last_ingested_at) FROM sources").fetchone()[0]
    run = conn.execute(
        "SELECT id, kind, status, started_at, ended_at FROM ingest_runs ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return {
        "articles": one["articles"],
        "articles_deleted": one["deleted"],
        "sources": sum(sources.values()),
        "sources_by_status": sources,
        "rejects": conn.execute("SELECT count(*) FROM rejects").fetchone()[0],
        "last_ingest_at": last,
        "last_run": dict(run) if run else None,
    }


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _age_s(stamp: str | None) -> float | None:
    when = _parse(stamp)
    return None if when is None else round((datetime.now(UTC) - when).total_seconds(), 1)


def _lag_s(event: str | None, commit: str | None) -> float:
    """Seconds by which the last commit trails the last event (0 when caught up)."""
    ev, co = _parse(event), _parse(commit)
    if ev is None or (co is not None and co >= ev):
        return 0.0
    return round((ev - (co or ev)).total_seconds(), 3)


def format_status(status: dict[str, Any]) -> str:
    d, t = status["daemon"], status["totals"]
    lines = [f"database {status['db']}"]
    if d["state"] == "not running":
        head = "daemon: not running"
        if d.get("stopped_at"):
            head += f" (last one stopped at {d['stopped_at']})"
        elif d.get("updated_at"):
            head += f" (last heartbeat {d['updated_at']}, pid {d.get('last_pid')}: it did not stop cleanly)"
        lines.append(head)
    else:
        lines.append(
            f"daemon: {d['state']} (pid {d.get('pid')} on {d.get('host')}, since "
            f"{d.get('started_at')}, {d.get('observer')}), heartbeat {d['heartbeat_age_s']} s ago"
        )
        lines.append(
            f"  behind: {d.get('behind_files', 0)} file(s) queued or pending, "
            f"{d.get('behind_s', 0)} s; last event {d.get('last_event_at') or '-'}, "
            f"last commit {d.get('last_commit_at') or '-'}, "
            f"last reconcile {d.get('last_reconcile_at') or '-'}"
        )
        lines.append(
            f"  this run: {d.get('files_processed', 0)} file(s) processed, "
            f"{d.get('rejects', 0)} rejected"
        )
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(t["sources_by_status"].items()))
    lines.append(
        f"totals: {t['articles']} articles ({t['articles_deleted']} deleted), "
        f"{t['sources']} sources ({by_status or 'none'}), {t['rejects']} rejects; "
        f"last ingest {t['last_ingest_at'] or '-'}"
    )
    return "\n".join(lines)
