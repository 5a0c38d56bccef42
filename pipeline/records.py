"""Plain records passed between the stages (and between processes, so they must pickle)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .dedupe import DedupeParams

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


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on the YAML structure, checked on the node tree before any object is built."""

    max_depth: int = 16
    max_aliases: int = 100
    max_items: int = 1000
    max_chars: int = 100_000
    max_expanded: int = 20_000


@dataclass(frozen=True, slots=True)
class Options:
    """What the pure stages need from the settings (small and picklable for workers).

    Here, not in ``prepare``, so that the writer can make them for its workers without importing
    the stages itself (YAML, the validation model: ~6 MB and ~50 ms of every run that reads)."""

    max_file_bytes: int
    tracking_params: tuple[str, ...]
    enrichers: tuple[str, ...]
    limits: Limits = Limits()
    # {enricher name: its options model}, from the [enrich.NAME] tables of the config
    enrich_options: dict[str, Any] = field(default_factory=dict)
    dedupe: DedupeParams | None = None  # None: the defaults with tracking_params

    @property
    def dedupe_params(self) -> DedupeParams:
        if self.dedupe is not None:
            return self.dedupe
        from .config import DedupeSettings

        return DedupeSettings(tracking_params=list(self.tracking_params)).params()
