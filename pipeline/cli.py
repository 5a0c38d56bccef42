"""The ``pipeline`` command: a thin click layer over the library."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

from . import logs

# The configuration (pydantic-settings) and everything else are imported by the commands that
# need them, not here: multiprocessing re-imports the main script, hence this module, in every
# worker process, and pydantic-settings and structlog cost each one ~37 MB and ~0.3 s here.
if TYPE_CHECKING:
    from .config import Settings

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--config, logging flags; they override the environment and the config file."""

    @click.option("--config", "config_file", type=click.Path(dir_okay=False),
                  help="TOML configuration file [default: $PIPELINE_CONFIG, else "
                       "./config/pipeline.toml when present, else built-in defaults].")
    @click.option("--log-level", type=click.Choice(list(logs.LEVELS)[:4], case_sensitive=False),
                  help="Level of messages on stderr [config: log_level].")
    @click.option("--log-format", type=click.Choice(["auto", "console", "json"]),
                  help="stderr format: console (human), json (lines); auto picks console on a "
                       "terminal [config: log_format].")
    @functools.wraps(func)
    def wrapper(*args: Any, config_file: str | None, log_level: str | None,
                log_format: str | None, **kwargs: Any) -> Any:
        overrides = kwargs.pop("_overrides", {})
        return func(*args, _common={"config_file": config_file, "log_level": log_level,
                                    "log_format": log_format, **overrides}, **kwargs)

    return wrapper


def settings_from(common: dict[str, Any], **overrides: Any) -> Settings:
    """Load settings (flags > env > file > defaults) and set up logging, or exit 2 with why."""
    from .config import ConfigError, load_settings

    common = dict(common)
    config_file = common.pop("config_file", None)
    try:
        settings = load_settings(config_file, **common, **overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    logs.configure(
        level=settings.log_level, fmt=settings.log_format, file=settings.log_file,
        file_level=settings.log_file_level,
    )
    return settings


def _describe(settings: Settings, exc: BaseException) -> str:
    from .dberrors import describe

    return describe(str(settings.db), exc)


@contextlib.contextmanager
def progress_bar(wanted: bool | None, unit: str, desc: str) -> Iterator[dict[str, Any]]:
    """A tqdm bar on stderr (by default only on a terminal), as the ``progress`` and
    ``on_total`` callbacks the library's long runs accept; empty when there is no bar."""
    if not (sys.stderr.isatty() if wanted is None else wanted):
        yield {}
        return
    from tqdm import tqdm

    bar = tqdm(total=0, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=True)

    def on_total(n: int) -> None:
        bar.total = n
        bar.refresh()

    try:
        yield {"progress": bar.update, "on_total": on_total}
    finally:
        bar.close()


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="news-pipeline")
def main() -> None:
    """Turn folders of news-article Markdown files into a clean, deduplicated, enriched SQLite
    database, browsable with Datasette.

    Each file goes through parse -> validate -> dedupe -> enrich -> store; every stage is logged.
    Settings come from config/pipeline.toml, PIPELINE_* environment variables and flags
    (flags win). Run `pipeline config` to see the effective settings.
    """


@main.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--db", type=click.Path(dir_okay=False), help="SQLite database to write [config: db].")
@click.option("--workers", type=click.IntRange(min=0),
              help="Parser processes; 0 = one per core [config: workers].")
@click.option("--force", is_flag=True, help="Reprocess every file, even unchanged ones.")
@click.option("--dry-run", is_flag=True,
              help="Run every stage and report what would change, writing nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar [default: on when stderr is a terminal].")
@common_options
def backfill(paths: tuple[str, ...], db: str | None, workers: int | None, force: bool,
             dry_run: bool, as_json: bool, progress: bool | None, _common: dict[str, Any]) -> None:
    """Ingest every article file under PATHS (folders, recursively, or single files).

    Files whose size, mtime and hash show no change are skipped, so a second run is fast and
    changes nothing. Exit status is 0 when the run completed, even if some files were rejected
    (see the rejects table); non-zero only when it could not run.
    """
    from .ingest import backfill as run_backfill

    settings = settings_from(_common, db=db, workers=workers)
    try:
        with progress_bar(progress, "file", "backfill") as bar:
            summary = run_backfill(settings, list(paths), force=force, dry_run=dry_run, **bar)
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from exc
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(_describe(settings, exc)) from exc
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(_summary_text(summary))


def _summary_text(s: dict[str, Any]) -> str:
    head = "dry run (nothing written)" if s["dry_run"] else f"run {s['run_id']} into {s['db']}"
    return (
        f"{head}\n"
        f"  seen {s['seen']}: new {s['new']}, updated {s['updated']}, unchanged {s['unchanged']}, "
        f"duplicate sources {s['duplicate']}, rejected {s['rejected']}, skipped {s['skipped']}, "
        f"deleted {s['deleted']}\n"
        f"  {s['elapsed_s']:.2f} s, {s['files_per_s'] or 0:,.0f} files/s"
    )


@main.command(context_settings=CONTEXT)
@click.option("--db", type=click.Path(dir_okay=False, exists=True),
              help="SQLite database to reprocess [config: db].")
@click.option("--only", "only", multiple=True, metavar="NAME",
              help="Run and write only this enricher (repeatable); it runs even when not in "
                   "enrich.enabled. Default: every enabled enricher.")
@click.option("--dry-run", is_flag=True, help="Report what would change, writing nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar [default: on when stderr is a terminal].")
@common_options
def reprocess(db: str | None, only: tuple[str, ...], dry_run: bool, as_json: bool,
              progress: bool | None, _common: dict[str, Any]) -> None:
    """Re-run dedupe and enrichment over the stored articles, without reading the files.

    Use it after changing the [enrich] configuration or upgrading an enricher. Articles are
    rebuilt from their stored validated document; only enrichment columns and child rows
    (images, related, topics) are rewritten, and no new content version is recorded. An article
    whose canonical URL would change under the current dedupe rules is reported and kept as it
    is (re-ingest its files with `backfill --force` to move it).
    """
    from .enrichers import unknown_enrichers
    from .reprocess import reprocess as run_reprocess

    unknown = unknown_enrichers(only)
    if unknown:
        raise click.BadParameter(f"unknown enricher(s): {', '.join(unknown)}", param_hint="--only")
    settings = settings_from(_common, db=db)
    if not settings.db.exists():
        raise click.UsageError(f"no database at {settings.db}: run `pipeline backfill` first")
    try:
        with progress_bar(progress, "article", "reprocess") as bar:
            summary = run_reprocess(settings, list(only) or None, dry_run=dry_run, **bar)
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(_describe(settings, exc)) from exc
    click.echo(json.dumps(summary) if as_json else _reprocess_text(summary))


def _reprocess_text(s: dict[str, Any]) -> str:
    head = "dry run (nothing written)" if s["dry_run"] else f"run {s['run_id']} on {s['db']}"
    lines = [
        head,
        f"  enrichers: {', '.join(s['enrichers'])}",
        f"  articles {s['articles']}: changed {s['changed']}, unchanged {s['unchanged']}, "
        f"identity changed (kept) {s['identity_changed']}, invalid snapshot (kept) {s['invalid']}",
    ]
    for name, cols in s["columns"].items():
        lines.append(f"  {name}: " + ", ".join(f"{c} {n}" for c, n in cols.items()))
    if s["child_tables"]:
        lines.append("  child rows: " + ", ".join(f"{t} {n}" for t, n in s["child_tables"].items()))
    if s["enricher_failures"]:
        lines.append("  enricher failures: "
                     + ", ".join(f"{e} {n}" for e, n in s["enricher_failures"].items()))
    for item in s["identity_changes"]:
        lines.append(f"  identity changed: {item['canonical_url']} -> {item['new_canonical_url']}")
    lines.append(f"  {s['elapsed_s']:.2f} s, {s['articles_per_s'] or 0:,.0f} articles/s")
    return "\n".join(lines)


@main.command(context_settings=CONTEXT)
@click.option("--db", type=click.Path(dir_okay=False), help="SQLite database to browse [config: db].")
@click.option("--host", help="Address to listen on [config: serve.host, 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port [config: serve.port, 8001].")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a web browser.")
@common_options
def serve(db: str | None, host: str | None, port: int | None, open_browser: bool,
          _common: dict[str, Any]) -> None:
    """Browse the database with Datasette, live while the pipeline writes to it.

    Uses the metadata in config/datasette.yml (descriptions, facets, canned queries) and the
    [serve] settings; the database appears as /articles whatever its file name. Ctrl-C stops it.
    """
    from .serve import serve as run_serve

    settings = settings_from(_common, db=db)
    try:
        run_serve(settings, host or settings.serve.host, port or settings.serve.port,
                  open_browser=open_browser)
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from exc
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(_describe(settings, exc)) from exc


@main.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--db", type=click.Path(dir_okay=False), help="SQLite database to write [config: db].")
@click.option("--polling", is_flag=True, default=None,
              help="Poll the folders instead of using inotify (network file systems) "
                   "[config: watch.polling].")
@click.option("--json-logs", is_flag=True, help="JSON lines on stderr (= --log-format json).")
@common_options
def watch(paths: tuple[str, ...], db: str | None, polling: bool | None, json_logs: bool,
          _common: dict[str, Any]) -> None:
    """Follow PATHS (folders, recursively) and keep the database in line with them, until
    SIGINT/SIGTERM.

    Catches up first (the same walk as backfill), then ingests every complete new or changed
    article file within a fraction of a second, follows renames and deletions, and reconciles
    on a timer. One daemon per database; `pipeline status` reports on it.
    """
    from .watch import AlreadyRunning, Daemon

    if json_logs:
        _common = {**_common, "log_format": "json"}
    settings = settings_from(_common, db=db)
    try:
        daemon = Daemon(settings, list(paths), polling=polling)
        daemon.run()
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from exc
    except AlreadyRunning as exc:
        raise click.ClickException(str(exc)) from exc
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(_describe(settings, exc)) from exc


@main.command("run", context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--db", type=click.Path(dir_okay=False), help="SQLite database [config: db].")
@click.option("--host", help="Datasette address [config: serve.host, 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="Datasette port [config: serve.port].")
@common_options
def run_cmd(paths: tuple[str, ...], db: str | None, host: str | None, port: int | None,
            _common: dict[str, Any]) -> None:
    """The main job: the daemon on PATHS (default var/inbox; created if missing) and Datasette
    on the same database, together. Prints the address to open; Ctrl-C stops both."""
    from .run import run_both

    settings = settings_from(_common, db=db)
    folders = list(paths) or ["var/inbox"]
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
    host = host or settings.serve.host
    port = port or settings.serve.port
    flags = {"config_file": "--config", "log_level": "--log-level", "log_format": "--log-format"}
    common = [f"{flags[k]}={v}" for k, v in _common.items() if v is not None and k in flags]
    code = run_both([*folders, "--db", str(settings.db)],
                    ["--db", str(settings.db), "--host", host, "--port", str(port)],
                    common, f"http://{host}:{port}/articles/articles")
    sys.exit(code)


@main.command(context_settings=CONTEXT)
@click.option("--db", type=click.Path(dir_okay=False), help="SQLite database [config: db].")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON on stdout.")
@common_options
def status(db: str | None, as_json: bool, _common: dict[str, Any]) -> None:
    """Whether a daemon is alive on the database and how far behind it is, plus the database's
    totals. Exit status 0 when a daemon is alive, 1 otherwise (not running, stale, no database).
    """
    from .status import format_status, read_status

    settings = settings_from(_common, db=db)
    try:
        report = read_status(settings)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.Error as exc:
        raise click.ClickException(_describe(settings, exc)) from exc
    click.echo(json.dumps(report) if as_json else format_status(report))
    sys.exit(0 if report["daemon"]["state"] == "alive" else 1)


@main.command(context_settings=CONTEXT)
@click.option("--db", type=click.Path(dir_okay=False), help="SQLite database [config: db].")
@click.option("--repair", is_flag=True,
              help="Fix what the checks found: salvage a damaged file into a new one (the old "
                   "one is kept aside), rebuild the full-text index, recompute clusters.")
@click.option("--resync", "resync", multiple=True, type=click.Path(exists=True), metavar="PATH",
              help="With --repair: then re-read every article file under PATH (repeatable), as "
                   "`backfill --force` does, so the articles match their files again.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@common_options
def doctor(db: str | None, repair: bool, resync: tuple[str, ...], as_json: bool,
           _common: dict[str, Any]) -> None:
    """Check the database (SQLite integrity, foreign keys, full-text index, story clusters, a
    write-ahead log left behind) and, with --repair, bring it back to a whole state.

    Exit status 0 when the database is healthy (after the repair, with --repair), 1 otherwise.
    """
    from .doctor import diagnose, format_report
    from .doctor import repair as run_repair

    if resync and not repair:
        raise click.UsageError("--resync needs --repair")
    settings = settings_from(_common, db=db)
    try:
        if repair:
            result = run_repair(settings, list(resync))
            healthy = result["after"]["healthy"]
        else:
            report = diagnose(str(settings.db))
            result, healthy = report.as_dict(), report.healthy
    except (FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"cannot repair {settings.db}: {exc}") from exc
    click.echo(json.dumps(result, default=str) if as_json else format_report(result))
    sys.exit(0 if healthy else 1)


@main.command("config", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of TOML-like text.")
@common_options
def config_cmd(as_json: bool, _common: dict[str, Any]) -> None:
    """Print the effective configuration (defaults < file < environment < flags)."""
    from .config import dump_settings

    settings = settings_from(_common)
    data = dump_settings(settings)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(_toml(data))


def _toml(data: dict[str, Any], prefix: str = "") -> str:
    simple = {k: v for k, v in data.items() if not isinstance(v, dict)}
    nested = {k: v for k, v in data.items() if isinstance(v, dict)}
    lines = [f"{k} = {json.dumps('' if v is None else v)}" for k, v in simple.items()]
    for key, value in nested.items():
        lines += ["", f"[{prefix}{key}]", _toml(value, f"{prefix}{key}.")]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    main()
