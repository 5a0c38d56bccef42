"""Bad input never crashes a run and never loses data: every case becomes a rejects row with the
stage and a precise reason, and a log line; the good files beside it go through."""

from __future__ import annotations

import json
import os
import socket

import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from pipeline.config import load_settings
from pipeline.ingest import backfill, options_from
from pipeline.parse import parse
from pipeline.prepare import prepare_file
from pipeline.records import FileFacts, Parsed, Prepared, Rejection, Skipped
from pipeline.validate import Article, validate

from .conftest import article_text, query, write

GOOD = article_text()

BOMB = (
    '---\ntitle: "x"\nwebUrl: "https://e.com/a"\n'
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n"
        for p, n in zip("abcdefgh", "bcdefghi")
    )
    + "---\n"
)

# name -> (content, stage, words the reason must contain)
CASES: dict[str, tuple[bytes | str, str, list[str]]] = {
    "no_front_matter.md": ("Just a note.\n", "parse", ["no front matter"]),
    "never_closed.md": ('---\ntitle: "x"\nwebUrl: "https://e.com/a"\n', "parse", ["never closed"]),
    "empty.md": ("", "parse", ["empty file"]),
    "only_dashes.md": ("---\n", "parse", ["never closed"]),
    "json.md": ('{"title": "x", "webUrl": "https://e.com/a"}\n', "parse", ["no front matter"]),
    "tabs.md": ('---\ntitle: "x"\n\twebUrl: "https://e.com/a"\n---\n', "parse",
                ["invalid YAML", "line 3"]),
    "bad_indent.md": ("---\ntitle: x\nprovider:\n  name: a\n domain: b\n---\n", "parse",
                      ["invalid YAML", "line 5"]),
    "duplicate_key.md": (GOOD.replace("type: article", 'title: "Another"'), "parse",
                         ["duplicate key 'title'", "line 7", "first at line 3"]),
    "unclosed_quote.md": ('---\ntitle: "x\nwebUrl: "https://e.com/a"\n---\n', "parse",
                          ["invalid YAML", "line"]),
    "python_tag.md": ("---\ntitle: !!python/object/apply:os.system ['touch /tmp/pwned']\n---\n",
                      "parse", ["invalid YAML", "line 2", "python/object"]),
    "unknown_tag.md": ('---\ntitle: !secret "x"\nwebUrl: "https://e.com/a"\n---\n', "parse",
                       ["invalid YAML", "line 2", "!secret"]),
    "alias_bomb.md": (BOMB, "parse", ["alias", "line"]),
    "deep.md": ("---\ntitle: x\nwebUrl: https://e.com/a\nextra: " + "[" * 40 + "]" * 40 + "\n---\n",
                "parse", ["nested deeper than 16 levels", "line 4"]),
    "long_line.md": ('---\ntitle: "' + "A" * 1_000_000 + '"\nwebUrl: "https://e.com/a"\n---\n',
                     "parse", ["title is 1,000,000 characters long", "line 2"]),
    "utf16.md": (GOOD.encode("utf-16"), "parse", ["UTF-16"]),
    "latin1.md": (article_text(title="Caf\xe9").encode("latin-1"), "parse",
                  ["not valid UTF-8", "byte 0xe9", "line 3"]),
    "nul.md": (GOOD.replace("type: article", "type: art\x00icle"), "parse", ["NUL byte", "line 7"]),
    "invalid_utf8.md": (GOOD.encode().replace(b"Something", b"Some\xc3\x28thing"), "parse",
                        ["not valid UTF-8", "line 4"]),
    "missing_title_url.md": ("---\ncategory: news\nexcerpt: x\n---\n", "validate",
                             ["title", "webUrl", "Field required"]),
    "wrong_type.md": (GOOD.replace("quality: 40", "quality: high"), "validate",
                      ["quality (line 8)", "integer"]),
    "odd_date.md": (article_text(published="'April 22nd, 2020'"), "validate",
                    ["publishedDateTime (line 5)"]),
    "impossible_date.md": (article_text(published="2020-13-45T10:00:00Z"), "validate",
                           ["publishedDateTime (line 5)"]),
    "javascript_url.md": (article_text(url="javascript:alert(1)"), "validate",
                          ["webUrl (line 6)", "http(s)"]),
    "data_url.md": (GOOD.replace("https://example.com/img/a.jpg", "data:image/png;base64,AAA"),
                    "validate", ["images.0.url (line 21)", "data"]),
    "credentials_url.md": (article_text(url="https://user:secret@example.com/a"), "validate",
                           ["webUrl (line 6)", "credentials"]),
    "absurd_image.md": (GOOD.replace("width: 800", "width: 99999999"), "validate",
                        ["images.0.width (line 22)"]),
    "many_related.md": (article_text(extra="related:\n" + "".join(
        f'  - title: "r{i}"\n    webUrl: "https://e.com/r{i}"\n' for i in range(10_000))),
        "parse", ["related has 10,000 entries", "above the limit of 1,000"]),
}

ACCEPTED = {  # odd but valid: stored as they are
    "rtl.md": article_text(title="\u05e9\u05dc\u05d5\u05dd \u202eevil\u202c world",
                           url="https://e.com/rtl"),
    "zero_width.md": article_text(title="zero\u200bwidth\u200d join", url="https://e.com/zw"),
    "emoji.md": article_text(title="Robots \U0001f916 take over \U0001f680", url="https://e.com/em"),
}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    inbox = root / "inbox"
    outside = root / "outside"
    write(outside / "secret.md", GOOD.replace("a-test-article", "outside"))
    for name, (content, _, _) in CASES.items():
        write(inbox / name, content)
    for name, content in ACCEPTED.items():
        write(inbox / name, content)
    write(inbox / "zz_good.md", GOOD)
    (inbox / "folder.md").mkdir()
    write(inbox / "folder.md" / "inside.md", article_text(url="https://e.com/inside"))
    os.mkfifo(inbox / "fifo.md")
    os.symlink("loop_b.md", inbox / "loop_a.md")
    os.symlink("loop_a.md", inbox / "loop_b.md")
    os.symlink("nowhere.md", inbox / "dangling.md")
    os.symlink(outside / "secret.md", inbox / "outside_link.md")
    os.symlink("zz_good.md", inbox / "inside_link.md")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(inbox / "socket.md"))
    log_file = root / "log.jsonl"
    settings = load_settings(None, db=str(root / "a.db"), log_file=str(log_file), workers=2,
                             batch_size=7)
    from pipeline import logs

    logs.configure(level="error", fmt="json", file=log_file, file_level="debug")
    summary = backfill(settings, [str(inbox)])
    sock.close()
    rejects = {os.path.basename(p): (stage, reason, json.loads(details))
               for p, stage, reason, details in query(
                   root / "a.db", "select path, stage, reason, details from rejects")}
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    return {"summary": summary, "rejects": rejects, "events": events, "db": root / "a.db",
            "inbox": inbox}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file_is_rejected_with_a_precise_reason(ingested, name):
    _, stage, words = CASES[name]
    assert name in ingested["rejects"], f"{name} was not rejected"
    got_stage, reason, details = ingested["rejects"][name]
    assert got_stage == stage
    for word in words:
        assert word in reason, (word, reason)
    logged = [e for e in ingested["events"]
              if e.get("path", "").endswith("/" + name) and e.get("outcome") == "rejected"]
    assert logged and logged[0]["event"] == stage and logged[0]["level"] == "warning"


@pytest.mark.parametrize("name, words", [
    ("folder.md", ["a folder, not a file"]),
    ("fifo.md", ["FIFO"]),
    ("socket.md", ["socket"]),
    ("loop_a.md", ["symlink loop"]),
    ("dangling.md", ["dangling symlink", "nowhere.md"]),
    ("outside_link.md", ["outside the watched folders", "follow_symlinks"]),
])
def test_file_system_oddities_are_rejected(ingested, name, words):
    stage, reason, _ = ingested["rejects"][name]
    assert stage == "parse"
    for word in words:
        assert word in reason


def test_the_good_files_went_through(ingested):
    titles = {t for (t,) in query(ingested["db"], "select title from articles")}
    assert "A test article" in titles
    assert "Robots \U0001f916 take over \U0001f680" in titles
    assert "zero\u200bwidth\u200d join" in titles  # stored as published
    assert any("\u202e" in t for t in titles)
    # a folder named like an article is still searched; a link inside the tree is followed
    assert query(ingested["db"], "select count(*) from articles where canonical_url like "
                 "'%/inside'") == [(1,)]
    paths = {os.path.basename(p) for (p,) in query(
        ingested["db"], "select path from sources where status='ingested'")}
    assert {"inside_link.md", "zz_good.md", "inside.md"} <= paths
    summary = ingested["summary"]
    assert summary["rejected"] == len(CASES) + 7  # + folder, fifo, socket, 2 loop links, dangling, outside


def test_nothing_is_written_by_hostile_yaml():
    assert not os.path.exists("/tmp/pwned")


def test_rejections_are_not_repeated_on_the_next_run(ingested):
    settings = load_settings(None, db=str(ingested["db"]), log_file="", workers=1)
    before = query(ingested["db"], "select count(*) from rejects")[0][0]
    summary = backfill(settings, [str(ingested["inbox"])])
    assert summary["rejected"] == 0 and summary["new"] == 0
    assert query(ingested["db"], "select count(*) from rejects")[0][0] == before


def test_permission_denied(tmp_path):
    """Run the real read path as an unprivileged user (root reads everything)."""
    path = write(tmp_path / "private.md", GOOD)
    os.chmod(path, 0o000)
    options = options_from(load_settings(None, log_file=""))
    if os.geteuid() != 0:
        got = prepare_file(str(path), options)
    else:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: drop to nobody, report the outcome's reason
            try:
                os.setgid(65534)
                os.setuid(65534)
                got = prepare_file(str(path), options)
                os.write(write_end, json.dumps([type(got).__name__, got.reason]).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        kind, reason = json.loads(os.read(read_end, 65536))
        os.waitpid(pid, 0)
        got = Rejection(FileFacts(str(path), 0, 0), "parse", reason) if kind == "Rejection" else None
    assert isinstance(got, Rejection)
    assert "Permission denied" in got.reason


def test_file_deleted_between_listing_and_reading(tmp_path):
    got = prepare_file(str(tmp_path / "gone.md"), options_from(load_settings(None, log_file="")))
    assert isinstance(got, Skipped)


def test_file_truncated_to_nothing_while_queued(tmp_path):
    path = write(tmp_path / "a.md", GOOD)
    path.write_bytes(b"---\ntitle: ")
    got = prepare_file(str(path), options_from(load_settings(None, log_file="")))
    assert isinstance(got, Rejection) and "never closed" in got.reason


yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30),
    st.sampled_from(["2020-04-22T10:09:00Z", "2020-02-31", "https://e.com/a", "javascript:x",
                     "/rel/img.png", "&amp;", "[…]"]),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12,
)
field_names = st.sampled_from([
    "title", "excerpt", "webUrl", "originalUrl", "publishedDateTime", "quality", "heat",
    "provider", "topics", "images", "related", "published", "secured", "category", "x",
])


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(field_names, yaml_values, max_size=10), st.booleans())
def test_generated_front_matter_is_an_article_or_a_rejection(fields, as_text):
    """Whatever the front matter, parse+validate+build give a record, never an exception."""
    import yaml

    if as_text:
        body = yaml.safe_dump(fields, allow_unicode=True)
    else:  # hand-made YAML-ish text, often broken
        body = "\n".join(f"{k}: {v}" for k, v in fields.items())
    data = f"---\n{body}\n---\n".encode("utf-8", "surrogatepass")
    facts = FileFacts("/x.md", len(data), 0, "0" * 64)
    parsed = parse(facts, data)
    if isinstance(parsed, Rejection):
        assert parsed.reason
        return
    assert isinstance(parsed, Parsed)
    article = validate(parsed)
    if isinstance(article, Rejection):
        assert article.reason and article.details
        return
    assert isinstance(article, Article)
    from pipeline.prepare import build

    prepared = build(article, facts, options_from(load_settings(None, log_file="")))
    assert isinstance(prepared, Prepared)
    assert isinstance(json.loads(prepared.snapshot), dict)
