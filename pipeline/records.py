"""Plain records passed between the stages (and between processes, so they must pickle)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The stage names, in order; logs, rejects and timings use exactly these.
STAGES: tuple[str, ...] = ("parse", "validate", "dedupe", "enrich", "store")


@dataclass(slots=True)
class FileFacts:
    path: str  # absolute
    size: int
    mtime_ns: int
    sha256: str = ""


@dataclass(slots=True)
class Parsed:
    facts: FileFacts
    meta: dict[str, Any]
    body: str
    # the raw front matter text, kept so that a rejection can name the line of a bad field
    front_matter: str = ""


@dataclass(slots=True)
class Rejection:
    """A file that cannot become an article, with a reason a person can act on."""

    facts: FileFacts
    stage: str
    reason: str
    details: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Prepared:
    """A valid article, enriched, ready for the single writer.

    ``article`` holds the columns of the ``articles`` row that come from the file (content and
    enrichment); the writer adds the versioning columns. ``snapshot`` is the validated document
    (what a version records); ``content_hash`` digests the part of it whose change is a new version.
    """

    facts: FileFacts
    article: dict[str, Any]
    snapshot: str  # JSON, serialised in the worker
    content_hash: str
    provider: dict[str, Any] | None
    topics: list[str]
    images: list[dict[str, Any]]
    related: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # enrichers that failed, with why

    @property
    def article_id(self) -> int:
        return self.article["id"]


@dataclass(slots=True)
class Skipped:
    """A file that vanished or became unreadable between being listed and being read."""

    facts: FileFacts
    reason: str


Outcome = Prepared | Rejection | Skipped
