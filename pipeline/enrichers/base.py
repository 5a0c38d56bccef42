"""What every enricher is made of: its declaration, its options, and the context it works on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # the config reads the registry on every start; validation is not needed then
    from ..validate import Article

Row = dict[str, Any]


class EnricherOptions(BaseModel):
    """Base of an enricher's options; they become the ``[enrich.NAME]`` table of the config."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


@dataclass(slots=True)
class Context:
    """One article being prepared: the validated document and what will be stored.

    ``row`` is the ``articles`` row built so far (enrichers run in registry order, so a later one
    sees what an earlier one filled); ``provider``, ``topics``, ``images`` and ``related`` become
    the child rows. An enricher that rewrites a child list assigns the new list as its last step,
    so a failure half-way leaves the list as it was.
    """

    article: Article
    row: Row
    provider: dict[str, Any] | None = None
    topics: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    related: list[dict[str, Any]] = field(default_factory=list)
    seen_at: datetime | None = None  # when the pipeline first saw the article (now, on ingest)
    tracking_params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Enricher:
    """A named unit: the columns it owns (created by the schema), what else it rewrites
    (``touches``: base columns or the child parts ``provider``, ``topics``, ``images``,
    ``related``), its version (bump it when its output changes, then ``pipeline reprocess``),
    its options model, and whether it is on by default."""

    name: str
    version: int
    columns: dict[str, str]  # column name -> SQLite type
    fn: Callable[[Context, Any], Row]
    doc: str = ""
    options: type[EnricherOptions] | None = None
    default: bool = True
    touches: tuple[str, ...] = ()
