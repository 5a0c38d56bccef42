"""parse: bytes -> front matter + body + facts, or a rejection that says what and where."""

from __future__ import annotations

import os

import pytest

from pipeline.parse import parse, read
from pipeline.records import FileFacts, Parsed, Rejection, Skipped

from .conftest import article_text, write


def facts() -> FileFacts:
    return FileFacts("/x.md", 0, 0)


def test_parses_a_corpus_file(corpus_files):
    got = read(str(corpus_files[0]), 5_000_000)
    file_facts, data = got
    assert file_facts.size == len(data) == os.path.getsize(corpus_files[0])
    assert len(file_facts.sha256) == 64
    parsed = parse(file_facts, data)
    assert isinstance(parsed, Parsed)
    assert parsed.meta["title"]
    assert parsed.body == ""


def test_every_corpus_file_parses(corpus_files):
    assert len(corpus_files) > 200
    for path in corpus_files:
        file_facts, data = read(str(path), 5_000_000)
        assert isinstance(parse(file_facts, data), Parsed), path


@pytest.mark.parametrize("prefix", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_bom_and_crlf_are_accepted(prefix, newline):
    data = prefix + article_text().encode().replace(b"\n", newline) + b"Body line" + newline
    parsed = parse(facts(), data)
    assert isinstance(parsed, Parsed)
    assert parsed.meta["title"] == "A test article"
    assert parsed.body == "Body line\n"


def test_body_is_kept():
    parsed = parse(facts(), (article_text() + "\n# Heading\n\nSome *text*.\n").encode())
    assert parsed.body == "# Heading\n\nSome *text*.\n"


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty file"),
        (b"   \n\n", "empty file"),
        (b"just some text\n", "no front matter"),
        (b'{"title": "json"}', "no front matter"),
        (b"---\ntitle: x\nwebUrl: y\n", "never closed"),
        (b"---\n---\n", "front matter is empty"),
        (b"---\n- a\n- b\n---\n", "not a mapping"),
        (b"---\ntitle: x\n\xff\xfe bad\n---\n", "not valid UTF-8"),
        (b"\xff\xfe-\x00-\x00-\x00", "UTF-16 text"),
    ],
)
def test_rejections_say_why(data, reason):
    got = parse(facts(), data)
    assert isinstance(got, Rejection)
    assert got.stage == "parse"
    assert reason in got.reason


def test_invalid_yaml_names_the_line():
    data = b'---\ntitle: "ok"\nexcerpt: "unclosed\nwebUrl: x\n---\n'
    got = parse(facts(), data)
    assert isinstance(got, Rejection)
    assert "invalid YAML" in got.reason
    assert "line " in got.reason
    assert got.details[0]["line"] == 5
    assert "quoted scalar at line 3" in got.reason


def test_bad_indentation_line_number():
    data = b"---\ntitle: ok\nprovider:\n  name: a\n domain: b\n---\n"
    got = parse(facts(), data)
    assert isinstance(got, Rejection)
    assert "line 5" in got.reason


def test_python_tags_are_refused():
    data = b"---\ntitle: !!python/object/apply:os.system ['echo pwned']\n---\n"
    got = parse(facts(), data)
    assert isinstance(got, Rejection)
    assert "invalid YAML" in got.reason


def test_size_limit(tmp_path):
    path = write(tmp_path / "big.md", article_text() + "x" * 2000)
    got = read(str(path), 1000)
    assert isinstance(got, Rejection)
    assert "above the limit of 1,000" in got.reason


def test_vanished_file_is_skipped_not_rejected(tmp_path):
    got = read(str(tmp_path / "gone.md"), 1000)
    assert isinstance(got, Skipped)


def test_directory_is_not_a_file(tmp_path):
    (tmp_path / "x.md").mkdir()
    got = read(str(tmp_path / "x.md"), 1000)
    assert isinstance(got, Rejection)
    assert "not a regular file" in got.reason
