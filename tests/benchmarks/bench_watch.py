#!/usr/bin/env python3
"""Benchmark of the daemon (not a test): file-to-row latency and burst drain.

Runs `pipeline watch` as a real subprocess (default settings: worker pool, debug log file) on a
fresh inbox and database, and measures from another process, as a user would see it:

* steady: files written at a fixed rate (default 100 files/s); latency = from the writer's
  close() to the file's `sources` row being visible to another SQLite connection (a poller
  thread reading new rows every millisecond); p50/p90/p99/max.
* burst: N files (default 10,000) written as fast as possible; drain time = from the first
  write to the last row visible; files/s.
* the daemon's peak RSS (VmHWM of the daemon and of its worker processes).

Files are realistic (``gen_corpus.py``: 4-6 KB typical, long tail to ~50 KB), generated into a
staging folder first, then copied into the inbox byte for byte by this script.

    python tests/benchmarks/bench_watch.py [--rate 100] [--seconds 20] [--burst 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_corpus  # noqa: E402


class Poller(threading.Thread):
    """Sees each new `sources` row from its own connection; records when it became visible."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self.db, isolation_level=None)
        last = 0
        while not self.stop.is_set():
            rows = conn.execute("SELECT rowid, path FROM sources WHERE rowid > ?", (last,)).fetchall()
            stamp = time.perf_counter()
            for rowid, path in rows:
                self.seen.setdefault(path, stamp)
                last = max(last, rowid)
            time.sleep(0.001)
        conn.close()


def peak_rss_kb(pid: int) -> dict[str, int]:
    def hwm(p: int) -> int:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children += [int(c) for c in text]
    return {"daemon_kb": hwm(pid), "workers_kb": [hwm(c) for c in children]}


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far (steadier than latency on a busy box)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=100.0, help="files/s in the steady phase")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the steady phase")
    ap.add_argument("--burst", type=int, default=10_000, help="files in the burst")
    ap.add_argument("--workdir", type=Path, help="keep files here (default: a temp folder)")
    ap.add_argument("--dump", type=Path,
                    help="write each steady file's close time (epoch s) and latency (ms) here, "
                         "as TSV, to line the tail up with the daemon's log")
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-watch-"))
    steady_n = int(args.rate * args.seconds)
    staging = work / "staging"
    if not staging.exists():
        print(f"generating {steady_n + args.burst} files in {staging} ...", file=sys.stderr)
        gen_corpus.generate(staging, count=steady_n + args.burst, per_dir=1000, check=0)
    files = sorted(staging.rglob("*.md"))
    payloads = [(p.name, p.read_bytes()) for p in files[: steady_n + args.burst]]
    inbox, db = work / "inbox", work / "articles.db"
    for leftover in [db, Path(f"{db}-wal"), Path(f"{db}-shm")]:
        leftover.unlink(missing_ok=True)
    if inbox.exists():
        subprocess.run(["rm", "-rf", str(inbox)], check=True)
    inbox.mkdir(parents=True)

    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    env["PIPELINE_LOG_FILE"] = str(work / "daemon.jsonl")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "watch", str(inbox), "--db", str(db),
         "--log-level", "warning"], env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = sqlite3.connect(db)
                ok = conn.execute("SELECT last_reconcile_at FROM daemon_heartbeat").fetchone()
                conn.close()
                if ok and ok[0]:
                    break
            except sqlite3.Error:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("daemon did not start")
            time.sleep(0.05)
        poller = Poller(db)
        poller.start()

        # steady phase
        cpu_before = cpu_s(daemon.pid)
        closed: dict[str, float] = {}
        start = time.perf_counter()
        for i in range(steady_n):
            due = start + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            name, data = payloads[i]
            path = str(inbox / "steady" / f"{i % 20:02d}" / name) if i >= 0 else ""
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
            closed[path] = time.perf_counter()
        wait_all(poller, closed, 120)
        lat = [(poller.seen[p] - t) * 1000 for p, t in closed.items()]
        steady = {
            "files": steady_n, "rate_per_s": args.rate,
            "p50_ms": round(pct(lat, 50), 1), "p90_ms": round(pct(lat, 90), 1),
            "p99_ms": round(pct(lat, 99), 1), "max_ms": round(max(lat), 1),
            "mean_ms": round(statistics.mean(lat), 1),
            # the daemon process alone (its worker processes not counted)
            "daemon_cpu_ms_per_file": round((cpu_s(daemon.pid) - cpu_before) * 1000 / steady_n, 2),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
        print(json.dumps({"steady": steady}), flush=True)
        if args.dump:
            epoch = time.time() - time.perf_counter()
            args.dump.write_text("".join(
                f"{t + epoch:.4f}\t{(poller.seen[p] - t) * 1000:.1f}\t{p}\n"
                for p, t in sorted(closed.items(), key=lambda kv: kv[1])))
        slow = sorted(((poller.seen[p] - t) * 1000, p) for p, t in closed.items())[-5:]
        print(json.dumps({"slowest": [(round(ms, 1), p) for ms, p in slow]}), flush=True)

        if not args.burst:
            print(json.dumps({"memory": peak_rss_kb(daemon.pid)}), flush=True)
            return 0
        # burst phase
        burst_paths: dict[str, float] = {}
        t0 = time.perf_counter()
        cpu_before = cpu_s(daemon.pid)
        for j in range(args.burst):
            name, data = payloads[steady_n + j]
            path = str(inbox / "burst" / f"{j // 1000:03d}" / name)
            if j % 1000 == 0:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
            burst_paths[path] = time.perf_counter()
        written = time.perf_counter() - t0
        wait_all(poller, burst_paths, 900)
        drain = max(poller.seen[p] for p in burst_paths) - t0
        burst = {
            "files": args.burst, "write_s": round(written, 2), "drain_s": round(drain, 2),
            "files_per_s": round(args.burst / drain, 1),
            "daemon_cpu_ms_per_file": round((cpu_s(daemon.pid) - cpu_before) * 1000 / args.burst, 2),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
        mem = peak_rss_kb(daemon.pid)
        print(json.dumps({"burst": burst, "memory": mem}), flush=True)
        poller.stop.set()
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(60)
    conn = sqlite3.connect(db)
    counts = conn.execute("SELECT count(*), count(DISTINCT path) FROM sources").fetchone()
    run = conn.execute("SELECT status, seen, new, duplicate, rejected FROM ingest_runs").fetchall()
    conn.close()
    print(json.dumps({"exit_code": code, "sources": counts, "ingest_runs": run,
                      "load_avg": os.getloadavg()}))
    return 0


def wait_all(poller: Poller, paths: dict[str, float], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(p not in poller.seen for p in paths):
        if time.monotonic() > deadline:
            missing = [p for p in paths if p not in poller.seen]
            raise SystemExit(f"{len(missing)} file(s) never reached the database, e.g. {missing[:3]}")
        time.sleep(0.01)


if __name__ == "__main__":
    raise SystemExit(main())
