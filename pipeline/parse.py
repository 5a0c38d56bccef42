"""Stage 1, parse: bytes -> front matter dict + body + file facts, or a precise rejection."""

from __future__ import annotations

import hashlib
import os
import re
import stat as stat_mod
from typing import Any

import yaml
from frontmatter.default_handlers import YAMLHandler

from .records import FileFacts, Limits, Parsed, Rejection, Skipped

STAGE = "parse"
_HANDLER = YAMLHandler()
_BASE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


try:  # the fast path (Rust, ~10x faster than PyYAML's C loader here); optional
    import yaml_rs
except ImportError:  # pragma: no cover - a platform without its wheel: PyYAML does it all
    yaml_rs = None

_TAG = "tag:yaml.org,2002:"
# YAML 1.2 core schema, as yaml-rs resolves plain scalars, so both paths agree: no yes/no/on/off
# booleans, no sexagesimal numbers, no 0NN octal (YAML 1.1 forms that turn titles such as
# "No" or codes such as "012" into other values).
_IMPLICIT = [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^[-+]?(?:[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)$", "-+0123456789"),
    ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
              r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+0123456789."),
]


class _Loader(_BASE_LOADER):  # type: ignore[misc, valid-type]
    """Safe loading (no Python tags) with the C parser, scalars resolved as in YAML 1.2.

    Timestamps stay strings: validation parses them, so an impossible date is a field error
    with its line instead of an exception inside the YAML loader.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers
                if tag.removeprefix(_TAG) not in ("timestamp", "bool", "int", "float")]
        for first, resolvers in _BASE_LOADER.yaml_implicit_resolvers.items()
    }

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        value = node.value.replace("_", "")
        sign = -1 if value.startswith("-") else 1
        value = value.lstrip("+-")
        for prefix, base in (("0o", 8), ("0x", 16), ("0b", 2)):
            if value.startswith(prefix):
                return sign * int(value[2:], base)
        return sign * int(value, 10)


for _name, _pattern, _first in _IMPLICIT:
    _Loader.add_implicit_resolver(_TAG + _name, re.compile(_pattern), list(_first))
_Loader.add_constructor(_TAG + "int", _Loader.construct_yaml_int)

_LOADER = _Loader


class _Refused(Exception):
    def __init__(self, reason: str, line: int | None) -> None:
        super().__init__(reason)
        self.reason, self.line = reason, line


def _where(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path) or "the front matter"


def _path_to(root: yaml.Node, target: yaml.Node) -> tuple[Any, ...]:
    """The key path of a node, for the error message only (so the hot walk keeps no paths)."""
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen or isinstance(node, yaml.ScalarNode):
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((c, (*path, i)) for i, c in enumerate(node.value))
        else:
            stack.extend((v, (*path, k.value)) for k, v in node.value)
    return ()


def check_structure(root: yaml.Node, limits: Limits, track_aliases: bool) -> None:
    """Refuse alias bombs, deep nesting, huge lists/strings and duplicate keys, with the line.

    Walks the composed node tree iteratively (aliases are the same node object reached twice,
    so nothing is expanded); ``track_aliases`` is off when the text has no '*' at all.
    Measured on the corpus: ~30 µs a file, a few percent of the YAML load itself.
    """
    seen: set[int] = set()
    aliases = 0
    scalar, sequence = yaml.ScalarNode, yaml.SequenceNode
    max_chars, max_items, max_depth = limits.max_chars, limits.max_items, limits.max_depth
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if track_aliases:
            if id(node) in seen:
                aliases += 1
                if aliases > limits.max_aliases:
                    raise _Refused(
                        f"more than {limits.max_aliases} YAML alias references (at "
                        f"{_where(_path_to(root, node))}): refusing a possible alias bomb",
                        node.start_mark.line + 1,
                    )
                continue
            seen.add(id(node))
        value = node.value
        if node.__class__ is scalar:
            if len(value) > max_chars:
                raise _Refused(
                    f"{_where(_path_to(root, node))} is {len(value):,} characters long, above "
                    f"the limit of {max_chars:,}", node.start_mark.line + 1,
                )
            continue
        if depth >= max_depth:
            raise _Refused(
                f"{_where(_path_to(root, node))} is nested deeper than {max_depth} levels",
                node.start_mark.line + 1,
            )
        if len(value) > max_items:
            raise _Refused(
                f"{_where(_path_to(root, node))} has {len(value):,} entries, above the limit "
                f"of {max_items:,}", node.start_mark.line + 1,
            )
        depth += 1
        if node.__class__ is sequence:
            for child in value:
                push((child, depth))
        else:
            keys: set[Any] = set()
            for key, child in value:
                name = key.value if key.__class__ is scalar else id(key)
                if name in keys and name != "<<":
                    line = key.start_mark.line + 1
                    first = next(k for k, _ in value if k.value == name).start_mark.line + 1
                    raise _Refused(
                        f"duplicate key {_where((*_path_to(root, node), name))!r} at line "
                        f"{line} (first at line {first}): ambiguous, refusing to guess", line,
                    )
                keys.add(name)
                push((child, depth))
    if aliases:
        size = _expanded_size(root, {})
        if size > limits.max_expanded:
            raise _Refused(
                f"YAML aliases expand the front matter to {size:,} values, above the limit of "
                f"{limits.max_expanded:,}: refusing a possible alias bomb",
                root.start_mark.line + 1,
            )


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Values the document would have with every alias expanded (memoised, so cheap);
    recursion is bounded by max_depth, already checked."""
    key = id(node)
    if key not in memo:
        if isinstance(node, yaml.ScalarNode):
            memo[key] = 1
        elif isinstance(node, yaml.SequenceNode):
            memo[key] = 1 + sum(_expanded_size(c, memo) for c in node.value)
        else:
            memo[key] = 1 + sum(_expanded_size(v, memo) for _, v in node.value)
    return memo[key]


_BEFORE_NODE = frozenset(" \t\n[{,:-")
_NAME_END = frozenset(" \t\n,[]{}")


def needs_strict(text: str) -> bool:
    """Tags, anchors, aliases and merge keys: rare in feeds, and where hostile input hides; such a
    front matter takes the strict path. A tag, anchor or alias starts where a node can (after a
    space, a flow indicator or the line start); "AT & T" or "a * b" are not one (an anchor's or
    alias's name follows at once). A false positive only costs time.

    A hand-written scan: a regular expression for this measured ~270 µs on a 5 KB file, the
    scan ~5 µs.
    """
    for mark in "!&*":
        i = text.find(mark)
        while i != -1:
            if i == 0 or text[i - 1] in _BEFORE_NODE:
                if mark == "!" or (i + 1 < len(text) and text[i + 1] not in _NAME_END):
                    return True
            i = text.find(mark, i + 1)
    # YAML 1.1 line breaks (NEL, LS, PS), which YAML 1.2 parsers keep as text: one semantics
    return "<<" in text or any(ch in text for ch in "\x85\u2028\u2029")


def _within(data: Any, limits: Limits, text_len: int) -> bool:
    """The structure limits on plain loaded values (the fast path; no lines needed here).
    A value cannot be longer than the text it came from, nor a list have more entries than half
    its characters, so those checks only run for texts long enough to break them."""
    check_chars = text_len > limits.max_chars
    check_items = text_len > 2 * limits.max_items
    max_chars, max_items, max_depth = limits.max_chars, limits.max_items, limits.max_depth
    stack: list[tuple[Any, int]] = [(data, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        value, depth = pop()
        kind = value.__class__
        if kind is dict:
            children = value.values()
        elif kind is list:
            children = value
        else:
            if check_chars and kind is str and len(value) > max_chars:
                return False
            continue
        if depth >= max_depth or (check_items and len(value) > max_items):
            return False
        for child in children:
            ckind = child.__class__
            if ckind is dict or ckind is list:
                push((child, depth + 1))
            elif check_chars and ckind is str and len(child) > max_chars:
                return False
    return True


def load_yaml(front_matter: str, limits: Limits) -> Any:
    """Load the front matter safely.

    The fast path (yaml-rs) takes plain documents: no tags, anchors or aliases; duplicate keys
    are an error there too. Anything else, and anything the fast path refuses or finds beyond a
    limit, goes through the strict path, which also says precisely what is wrong and where.
    """
    if yaml_rs is not None and not needs_strict(front_matter):
        try:
            data = yaml_rs.loads(front_matter, parse_datetime=False)
        except Exception:  # noqa: BLE001 - any refusal: the strict path explains it
            pass
        else:
            if _within(data, limits, len(front_matter)):
                return data
    return load_yaml_strict(front_matter, limits)


def load_yaml_strict(front_matter: str, limits: Limits) -> Any:
    """Compose (PyYAML's C parser), check the structure on the node tree, then construct."""
    loader = _LOADER(front_matter)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_structure(node, limits, "*" in front_matter)
        return loader.construct_document(node)
    finally:
        loader.dispose()


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


def parse(facts: FileFacts, data: bytes, limits: Limits = Limits()) -> Parsed | Rejection:
    """Split and load the front matter. Accepts UTF-8 with or without BOM, LF or CRLF."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return Rejection(
                facts, STAGE, "UTF-16 text (it starts with a UTF-16 byte-order mark); "
                "article files must be UTF-8", [{"field": None, "line": 1, "offset": 0}],
            )
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
    if "\x00" in fm:
        line = fm.count("\n", 0, fm.index("\x00")) + 1
        return Rejection(
            facts, STAGE, f"NUL byte in front matter at line {line}: not a text file?",
            [{"field": None, "line": line}],
        )
    try:
        meta = load_yaml(fm, limits)
    except _Refused as exc:
        return Rejection(
            facts, STAGE, f"front matter refused at line {exc.line}: {exc.reason}",
            [{"field": None, "line": exc.line, "error": exc.reason}],
        )
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
