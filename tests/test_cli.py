"""The `pipeline` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from pipeline.cli import main

from .conftest import article_text, scalar, write


def test_help_explains(runner):
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "backfill" in result.output and "config" in result.output
    result = runner.invoke(main, ["backfill", "--help"])
    assert "--dry-run" in result.output and "--workers" in result.output


def test_backfill_json_summary(runner, inbox, db_path, tmp_path):
    write(inbox / "a.md", article_text())
    write(inbox / "b.md", "no front matter")
    result = runner.invoke(main, ["backfill", str(inbox), "--db", str(db_path), "--json",
                                  "--workers", "1", "--log-level", "error"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["seen"], summary["new"], summary["rejected"]) == (2, 1, 1)
    assert summary["files_per_s"] > 0
    assert scalar(db_path, "select count(*) from articles") == 1


def test_backfill_text_summary_and_default_db(runner, inbox, tmp_path):
    write(inbox / "a.md", article_text())
    result = runner.invoke(main, ["backfill", str(inbox), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "new 1" in result.stdout and "files/s" in result.stdout
    assert (tmp_path / "var" / "articles.db").exists()
    assert (tmp_path / "var" / "log" / "pipeline.jsonl").exists()


def test_missing_path_is_a_usage_error(runner, tmp_path):
    result = runner.invoke(main, ["backfill", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such file or folder" in result.output


def test_bad_config_is_a_usage_error_naming_the_key(runner, tmp_path):
    (tmp_path / "c.toml").write_text("batch_size = -1\n")
    result = runner.invoke(main, ["config", "--config", str(tmp_path / "c.toml")])
    assert result.exit_code == 2
    assert "batch_size" in result.output


def test_config_prints_effective_settings(runner, monkeypatch):
    monkeypatch.setenv("PIPELINE_BATCH_SIZE", "42")
    result = runner.invoke(main, ["config", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["batch_size"] == 42
    assert data["dedupe"]["tracking_params"][0] == "utm_*"
    text = runner.invoke(main, ["config"]).stdout
    assert "batch_size = 42" in text and "[dedupe]" in text


def test_every_stage_is_logged_and_secrets_never_are(runner, inbox, tmp_path):
    write(inbox / "a.md", article_text() + "A secret body paragraph.\n")
    write(inbox / "bad.md", article_text(url="ftp://x"))
    log_file = tmp_path / "log.jsonl"
    env = {"PIPELINE_LOG_FILE": str(log_file)}
    result = runner.invoke(main, ["backfill", str(inbox), "--workers", "1", "--log-format", "json"],
                           env=env)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    good = [e for e in events if e.get("path", "").endswith("/a.md")]
    assert [e["event"] for e in good] == ["parse", "validate", "dedupe", "enrich", "store"]
    assert all("ms" in e and e["outcome"] for e in good)
    assert good[2]["article_id"] and good[2]["decision"] == "new canonical URL"
    bad = [e for e in events if e.get("path", "").endswith("/bad.md")]
    assert [(e["event"], e["outcome"]) for e in bad][-2] == ("validate", "rejected")
    assert "webUrl" in bad[-2]["reason"]
    assert {"run.start", "run.end"} <= {e["event"] for e in events}
    raw = log_file.read_text() + result.output
    assert "SECRET-TOKEN" not in raw and "secret body" not in raw


def test_runs_as_a_real_process_from_any_directory(inbox, tmp_path):
    write(inbox / "a.md", article_text())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "backfill", str(inbox), "--db", "rel.db", "--json"],
        cwd=elsewhere, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PIPELINE_LOG_FILE": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["new"] == 1
    assert (elsewhere / "rel.db").exists()
    # stderr is not a terminal here: JSON lines
    assert json.loads(proc.stderr.splitlines()[0])["event"] == "run.start"


def test_unusable_database_is_a_clear_error(runner, inbox, tmp_path):
    write(inbox / "a.md", article_text())
    (tmp_path / "junk.db").write_bytes(b"this is not a SQLite database" * 100)
    result = runner.invoke(main, ["backfill", str(inbox), "--db", str(tmp_path / "junk.db"),
                                  "--workers", "1"])
    assert result.exit_code == 1
    assert "is damaged" in result.output and "junk.db" in result.output
    assert "pipeline doctor" in result.output
    assert "Traceback" not in result.output
