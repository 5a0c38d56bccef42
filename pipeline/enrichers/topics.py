"""topics: names normalised (whitespace, case, aliases from the config), one slug each."""

from __future__ import annotations

import json
import re

from pydantic import field_validator

from .base import Context, Enricher, EnricherOptions, Row

_WS = re.compile(r"\s+")


class Options(EnricherOptions):
    aliases: dict[str, str] = {
        "A.I.": "AI",
        "Artificial Intelligence": "AI",
        "ML": "Machine Learning",
        "NLP": "Natural Language Processing",
    }

    @field_validator("aliases")
    @classmethod
    def _nonempty(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k, v in value.items() if not slug(k) or not slug(v)]
        if bad:
            raise ValueError(f"aliases need a name with letters or digits on both sides: {bad}")
        return value


def slug(name: str) -> str:
    """``Machine  Learning`` and ``machine-learning`` -> ``machine-learning``."""
    return "-".join("".join(ch if ch.isalnum() else " " for ch in name.lower()).split())


_tables: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}


def _alias_table(aliases: dict[str, str]) -> dict[str, str]:
    """{slug of alias: name}, built once per configuration."""
    key = tuple(sorted(aliases.items()))
    table = _tables.get(key)
    if table is None:
        table = _tables[key] = {slug(k): _WS.sub(" ", v).strip() for k, v in aliases.items()}
    return table


def normalise(names: list[str], aliases: dict[str, str]) -> list[str]:
    """Fold whitespace, map aliases (compared by slug), title-case all-lowercase names, and drop
    repeats (same slug), keeping the order."""
    table = _alias_table(aliases)
    out: dict[str, str] = {}
    for raw in names:
        name = _WS.sub(" ", str(raw)).strip()
        key = slug(name)
        if not key:
            continue
        if key in table:
            name = table[key]
            key = slug(name)
        elif name.islower():
            name = " ".join(w[:1].upper() + w[1:] for w in name.split(" "))
        out.setdefault(key, name)
    return list(out.values())


def run(ctx: Context, options: Options) -> Row:
    topics = normalise(ctx.topics, options.aliases)
    ctx.topics = topics
    return {"topics": json.dumps(topics, ensure_ascii=False)}


ENRICHER = Enricher(
    "topics", 1, {}, run, "topic names normalised (aliases, case, whitespace), one slug each",
    options=Options, touches=("topics",),
)
