"""`pipeline run` (what `make run` starts): the daemon and Datasette together; Ctrl-C stops both."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from .conftest import article_text, wait_for, write
from .servers import fetch, free_port


def test_run_watches_and_serves_until_ctrl_c(tmp_path):
    inbox = tmp_path / "inbox"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(inbox), "--db", str(tmp_path / "a.db"),
         "--port", str(port), "--log-format", "json"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/articles"
    try:
        def count() -> int | None:
            try:
                status, body = fetch(f"{base}.json?sql=select+count(*)+as+n+from+articles"
                                     "&_shape=array", timeout=5)
            except OSError:
                return None
            return json.loads(body)[0]["n"] + 1 if status == 200 else None

        assert wait_for(count) == 1  # serving, empty
        inbox.mkdir(exist_ok=True)
        write(inbox / "a.md", article_text())
        wait_for(lambda: count() == 2)  # the daemon ingested it; Datasette shows it
        assert fetch(f"{base}/articles")[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/articles/articles" in err
    # both children stopped: nothing answers any more, and the daemon recorded its run
    try:
        fetch(f"{base}.json", timeout=2)
        raise AssertionError("Datasette still answers after Ctrl-C")
    except OSError:
        pass
    import sqlite3

    runs = sqlite3.connect(tmp_path / "a.db").execute(
        "select kind, status from ingest_runs").fetchall()
    assert ("watch", "stopped") in runs or ("watch", "completed") in runs, runs
