"""The fast YAML path (yaml-rs) and the strict one (PyYAML) must agree: a differential test on
every corpus file and on generated documents."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.parse import _HANDLER, Limits, load_yaml, load_yaml_strict, yaml_rs

pytestmark = pytest.mark.skipif(yaml_rs is None, reason="yaml-rs is not installed")
LIMITS = Limits()


def fast(text: str):
    return yaml_rs.loads(text, parse_datetime=False)


def test_every_corpus_file_loads_the_same(corpus_files):
    for path in corpus_files:
        fm, _ = _HANDLER.split(path.read_text(encoding="utf-8-sig"))
        assert fast(fm) == load_yaml_strict(fm, LIMITS), path
        assert load_yaml(fm, LIMITS) == load_yaml_strict(fm, LIMITS)


# plain scalars as they appear unquoted in feeds, and the YAML 1.1/1.2 traps
plain = st.one_of(
    st.sampled_from([
        "yes", "No", "on", "OFF", "true", "False", "null", "~", "012", "0o17", "0x1F", "0b11",
        "1_000", "1:20", "12:30:00", "1e3", "-1.5", ".5", "+.inf", ".NaN", "2020-04-22",
        "2020-04-22T10:09:00Z", "2020-04-22 10:09", "https://e.com/a?b=1&c=2", "/assets/x.png",
        "AI", "Machine Learning", "3.14", "-0", "0.", "1.", "Jan 5", "v1.2.3", "10%",
    ]),
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"[A-Za-z][A-Za-z0-9 .,/-]{0,20}[A-Za-z0-9]", fullmatch=True),
)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["title", "quality", "published", "webUrl", "topics",
                                        "heat", "when", "x_y"]),
                       st.one_of(plain, st.lists(plain, max_size=3)), min_size=1))
def test_generated_plain_documents_load_the_same(fields):
    lines = []
    for key, value in fields.items():
        if isinstance(value, list):
            lines.append(f"{key}:" + "".join(f"\n  - {v}" for v in value) if value else f"{key}: []")
        else:
            lines.append(f"{key}: {value}")
    text = "\n".join(lines) + "\n"
    try:
        strict = load_yaml_strict(text, LIMITS)
    except yaml.YAMLError:
        return  # not YAML at all; the rejection tests cover how that is reported
    assert _same(load_yaml(text, LIMITS), strict), text


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
              st.floats(allow_nan=False)),
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=6), c, max_size=3)),
    max_leaves=10))
def test_dumped_documents_load_the_same(value):
    text = yaml.safe_dump({"v": value}, allow_unicode=True)
    assert _same(load_yaml(text, LIMITS), load_yaml_strict(text, LIMITS)), text
