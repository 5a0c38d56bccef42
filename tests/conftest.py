"""Shared fixtures: the real corpus, temporary inboxes and databases, and a CLI runner."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("PIPELINE_TEST_CORPUS", ROOT.parent / "shared" / "corpus"))


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Each test runs in its own folder, with no PIPELINE_* variables leaking in."""
    for key in list(os.environ):
        if key.startswith("PIPELINE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"the real corpus is not at {CORPUS} (set PIPELINE_TEST_CORPUS to its folder)")
    return CORPUS


@pytest.fixture
def corpus_files(corpus) -> list[Path]:
    return sorted(corpus.rglob("*.md"))


@pytest.fixture
def inbox(tmp_path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "articles.db"


@pytest.fixture
def settings(db_path, tmp_path):
    return load_settings(None, db=str(db_path), log_file=str(tmp_path / "log.jsonl"), workers=1)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def wait_for(predicate, timeout: float = 60.0, what: str = "condition", interval: float = 0.02):
    """Poll until ``predicate()`` is truthy (an exception counts as not yet), or fail: tests wait
    on conditions, never on sleeps, with generous timeouts for a slow machine."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:  # e.g. the table does not exist yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def query(db_path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def scalar(db_path: Path, sql: str, params: tuple = ()):
    return query(db_path, sql, params)[0][0]


def article_text(
    title: str = "A test article",
    url: str = "https://example.com/news/a-test-article",
    excerpt: str = "Something happened today and people wrote about it.",
    published: str = "2020-04-22T10:09:00Z",
    extra: str = "",
) -> str:
    """A small article file in the corpus's format; ``extra`` is raw YAML lines to add."""
    return (
        "---\n"
        "category: news\n"
        f'title: "{title}"\n'
        f'excerpt: "{excerpt}"\n'
        f"publishedDateTime: {published}\n"
        f'webUrl: "{url}"\n'
        "type: article\n"
        "quality: 40\n"
        "heat: 40\n"
        "published: true\n"
        "\n"
        "provider:\n"
        "  name: Example News\n"
        "  domain: example.com\n"
        "\n"
        "topics:\n"
        "  - AI\n"
        "  - Machine Learning\n"
        "\n"
        "images:\n"
        '  - url: "https://example.com/img/a.jpg"\n'
        "    width: 800\n"
        "    height: 600\n"
        f'    title: "{title}"\n'
        f"{extra}"
        'secured: "SECRET-TOKEN-abc123"\n'
        "---\n"
    )


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def copy_corpus(corpus: Path, dest: Path) -> Path:
    shutil.copytree(corpus, dest, ignore=shutil.ignore_patterns("*.tsv", "*.txt"))
    for path in dest.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)  # the shared copy is read-only
    return dest


MARKDOWN_BODY = (
    "The **whole story**, in Markdown.\n\n"
    "<script>alert('xss')</script>\n\n"
    "[a bad link](javascript:alert(1)) and [a good one](https://example.com/more)\n"
)


@pytest.fixture(scope="session")
def browse_db(tmp_path_factory) -> dict:
    """The corpus ingested as people would browse it, plus what the corpus lacks: a rejected
    file, an article with a Markdown body, and an edited article (two versions)."""
    if not CORPUS.is_dir():
        pytest.skip(f"the real corpus is not at {CORPUS} (set PIPELINE_TEST_CORPUS to its folder)")
    from pipeline.ingest import backfill

    root = tmp_path_factory.mktemp("browse")
    inbox = copy_corpus(CORPUS, root / "inbox")
    write(inbox / "extra" / "broken.md", "---\ntitle: [unclosed\n---\n")
    write(inbox / "extra" / "repeated-topic.md", article_text(
        title="A topic listed twice", url="https://example.com/news/repeated-topic",
    ).replace("  - AI\n", "  - AI\n  - AI\n"))
    url = "https://example.com/news/markdown-body"
    body_file = write(inbox / "extra" / "with-body.md",
                      article_text(title="An article with a body", url=url) + MARKDOWN_BODY)
    settings = load_settings(None, db=str(root / "articles.db"), log_file=str(root / "log.jsonl"),
                             workers=1)
    backfill(settings, [str(inbox)])
    write(body_file, article_text(title="An article with a body, edited", url=url) + MARKDOWN_BODY)
    backfill(settings, [str(inbox)])
    from pipeline.dedupe import article_id, canonical_url

    edited_id = article_id(canonical_url(url, settings.dedupe.tracking_params))
    return {"db": settings.db, "inbox": inbox, "settings": settings, "edited_url": url,
            "edited_id": edited_id}
