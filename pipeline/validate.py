"""Stage 2, validate: the article as it really appears in the feeds, as a pydantic v2 model.

Lenient where real feeds vary (optional fields by era, quoted or bare URLs, relative logo URLs,
numbers as titles) and strict where a value would be wrong in the database (no title, no usable
URL, an impossible date, ``quality: high``). Unknown fields are kept in ``model_extra``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from .parse import line_of
from .records import Parsed, Rejection

STAGE = "validate"
_HIDDEN = frozenset({"secured", "body"})


def _aware(value: datetime) -> datetime:
    """Naive times are UTC; everything is stored in UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# An http(s) URL with a plain host and no "@" (so no credentials): the common case, accepted
# without urlsplit (~15 µs a URL, and a file has dozens in its related items).
_PLAIN_HTTP = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]*[A-Za-z0-9](?::[0-9]{1,5})?(?:[/?#]\S*)?")


def _web_url(value: str) -> str:
    value = value.strip()
    if "@" not in value and _PLAIN_HTTP.fullmatch(value):
        return value
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"must be an http(s) URL, got scheme {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise ValueError("URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("URL must not carry credentials")
    return value


def _any_url(value: str) -> str:
    """Image URLs may be relative (provider logos); still no script or data URLs."""
    value = value.strip()
    if value.startswith("/") or value[:8].lower().startswith(("http://", "https://")):
        return value  # relative, or http(s): the scheme is all that is checked here
    scheme = urlsplit(value).scheme.lower()
    if scheme and scheme not in ("http", "https"):
        raise ValueError(f"URL scheme {scheme!r} is not allowed")
    return value


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _listify(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return value


Timestamp = Annotated[datetime, AfterValidator(_aware)]
WebUrl = Annotated[str, AfterValidator(_web_url)]
OptWebUrl = Annotated[WebUrl | None, BeforeValidator(_blank_to_none)]
AnyUrl = Annotated[str, AfterValidator(_any_url)]
Text = str  # lengths and list sizes are bounded in parse (config [limits])
Count = Annotated[int, Field(ge=-1_000_000_000, le=1_000_000_000)]  # heat goes negative
Pixels = Annotated[int, Field(ge=0, le=100_000)]  # larger is not an image, it is an error


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="allow", populate_by_name=True, coerce_numbers_to_str=True, frozen=False
    )


class Image(_Model):
    url: AnyUrl
    width: Pixels | None = None
    height: Pixels | None = None
    isCached: bool | None = None
    title: Text | None = None
    attribution: Text | None = None


class Provider(_Model):
    name: Text | None = None
    domain: Text | None = None
    images: Annotated[list[Image], BeforeValidator(_listify)] = Field(default_factory=list)


class Related(_Model):
    title: Text | None = None
    excerpt: Text | None = None
    publishedDateTime: Timestamp | None = None
    webUrl: OptWebUrl = None
    originalUrl: OptWebUrl = None
    ampWebUrl: OptWebUrl = None
    cdnAmpWebUrl: OptWebUrl = None
    type: Text | None = None
    provider: Provider | None = None
    quality: Count | None = None
    images: Annotated[list[Image], BeforeValidator(_listify)] = Field(default_factory=list)


class Article(_Model):
    category: Text | None = None
    title: Annotated[str, Field(min_length=1)]
    excerpt: Text = ""
    publishedDateTime: Timestamp | None = None
    webUrl: WebUrl
    originalUrl: OptWebUrl = None
    ampWebUrl: OptWebUrl = None
    cdnAmpWebUrl: OptWebUrl = None
    type: Text | None = None
    quality: Count | None = None
    heat: Count | None = None
    published: bool | None = None
    provider: Provider | None = None
    topics: Annotated[list[Text], BeforeValidator(_listify)] = Field(default_factory=list)
    images: Annotated[list[Image], BeforeValidator(_listify)] = Field(default_factory=list)
    related: Annotated[list[Related], BeforeValidator(_listify)] = Field(default_factory=list)
    secured: Text | None = None
    body: str = ""


def validate(parsed: Parsed) -> Article | Rejection:
    """Validate front matter + body; on failure list every failing field with its line."""
    data = dict(parsed.meta)
    if "body" in data:
        # a front-matter key called body would be shadowed by the real body: keep it as extra
        data["body_field"] = data.pop("body")
    data["body"] = parsed.body
    try:
        title = data.get("title")
        if isinstance(title, str):
            data["title"] = title.strip()
        return Article.model_validate(data)
    except ValidationError as exc:
        details = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            field = ".".join(str(p) for p in loc)
            got = err.get("input")
            details.append(
                {
                    "field": field,
                    "line": line_of(parsed.front_matter, loc) if loc else None,
                    "error": err["msg"],
                    # secured tokens and bodies are never echoed (rejects reach the logs)
                    "input": "<hidden>" if loc and loc[0] in _HIDDEN else _short(got),
                }
            )
        summary = "; ".join(
            d["field"] + (f" (line {d['line']})" if d["line"] else "") + ": " + d["error"]
            for d in details
        )
        return Rejection(parsed.facts, STAGE, f"invalid article: {summary}", details)


def _short(value: Any, limit: int = 200) -> Any:
    if isinstance(value, dict) and len(str(value)) > limit:
        return f"<mapping with {len(value)} keys>"
    if isinstance(value, list) and len(str(value)) > limit:
        return f"<list of {len(value)} items>"
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    return str(value)[:limit]
