"""urls: registered domain (tldextract's bundled suffix list), AMP URL, relative image URLs."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any
from urllib.parse import urljoin, urlsplit

from .base import Context, Enricher, EnricherOptions, Row


class Options(EnricherOptions):
    image_base_url: str = ""


@cache
def _tld_extract() -> Any:
    import tldextract

    # suffix_list_urls=() : only the snapshot bundled in the package, never the network
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


_AMP_CACHE = ".cdn.ampproject.org"


def amp_origin(url: str | None) -> str | None:
    """The publisher's URL behind an AMP cache or viewer address, else None.

    ``https://phys-org.cdn.ampproject.org/c/s/phys.org/news/x.amp`` -> ``https://phys.org/news/x.amp``
    (``/c/`` page, ``/v/`` viewer, ``/i/`` image; ``s/`` means https), and the same for
    ``https://www.google.com/amp/s/...``.
    """
    if not url:
        return None
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    segments = parts.path.lstrip("/").split("/")
    if host.endswith(_AMP_CACHE) and segments and segments[0] in ("c", "v", "i"):
        rest = segments[1:]
    elif host.endswith("google.com") and segments and segments[0] == "amp":
        rest = segments[1:]
    else:
        return None
    scheme = "http"
    if rest and rest[0] == "s":
        scheme, rest = "https", rest[1:]
    if not rest or "." not in rest[0]:
        return None
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{'/'.join(rest)}{query}"


def registered_domain(url: str | None) -> str | None:
    """``www.bbc.co.uk`` -> ``bbc.co.uk``; an AMP cache URL gives the publisher's domain."""
    if not url:
        return None
    url = amp_origin(url) or url
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname
    except ValueError:  # e.g. a malformed IPv6 literal: let tldextract make what it can of it
        host = None
    return _host_domain(host) if host else _host_domain(url)


@lru_cache(maxsize=16384)
def _host_domain(host: str) -> str | None:
    # by host, cached: hosts repeat where URLs do not (tldextract costs ~50 µs a call)
    result = _tld_extract()(host)
    domain = getattr(result, "top_domain_under_public_suffix", None)
    if domain is None:
        domain = result.registered_domain
    return domain.lower() or None


@lru_cache(maxsize=16384)
def provider_domain(domain: str | None) -> str | None:
    """A provider's ``domain`` as published (a host, sometimes a URL) -> its registered domain."""
    domain = (domain or "").strip()
    if not domain:
        return None
    return registered_domain(domain if "//" in domain else f"http://{domain}")


def resolve(url: str | None, base: str) -> str | None:
    """A relative image URL made absolute against the base URL of the site that published the
    files (kept as it is when no base is set); ``//host/x`` gets https.

    ``base`` is a site root that may have a path, as static sites do (Jekyll's ``baseurl``): with
    ``https://h/site``, ``/assets/a.jpg`` becomes ``https://h/site/assets/a.jpg``.
    """
    if not url:
        return url
    if url.startswith("//"):
        return "https:" + url
    if not base or urlsplit(url).scheme:
        return url
    if url.startswith("/"):
        return base.rstrip("/") + url
    return urljoin(base.rstrip("/") + "/", url)


def run(ctx: Context, options: Options) -> Row:
    row = ctx.row
    base = options.image_base_url
    ctx.images = [{**i, "url": resolve(i["url"], base)} for i in ctx.images]
    return {
        "registered_domain": registered_domain(row["canonical_url"]),
        # the publisher's AMP page: given, or recovered from the AMP-cache address
        "amp_url": row.get("amp_url") or amp_origin(row.get("cdn_amp_url")),
    }


ENRICHER = Enricher(
    "urls", 2, {"registered_domain": "TEXT"}, run,
    "registered domain of the article, its AMP URL, relative image URLs resolved",
    options=Options, touches=("amp_url", "images"),
)
