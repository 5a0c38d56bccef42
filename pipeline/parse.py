"""Stage 1, parse: bytes -> front matter dict + body + file facts, or a precise rejection."""

from __future__ import annotations

import hashlib
import os
import stat as stat_mod
from typing import Any

import yaml
from frontmatter.default_handlers import YAMLHandler

from .records import FileFacts, Parsed, Rejection, Skipped

STAGE = "parse"
_HANDLER = YAMLHandler()
_BASE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BASE_LOADER):  # type: ignore[misc, valid-type]
    """Safe loading (no Python tags), with the C parser where available (~10x faster).

    Timestamps stay strings: validation parses them, so an impossible date is a field error
    with its line instead of an exception inside the YAML loader.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _BASE_LOADER.yaml_implicit_resolvers.items()
    }


_LOADER = _Loader


def read(path: str, max_bytes: int) -> tuple[FileFacts, bytes] | Rejection | Skipped:
    """Read a file whole, refusing anything that is not a regular file or is too large."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return Skipped(FileFacts(path, 0, 0), "file vanished before it could be read")
    except PermissionError as exc:
        return Rejection(FileFacts(path, 0, 0), STAGE, f"cannot read file: {exc.strerror}")
    except OSError as exc:
        return Rejection(FileFacts(path, 0, 0), STAGE, f"cannot open file: {exc.strerror}")
    try:
        st = os.fstat(fd)
        facts = FileFacts(path, st.st_size, st.st_mtime_ns)
        if not stat_mod.S_ISREG(st.st_mode):
            return Rejection(facts, STAGE, "not a regular file")
        if st.st_size > max_bytes:
            return Rejection(
                facts, STAGE, f"file is {st.st_size:,} bytes, above the limit of {max_bytes:,}",
                [{"field": None, "limit": max_bytes, "size": st.st_size}],
            )
        chunks = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        return Rejection(FileFacts(path, 0, 0), STAGE, f"cannot read file: {exc.strerror}")
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # grew while we read it
        return Rejection(facts, STAGE, f"file is above the limit of {max_bytes:,} bytes")
    facts.size = len(data)
    facts.sha256 = hashlib.sha256(data).hexdigest()
    return facts, data


def parse(facts: FileFacts, data: bytes) -> Parsed | Rejection:
    """Split and load the front matter. Accepts UTF-8 with or without BOM, LF or CRLF."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return Rejection(
            facts, STAGE,
            f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line})",
            [{"field": None, "line": line, "offset": exc.start}],
        )
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return Rejection(facts, STAGE, "empty file: no front matter")
    if not _HANDLER.detect(text):
        return Rejection(
            facts, STAGE, "no front matter: the file must start with a '---' line",
            [{"field": None, "line": 1}],
        )
    try:
        fm, body = _HANDLER.split(text)
    except ValueError:
        return Rejection(
            facts, STAGE, "front matter is never closed: no second '---' line",
            [{"field": None, "line": 1}],
        )
    try:
        meta = yaml.load(fm, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # marks are 0-based lines of the front matter, whose line 0 is the rest of the
        # opening '---' line: so mark.line + 1 is the line in the file
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc).splitlines()[0]
        where = f" at line {line}, column {mark.column + 1}" if mark is not None else ""
        reason = f"invalid YAML in front matter{where}: {problem}"
        ctx = exc.context_mark
        if exc.context and ctx is not None and ctx.line + 1 != line:
            reason += f" ({exc.context} at line {ctx.line + 1})"
        return Rejection(facts, STAGE, reason, [{"field": None, "line": line, "error": str(exc)}])
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        return Rejection(facts, STAGE, f"invalid YAML in front matter: {exc}")
    if meta is None:
        return Rejection(facts, STAGE, "front matter is empty")
    if not isinstance(meta, dict):
        return Rejection(
            facts, STAGE,
            f"front matter is a YAML {type(meta).__name__}, not a mapping of fields",
        )
    return Parsed(facts, meta, body.lstrip("\n") if body.strip() else "", fm)


def line_of(front_matter: str, loc: tuple[Any, ...]) -> int | None:
    """The file line of a field path such as ("images", 0, "width"); for error messages only."""
    try:
        node = yaml.compose(front_matter, Loader=_LOADER)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    line, node = key.start_mark.line, value
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line
        else:
            break
    return None if line is None else line + 1
