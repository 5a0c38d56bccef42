#!/usr/bin/env python3
"""The whole benchmark of issue 7 in one run: our backfill against the peers, side by side.

    .venv/bin/python tests/benchmarks/run.py            # = make bench (~30+ min on 2 cores)
    .venv/bin/python tests/benchmarks/run.py --quick    # smoke run: 5,000 files, 1 repeat

Why one script: throughput figures taken on different days of a shared, noisy 2-core machine
cannot be compared, so every figure of the issue's table is measured here, in one session, on
the same generated files, with our runs and the peers' interleaved round by round.

What it measures (``--parts``, default all but ``burst``):

* ``backfill``: ``pipeline backfill DIR --db DB --json`` (the real CLI as a subprocess, default
  settings: workers, enrichers, debug log file) into a fresh database, per corpus size
  (``--sizes``), ``--repeats`` times. files/s = files / wall time of the subprocess (what a
  user waits for: interpreter start and imports included); the tool's own ``files_per_s`` is
  reported too. Peak memory = the highest SUM of RSS over the process and all its descendants,
  sampled from /proc every 50 ms (the issue's definition; shared copy-on-write pages count once
  per process, so the summed PSS is reported next to it). CPU = user+sys of the whole tree.
* ``rerun``: the same command again over the unchanged tree and database (stat-only skip).
* ``equality``: a ``--workers 1`` (single-process) run on the ``--peer-size`` files, and a
  canonical dump of its content tables compared with the last default run's database, timestamps
  left out.
* ``peers``: markdown-to-sqlite, dlt and the bare script (``peers.py``, their own venv) on the
  ``--peer-size`` files, medians, and the ratio of our median to each.
* ``burst`` (opt-in): ``bench_watch.py`` as a subprocess: the daemon drains ``--burst-files``
  files written at once.

Corpora come from ``gen_corpus.generate`` and are cached (in /dev/shm when it has room, so the
disk stays out of the reading side; else var/bench/corpora) and reused when count and seed
match. Databases go to var/bench/runs on disk, ours and the peers' alike. Results are printed
as Markdown tables and written to var/bench/results-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import gen_corpus  # noqa: E402
import peers as peers_mod  # noqa: E402

BENCH_DIR = REPO / "var" / "bench"
RUNS_DIR = BENCH_DIR / "runs"
SHM_DIR = Path("/dev/shm/news-pipeline-bench")
PIPELINE = REPO / ".venv" / "bin" / "pipeline"
PYTHON = REPO / ".venv" / "bin" / "python"
PARTS = ("backfill", "rerun", "equality", "peers", "burst")
DEFAULT_PARTS = ("backfill", "rerun", "equality", "peers")
PEER_NAMES = {"bare": "bare script (read + PyYAML C loader + one sqlite3 transaction)",
              "dlt": "dlt to SQLite (merge on URL, nested child tables)",
              "m2s": "markdown-to-sqlite (one flat table, no validation)"}
TARGETS = {"backfill": 5000.0, "rerun": 50000.0, "rss_mb": 300.0}

# Content tables compared by the equality check, and the columns left out of the comparison
# because they record when something happened, not what was stored.
EQUAL_TABLES = ("articles", "sources", "article_versions", "clusters", "related", "images",
                "article_topics", "providers", "topics", "rejects", "dedupe_keys", "dedupe_links",
                "dedupe_state")
TIME_COLUMNS = {"first_seen_at", "updated_at", "age_at_ingest_s", "last_ingested_at",
                "observed_at", "at"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- memory --------------------------------------------------------------------------------------
PAGE = os.sysconf("SC_PAGE_SIZE")


def descendants(pid: int) -> list[int]:
    """The process and all its descendants, from /proc/PID/task/*/children (no psutil here)."""
    out, i = [pid], 0
    while i < len(out):
        p = out[i]
        i += 1
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    out.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            pass  # the process ended between listing and reading
    return out


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class TreeRSS(threading.Thread):
    """Samples the summed RSS of a process tree; ``stop()`` returns the highest sum seen, in MB.

    A peak taken per process (VmHWM) would add up maxima reached at different times; the issue
    asks for the memory the run holds at once, hence the sum at each sample. Forked workers share
    copy-on-write pages that each one's RSS counts again, so the summed PSS (each shared page
    split between its sharers) is taken too, as ``peak_pss``: only every ``pss_every``-th sample,
    because reading smaps_rollup costs ~2 ms a process, which at 50 ms would take ~10% of a core.
    """

    def __init__(self, pid: int, interval: float = 0.05, pss_every: int = 10) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.pss_every = pid, interval, pss_every
        self.peak, self.peak_pss, self.max_procs = 0, 0, 0
        self._halt = threading.Event()

    def run(self) -> None:
        n = 0
        while True:
            pids = descendants(self.pid)
            self.peak = max(self.peak, sum(rss_bytes(p) for p in pids))
            if n % self.pss_every == 0:
                self.peak_pss = max(self.peak_pss, sum(pss_bytes(p) for p in pids))
            self.max_procs = max(self.max_procs, len(pids))
            n += 1
            if self._halt.wait(self.interval):
                return

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return round(self.peak / 2**20, 1)


# -- our tool ------------------------------------------------------------------------------------
@dataclass
class Run:
    """One `pipeline backfill` subprocess."""
    label: str
    files: int
    seconds: float          # wall time of the subprocess
    cpu_seconds: float      # user+sys of the subprocess and all its descendants
    files_per_s: float      # files / seconds
    tool_files_per_s: float | None  # what the tool reports (excludes start-up and imports)
    peak_rss_mb: float      # highest sum of RSS over the process tree
    peak_pss_mb: float      # highest sum of PSS (sampled every 0.5 s)
    max_procs: int
    load_before: float
    commit: str | None      # the lead edits the code between runs: medians must not mix commits
    summary: dict = field(default_factory=dict)


def become_subreaper() -> bool:
    """Have orphaned descendants re-parented to this process (Linux PR_SET_CHILD_SUBREAPER).

    The tool's worker pool may outlive its main process by a moment (a forkserver is a child
    of `pipeline` that exits after it, reaping the workers): re-parented to init, its and the
    workers' CPU time would never reach our RUSAGE_CHILDREN. Re-parented to us and reaped by
    ``reap_orphans``, it does.
    """
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans(timeout: float) -> int:
    """Wait (up to ``timeout`` s) for re-parented descendants to exit; returns how many."""
    n, deadline = 0, time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return n  # no children left
        if pid:
            n += 1
        elif time.monotonic() > deadline:
            return n
        else:
            time.sleep(0.01)


def fresh_db(run_dir: Path) -> Path:
    """An empty run folder; returns the database path in it."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    return run_dir / "articles.db"


def run_backfill(label: str, corpus: Path, db: Path, files: int, workers: int | None = None,
                 timeout: float = 7200) -> Run:
    """Run the real CLI once, timing it and sampling its memory; raise if it fails.

    Runs from the repository root, so config/pipeline.toml (which mirrors the built-in
    defaults) applies; PIPELINE_* variables of the caller are dropped so nothing else does. The
    debug log file is kept (it is a default) but written next to the database, not into var/log.
    """
    argv = [str(PIPELINE), "backfill", str(corpus), "--db", str(db), "--json",
            "--log-level", "warning", "--no-progress"]
    if workers is not None:
        argv += ["--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    env["PIPELINE_LOG_FILE"] = str(db.parent / "pipeline.jsonl")
    load, commit = os.getloadavg()[0], head_commit()
    reap_orphans(0)  # leftovers of earlier runs must not count as this run's CPU
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    sampler = TreeRSS(proc.pid)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"{label}: timed out after {timeout:.0f} s") from None
    finally:
        peak = sampler.stop()
    wall = time.perf_counter() - t0
    reap_orphans(30)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{label}: exit {proc.returncode}\n{err[-3000:]}")
    summary = json.loads(out.strip().splitlines()[-1])
    if summary.get("seen") != files:
        raise RuntimeError(f"{label}: saw {summary.get('seen')} files, expected {files}: {summary}")
    (db.parent / "pipeline.jsonl").unlink(missing_ok=True)
    run = Run(label=label, files=files, seconds=round(wall, 3), cpu_seconds=round(cpu, 2),
              files_per_s=round(files / wall, 1), tool_files_per_s=summary.get("files_per_s"),
              peak_rss_mb=peak, peak_pss_mb=round(sampler.peak_pss / 2**20, 1),
              max_procs=sampler.max_procs, load_before=round(load, 2), commit=commit,
              summary=summary)
    log(f"  {label:22s} {wall:7.2f} s = {run.files_per_s:9.1f} files/s (tool {run.tool_files_per_s}, "
        f"cpu {cpu:.1f} s, peak RSS {peak:.0f} MB, PSS {run.peak_pss_mb:.0f} MB, "
        f"{sampler.max_procs} procs, load {load:.1f}) "
        f"new {summary.get('new')} dup {summary.get('duplicate')} unchanged {summary.get('unchanged')} "
        f"rejected {summary.get('rejected')}")
    return run


def medians(runs: list[Run]) -> dict:
    """Medians over the runs (wall-based files/s and CPU); memory as the maximum of the peaks."""
    return {"runs": len(runs), "files": runs[0].files,
            "files_per_s": statistics.median(r.files_per_s for r in runs),
            "tool_files_per_s": statistics.median(r.tool_files_per_s or 0 for r in runs),
            "seconds": statistics.median(r.seconds for r in runs),
            "cpu_seconds": statistics.median(r.cpu_seconds for r in runs),
            "peak_rss_mb": max(r.peak_rss_mb for r in runs),
            "peak_pss_mb": max(r.peak_pss_mb for r in runs)}


# -- corpora -------------------------------------------------------------------------------------
def corpus_root(sizes: list[int]) -> Path:
    """/dev/shm when it has room for all corpora (~6 KB a file, doubled for safety), else var/."""
    need = sum(sizes) * 12_000
    try:
        if shutil.disk_usage("/dev/shm").free > need + 2**30:
            return SHM_DIR
    except OSError:
        pass
    return BENCH_DIR / "corpora"


def ensure_corpus(root: Path, count: int, seed: int) -> tuple[Path, dict]:
    """Generate a corpus, or reuse one generated before with the same count and seed.

    GENERATED.json is written last by the generator, so its presence with matching parameters
    means the folder is complete.
    """
    out = root / f"corpus-{count}-s{seed}"
    marker = out / gen_corpus.MARKER
    if marker.exists():
        meta = json.loads(marker.read_text())
        if meta.get("count") == count and meta.get("seed") == seed:
            log(f"corpus {out}: reused ({count} files)")
            return out, meta
    log(f"corpus {out}: generating {count} files ...")
    st = gen_corpus.generate(out, count=count, seed=seed, force=True, check=2)
    log(f"  {st.files} files, {st.bytes / 1e6:.0f} MB in {st.seconds:.1f} s")
    return out, json.loads(marker.read_text())


# -- equality ------------------------------------------------------------------------------------
def table_rows(con: sqlite3.Connection, table: str) -> tuple[list[str], list[str], list[tuple]]:
    """(compared columns, primary-key columns, rows sorted by all compared columns)."""
    info = con.execute(f'PRAGMA table_info("{table}")').fetchall()
    cols = [r[1] for r in info if r[1] not in TIME_COLUMNS]
    pk = [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]]
    sel = ", ".join(f'"{c}"' for c in cols)
    return cols, pk, con.execute(f'SELECT {sel} FROM "{table}" ORDER BY {sel}').fetchall()


def compare_dbs(a: Path, b: Path, examples: int = 3) -> dict:
    """Compare the content tables of two databases; per table: equal, or how they differ.

    Rows are compared whole (every column but the timestamps); when they differ, rows with the
    same primary key are matched to name the columns that differ, so a report says e.g.
    "articles: 12 rows differ in cluster_id" rather than just "not equal".
    """
    ca, cb = sqlite3.connect(f"file:{a}?mode=ro", uri=True), sqlite3.connect(f"file:{b}?mode=ro", uri=True)
    report: dict[str, dict] = {}
    try:
        names_a = {r[0] for r in ca.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table in EQUAL_TABLES:
            if table not in names_a:
                continue
            cols, pk, rows_a = table_rows(ca, table)
            cols_b, _, rows_b = table_rows(cb, table)
            entry: dict = {"rows": [len(rows_a), len(rows_b)], "equal": rows_a == rows_b}
            if cols != cols_b:
                entry.update(equal=False, columns=[cols, cols_b])
            elif not entry["equal"]:
                sa, sb = set(rows_a), set(rows_b)
                only_a, only_b = sa - sb, sb - sa
                entry["only_in_default"], entry["only_in_single"] = len(only_a), len(only_b)
                key = [cols.index(c) for c in pk] if pk else []
                if key:
                    by_b = {tuple(r[i] for i in key): r for r in only_b}
                    diff_cols: dict[str, int] = {}
                    samples = []
                    for r in sorted(only_a, key=repr):
                        other = by_b.get(tuple(r[i] for i in key))
                        if other is None:
                            continue
                        for c, x, y in zip(cols, r, other):
                            if x != y:
                                diff_cols[c] = diff_cols.get(c, 0) + 1
                                if len(samples) < examples:
                                    samples.append({"key": [r[i] for i in key], "column": c,
                                                    "default": _short(x), "single": _short(y)})
                    entry["differing_columns"] = diff_cols
                    entry["examples"] = samples
            report[table] = entry
        report["_not_compared"] = sorted(
            n for n in names_a - set(EQUAL_TABLES)
            if not n.startswith(("sqlite_", "articles_fts")))  # type: ignore[assignment]
    finally:
        ca.close()
        cb.close()
    return report


def _short(v: object, n: int = 120) -> object:
    s = repr(v)
    return v if len(s) <= n else s[:n] + "..."


# -- the parts -----------------------------------------------------------------------------------
def run_ours(size: int, corpus: Path, rounds: int, with_rerun: bool, results: dict,
             peers: list[str] | None = None, m2s_rounds: int = 0, peer_rounds: int = 0) -> Path:
    """Our fresh backfill (and re-run) ``rounds`` times; peers interleaved when given.

    Interleaving (ours, bare, dlt, m2s, ours, ...) spreads a drift in the machine's speed over
    every tool alike, which back-to-back blocks would not. Returns the last fresh database (kept
    for the equality check).
    """
    ours, rerun = [], []
    peer_runs: dict[str, list[dict]] = {p: [] for p in peers or []}
    db = RUNS_DIR / f"ours-{size}" / "articles.db"
    for r in range(max(rounds, peer_rounds if peers else 0, m2s_rounds if peers else 0)):
        if r < rounds:
            db = fresh_db(RUNS_DIR / f"ours-{size}")
            ours.append(run_backfill(f"ours {size} #{r + 1}", corpus, db, size))
            if with_rerun:
                rerun.append(run_backfill(f"ours re-run {size} #{r + 1}", corpus, db, size))
        for p in peers or []:
            if r >= (m2s_rounds if p == "m2s" else peer_rounds):
                continue
            try:
                res = peers_mod.run_peer(p, corpus, work_dir=RUNS_DIR / "peers")
            except Exception as exc:  # a broken peer must not cost the rest of the session
                log(f"  peer {p} failed: {exc}")
                results["errors"].append(f"peer {p}: {exc}")
                continue
            log(f"  peer {p:18s} {res.seconds:7.2f} s = {res.files_per_s:9.1f} files/s "
                f"(cpu {res.cpu_seconds:.1f} s, peak RSS {res.peak_rss_mb:.0f} MB) rows {res.rows}")
            peer_runs[p].append(asdict(res))
    results["backfill"][str(size)] = {"median": medians(ours), "runs": [asdict(x) for x in ours]}
    if rerun:
        results["rerun"][str(size)] = {"median": medians(rerun), "runs": [asdict(x) for x in rerun]}
    for p, runs in peer_runs.items():
        if runs:
            results["peers"][p] = {
                "files": runs[0]["files"], "runs": runs,
                "median": {"runs": len(runs),
                           "files_per_s": statistics.median(x["files_per_s"] for x in runs),
                           "seconds": statistics.median(x["seconds"] for x in runs),
                           "cpu_seconds": statistics.median(x["cpu_seconds"] for x in runs),
                           "peak_rss_mb": max(x["peak_rss_mb"] for x in runs)}}
    return db


def run_equality(size: int, corpus: Path, default_db: Path, results: dict) -> None:
    """A single-process run of the same files, compared with the default (parallel) run."""
    db = fresh_db(RUNS_DIR / f"single-{size}")
    single = run_backfill(f"ours {size} --workers 1", corpus, db, size, workers=1)
    report = compare_dbs(default_db, db)
    equal = all(v["equal"] for k, v in report.items() if not k.startswith("_"))
    results["equality"] = {"files": size, "equal": equal, "tables": report,
                           "single_process_run": asdict(single)}
    log(f"  equality on {size} files: {'equal' if equal else 'DIFFERENT'}")
    shutil.rmtree(db.parent)


def run_burst(files: int, results: dict) -> None:
    """The daemon benchmark, run as its own script (its main() is one piece, not importable)."""
    work = BENCH_DIR / f"watch-{files}"
    if work.exists():  # keep the generated staging files, start the rest afresh
        for p in work.iterdir():
            if p.name != "staging":
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    argv = [str(PYTHON), str(HERE / "bench_watch.py"), "--rate", "100", "--seconds", "2",
            "--burst", str(files), "--workdir", str(work)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    log(f"daemon burst of {files} files (bench_watch.py) ...")
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    got: dict = {k: v for line in lines for k, v in line.items()}
    if proc.returncode != 0 or "burst" not in got:
        results["errors"].append(f"burst: exit {proc.returncode}: {proc.stderr[-2000:]}")
        log(f"  burst failed: {proc.stderr[-500:]}")
        return
    mem = got.get("memory", {})
    got["burst"]["peak_rss_mb_sum_of_hwm"] = round(
        (mem.get("daemon_kb", 0) + sum(mem.get("workers_kb", []))) / 1024, 1)
    results["burst"] = got
    log(f"  burst: {got['burst']}")


# -- report --------------------------------------------------------------------------------------
def fmt(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def tables(results: dict) -> str:
    """The issue's table (ours vs the peers on the same files) and our other figures."""
    lines: list[str] = []
    psize = results["config"]["peer_size"]
    ours = results["backfill"].get(str(psize), {}).get("median")
    if results["peers"] and ours:
        lines += [f"| tool, same {psize:,} files | files/s (median of N) | CPU s (median) "
                  f"| peak RSS MB | ratio ours/peer |", "|---|---|---|---|---|",
                  f"| **ours** (`pipeline backfill`, defaults) | {fmt(ours['files_per_s'])} "
                  f"(N={ours['runs']}) | {fmt(ours['cpu_seconds'], 1)} | {fmt(ours['peak_rss_mb'])} | - |"]
        for p in ("m2s", "dlt", "bare"):
            if p in results["peers"]:
                m = results["peers"][p]["median"]
                ratio = ours["files_per_s"] / m["files_per_s"]
                lines.append(f"| {PEER_NAMES[p]} | {fmt(m['files_per_s'])} (N={m['runs']}) | "
                             f"{fmt(m['cpu_seconds'], 1)} | {fmt(m['peak_rss_mb'])} | {ratio:.2f}x |")
        lines.append("")
    lines += ["| our figures | files | files/s wall (median of N) | tool-reported files/s "
              "| CPU s | peak RSS MB (sum over processes) | peak PSS MB | target |",
              "|---|---|---|---|---|---|---|---|"]

    def row(name: str, m: dict, target: str) -> None:
        lines.append(f"| {name} | {m['files']:,} | {fmt(m['files_per_s'])} (N={m['runs']}) | "
                     f"{fmt(m['tool_files_per_s'])} | {fmt(m['cpu_seconds'], 1)} | "
                     f"{fmt(m['peak_rss_mb'])} | {fmt(m.get('peak_pss_mb'))} | {target} |")

    def verdict(value: float, goal: float, above: bool = True) -> str:
        return "met" if (value >= goal if above else value <= goal) else "not met"

    for size, v in results["backfill"].items():
        m = v["median"]
        row("backfill, fresh database", m,
            f"≥ 5,000 files/s: {verdict(m['files_per_s'], TARGETS['backfill'])}; "
            f"≤ 300 MB: {verdict(m['peak_rss_mb'], TARGETS['rss_mb'], above=False)}")
    for size, v in results["rerun"].items():
        m = v["median"]
        row("re-run, unchanged tree", m, f"≥ 50,000 files/s: {verdict(m['files_per_s'], TARGETS['rerun'])}")
    eq = results.get("equality")
    if eq:
        s = eq["single_process_run"]
        row("single process (`--workers 1`)", {**s, "runs": 1}, "equality reference")
    b = results.get("burst", {}).get("burst")
    if b:
        lines.append(f"| daemon burst (`pipeline watch`) | {b['files']:,} | {fmt(b['files_per_s'])} (N=1) "
                     f"| - | - | {fmt(b['peak_rss_mb_sum_of_hwm'])} (sum of per-process peaks) | - "
                     f"| same files/s as backfill |")
    if eq:
        lines.append("")
        if eq["equal"]:
            lines.append(f"Equality ({eq['files']:,} files): default run == `--workers 1` run on "
                         f"{', '.join(k for k in eq['tables'] if not k.startswith('_'))} "
                         f"(timestamps {', '.join(sorted(TIME_COLUMNS))} left out): **equal**.")
        else:
            lines.append(f"Equality ({eq['files']:,} files): **DIFFERENT** from the `--workers 1` run:")
            for t, v in eq["tables"].items():
                if not t.startswith("_") and not v["equal"]:
                    lines.append(f"- {t}: rows {v['rows'][0]} vs {v['rows'][1]}; "
                                 f"{v.get('only_in_default', '?')} rows only in the default run, "
                                 f"{v.get('only_in_single', '?')} only in the single-process run; "
                                 f"columns differing: {v.get('differing_columns', v.get('columns'))}; "
                                 f"e.g. {v.get('examples', [])[:2]}")
    commits = {r.get("commit") for v in [*results["backfill"].values(), *results["rerun"].values()]
               for r in v["runs"]}
    if len(commits) > 1:
        lines += ["", f"Warning: the runs were made on different commits: {sorted(map(str, commits))}"]
    if results["errors"]:
        lines += ["", "Errors:"] + [f"- {e.splitlines()[0]}" for e in results["errors"]]
    return "\n".join(lines)


def head_commit() -> str | None:
    """The checked-out commit, read from .git (the working tree may hold uncommitted changes)."""
    git = REPO / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(None, 1)[1]
        loose = git / ref
        return f"{ref} {loose.read_text().strip()}" if loose.exists() else ref
    except (OSError, IndexError):
        return None


# -- main ----------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20000, 100000],
                    help="corpus sizes (default: 20000 100000)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of ours per size (default: 3)")
    ap.add_argument("--peer-size", type=int, help="size the peers and the equality run use "
                    "(default: the first of --sizes)")
    ap.add_argument("--peer-repeats", type=int, default=3,
                    help="runs of the bare script and of dlt (default: 3)")
    ap.add_argument("--m2s-repeats", type=int, default=1,
                    help="runs of markdown-to-sqlite, ~10 ms a file, so minutes a run (default: 1)")
    ap.add_argument("--peers", default="bare,dlt,m2s", help="comma list (default: bare,dlt,m2s)")
    ap.add_argument("--parts", default=",".join(DEFAULT_PARTS),
                    help=f"comma list from {','.join(PARTS)} (default: {','.join(DEFAULT_PARTS)})")
    ap.add_argument("--burst-files", type=int, default=10000,
                    help="files in the daemon burst (default: 10000)")
    ap.add_argument("--seed", type=int, default=1, help="corpus generator seed (default: 1)")
    ap.add_argument("--corpus-root", type=Path, help="where corpora are cached (default: "
                    "/dev/shm/news-pipeline-bench if it has room, else var/bench/corpora)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 5,000 files, 1 repeat of everything, 2,000-file burst")
    ap.add_argument("--keep", action="store_true",
                    help="keep the last database of each size in var/bench/runs")
    ap.add_argument("--json", type=Path,
                    help="results file (default: var/bench/results-<time>.json)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats, args.peer_repeats, args.m2s_repeats = [5000], 1, 1, 1
        args.burst_files = 2000
    args.peer_size = args.peer_size or args.sizes[0]
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    args.peers = [p.strip() for p in args.peers.split(",") if p.strip()] if "peers" in args.parts else []
    if min(args.repeats, args.peer_repeats, args.m2s_repeats, *args.sizes) < 1:
        ap.error("sizes and repeats must be at least 1")
    bad = [p for p in args.parts if p not in PARTS] + [p for p in args.peers if p not in PEER_NAMES]
    if bad:
        ap.error(f"unknown part or peer: {bad}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not PIPELINE.exists():
        raise SystemExit(f"{PIPELINE} is missing: run `make install` first")
    started = time.strftime("%Y%m%d-%H%M%S")
    if not become_subreaper():
        log("warning: cannot become a subreaper; CPU of workers that outlive `pipeline` is lost")
    sizes = sorted(set(args.sizes) | {args.peer_size}, key=lambda s: (s != args.peer_size, s))
    results: dict = {
        "started": started,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "sqlite": sqlite3.sqlite_version, "load_at_start": os.getloadavg(),
                    "commit": head_commit()},
        "corpora": {}, "backfill": {}, "rerun": {}, "peers": {}, "errors": [],
    }
    if args.peers:
        log("peers' virtualenv ...")
        peers_mod.ensure_venv()
        results["machine"]["peer_versions"] = peers_mod.peer_versions()
    root = args.corpus_root or corpus_root(sizes)
    corpora = {}
    for size in sizes:
        corpora[size], meta = ensure_corpus(root, size, args.seed)
        results["corpora"][str(size)] = {"path": str(corpora[size]), "bytes": meta.get("bytes"),
                                         "kinds": meta.get("kinds")}
    for size in sizes:
        is_peer_size = size == args.peer_size
        if "backfill" not in args.parts and not (is_peer_size and (args.peers or "equality" in args.parts)):
            continue
        with_peers = args.peers if is_peer_size else None
        log(f"== {size} files" + (f", with peers {with_peers}" if with_peers else ""))
        peers_mod.warm_cache(corpora[size])
        try:
            db = run_ours(size, corpora[size], args.repeats, "rerun" in args.parts, results,
                          with_peers, args.m2s_repeats, args.peer_repeats)
            if "equality" in args.parts and is_peer_size:
                run_equality(size, corpora[size], db, results)
            if not args.keep:  # a 100k database takes ~1.5 GB
                shutil.rmtree(db.parent, ignore_errors=True)
        except (RuntimeError, ValueError, OSError) as exc:  # e.g. the CLI failed or printed no JSON
            log(f"FAILED: {exc}")
            results["errors"].append(str(exc))
    if "burst" in args.parts:
        run_burst(args.burst_files, results)
    results["machine"]["load_at_end"] = os.getloadavg()
    text = tables(results)
    results["table"] = text
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    out = args.json or BENCH_DIR / f"results-{started}.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nnews-pipeline benchmark {started}: {os.cpu_count()} CPUs, load "
          f"{results['machine']['load_at_start'][0]:.1f} at start, "
          f"{results['machine']['load_at_end'][0]:.1f} at end; commit {results['machine']['commit']}\n")
    print(text)
    print(f"\nresults: {out}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
