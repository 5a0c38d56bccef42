"""Datasette on the live database, with the project's metadata (``config/datasette.yml``).

Datasette runs as a library, so the database is always named ``articles`` in URLs whatever its
file is called, and it is opened mutable (never ``immutable``): the pipeline keeps writing while
people browse. WAL mode lets Datasette's read-only connections read while the single writer
commits, so neither side sees "database is locked".
"""

from __future__ import annotations

import asyncio
import os
import webbrowser
from pathlib import Path
from typing import Any

from .config import DEFAULT_CONFIG_FILE, Settings
from .logs import get_logger
from .schema import connect, migrate

log = get_logger()

DATABASE_NAME = "articles"
# the metadata shipped with this project, used when the configured relative path is not found
PROJECT_METADATA = Path(__file__).resolve().parent.parent / DEFAULT_CONFIG_FILE.parent / "datasette.yml"
# our stylesheet, served at /pipeline-static/ (config/datasette.yml names it in extra_css_urls)
STATIC = ("pipeline-static", str(Path(__file__).resolve().parent / "static"))


def metadata_file(settings: Settings) -> Path:
    path = settings.serve.metadata
    if path.is_file():
        return path
    default = Path(os.path.abspath(type(settings.serve).model_fields["metadata"].default))
    if path.resolve() == default.resolve() and PROJECT_METADATA.is_file():
        return PROJECT_METADATA
    raise FileNotFoundError(f"Datasette metadata file not found: {path} (serve.metadata)")


def load_metadata(path: Path) -> dict[str, Any]:
    from datasette.utils import parse_metadata

    return parse_metadata(path.read_text(encoding="utf-8"))


def prepare_database(path: Path, busy_timeout_ms: int) -> None:
    """Create or migrate the database, so the views and indexes the metadata relies on exist
    and WAL mode is set (it persists in the file) before any reader opens it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = connect(str(path), busy_timeout_ms)
    try:
        migrate(db)
    finally:
        db.conn.close()


def make_datasette(settings: Settings, **datasette_settings: Any) -> Any:
    """A ready-to-serve Datasette instance for ``settings.db`` (startup hooks already run);
    keyword arguments are more Datasette settings (benchmarks turn on ``trace_debug``)."""
    from datasette.app import Datasette
    from datasette.database import Database

    from . import datasette_plugin

    datasette_plugin.register()
    metadata = load_metadata(metadata_file(settings))
    prepare_database(settings.db, settings.busy_timeout_ms)
    ds = Datasette(metadata=metadata,
                   settings={**settings.serve.datasette_settings(), **datasette_settings},
                   static_mounts=[STATIC])
    ds.add_database(Database(ds, path=str(settings.db), is_mutable=True), name=DATABASE_NAME)
    if "_memory" in ds.databases:  # added because no file was passed to the constructor
        ds.remove_database("_memory")
    asyncio.run(ds.invoke_startup())
    return ds


def serve(settings: Settings, host: str, port: int, open_browser: bool = False) -> None:
    """Serve until interrupted (Ctrl-C stops it cleanly)."""
    import uvicorn

    ds = make_datasette(settings)
    url = f"http://{host}:{port}/{DATABASE_NAME}"
    log.info("serve.start", url=url, db=str(settings.db))
    print(f"Datasette on {settings.db}: open {url}", flush=True)
    if open_browser:
        webbrowser.open(url)
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on")
    log.info("serve.stop", url=url)
