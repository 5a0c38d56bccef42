#!/usr/bin/env python3
"""Run "peer" tools on a folder of article files, to compare our pipeline against.

Why this exists: an ingest throughput figure means little alone.  These three
peers bracket it:

* ``markdown-to-sqlite`` (Simon Willison's CLI, v1.0): the off-the-shelf
  "Markdown with front matter -> one flat SQLite table" tool.  Nested values
  end up as JSON text columns.  It parses YAML with the pure-Python
  ``FullLoader`` and keeps every document in memory before one ``upsert_all``.
* ``dlt`` (1.x) with the ``sqlalchemy`` destination on SQLite: a general
  data-loading framework doing what our pipeline does structurally -- merge on
  a primary key (``webUrl``) and nested lists unpacked into child tables.
* a "bare script": read each file, ``yaml.load(..., CSafeLoader)``, insert into
  one table in a single ``sqlite3`` transaction.  This is roughly the floor of
  what Python + PyYAML + SQLite can do, i.e. the cost of parsing alone.

The peers live in their OWN virtualenv (default ``var/bench-peers-venv``,
git-ignored, created on demand) so that their dependencies (dlt pulls in
SQLAlchemy, pendulum, ...) never leak into the project's environment, and each
run is a separate subprocess so imports, caches and memory are isolated and
the child's peak RSS can be reported.

Timing: ``seconds`` is the wall time of the whole child process (interpreter
start, imports, listing files, loading, commit), i.e. what a user waits for;
``cpu_seconds`` is the child's user+sys CPU time, which moves much less than
wall time when other work shares the 2 cores; ``inner_seconds`` is measured
inside the child around the load itself.  Rows
are counted afterwards from the SQLite files, so a peer that "succeeds"
without writing anything is caught.

CLI::

    python tests/benchmarks/peers.py CORPUS_DIR [--repeats 3] [--only bare,dlt,m2s]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PEERS_VENV = REPO / "var" / "bench-peers-venv"
RUNS_DIR = REPO / "var" / "bench-peers-runs"

# What the peers venv gets.  markdown-to-sqlite 1.0 is the latest release
# (2021); dlt's SQLite support comes through its sqlalchemy destination, which
# needs the ``sqlalchemy`` extra.  PyYAML is listed for the bare script (it is
# also a dependency of both tools).
PEER_REQUIREMENTS = ["markdown-to-sqlite==1.0", "dlt[sqlalchemy]>=1,<2", "pyyaml"]
# Used if the pinned set cannot be installed (e.g. 1.0 withdrawn some day).
PEER_REQUIREMENTS_FALLBACK = ["markdown-to-sqlite", "dlt[sqlalchemy]", "pyyaml"]
_STAMP = ".bench-peers-requirements.json"

PEERS = ("m2s", "dlt", "bare")


@dataclass
class PeerResult:
    """One run of one peer on one folder."""
    peer: str
    files: int
    seconds: float            # wall time of the child process
    cpu_seconds: float        # user+sys CPU time of the child (less noisy on a busy machine)
    inner_seconds: float      # load time measured inside the child
    files_per_s: float        # files / seconds
    rows: dict[str, int]      # table -> row count, read back from the database(s)
    peak_rss_mb: float
    db_paths: list[str]
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------
# The peers' virtualenv
# ---------------------------------------------------------------------------
def venv_python(venv: Path = PEERS_VENV) -> Path:
    return Path(venv) / "bin" / "python"


def ensure_venv(venv: Path | str = PEERS_VENV, quiet: bool = True) -> Path:
    """Create the peers' virtualenv and install the peers if needed.

    Returns the venv's python.  A stamp file records what was installed, so
    this is a no-op once done and reinstalls if ``PEER_REQUIREMENTS`` changes.
    """
    venv = Path(venv)
    py = venv_python(venv)
    stamp = venv / _STAMP
    if py.exists() and stamp.exists():
        try:
            if json.loads(stamp.read_text())["requested"] in (PEER_REQUIREMENTS, PEER_REQUIREMENTS_FALLBACK):
                return py
        except (ValueError, KeyError):
            pass
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check"] + (["-q"] if quiet else [])
    used = PEER_REQUIREMENTS
    if subprocess.run(pip + used).returncode != 0:
        used = PEER_REQUIREMENTS_FALLBACK
        subprocess.run(pip + used, check=True)
    stamp.write_text(json.dumps({"requested": used, "versions": peer_versions(venv)}, indent=2) + "\n")
    return py


def peer_versions(venv: Path | str = PEERS_VENV) -> dict[str, str]:
    """Installed versions of the peers and what they run on (asked in the venv)."""
    code = (
        "import json, sys, sqlite3, yaml\n"
        "from importlib.metadata import version\n"
        "v = {n: version(n) for n in ('markdown-to-sqlite', 'dlt', 'sqlalchemy', 'sqlite-utils', 'pyyaml', 'yamldown')}\n"
        "v['python'] = sys.version.split()[0]; v['sqlite'] = sqlite3.sqlite_version\n"
        "v['pyyaml_libyaml'] = str(yaml.__with_libyaml__)\n"
        "print(json.dumps(v))\n"
    )
    out = subprocess.run([str(venv_python(Path(venv))), "-c", code], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


# ---------------------------------------------------------------------------
# Child programs (run with the venv's python).  Each prints one JSON line:
# {"files": n, "inner_seconds": s, "peak_rss_mb": m, ...}
# ---------------------------------------------------------------------------
_COMMON = r'''
import glob, json, os, resource, sys, time
corpus, db = sys.argv[1], sys.argv[2]
os.chdir(corpus)
paths = sorted(glob.glob("**/*.md", recursive=True))

def report(t0, **kw):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(dict(files=len(paths), inner_seconds=time.perf_counter() - t0,
                          peak_rss_mb=round(rss, 1), **kw)))
'''

# markdown-to-sqlite: call its click command in-process with the path list
# (as `markdown-to-sqlite DB articles */*.md` would), which avoids the OS
# argument-length limit at 100k files while running the tool's own code.
_M2S = _COMMON + r'''
from markdown_to_sqlite.cli import cli
t0 = time.perf_counter()
cli.main([db, "articles", *paths], standalone_mode=False)
report(t0)
'''

# dlt: merge on webUrl; nested provider is flattened into columns, lists
# (topics, images, related, related.images, provider.images) become child
# tables.  Items are yielded in pages of 1000, as dlt's docs advise for speed.
_DLT = _COMMON + r'''
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
import warnings; warnings.filterwarnings("ignore")
import dlt, yaml
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
pipes = sys.argv[3]

def articles():
    page = []
    for rel in paths:
        with open(rel, encoding="utf-8") as fh:
            text = fh.read()
        end = text.find("\n---", 3)
        doc = yaml.load(text[3:end], Loader=Loader)
        doc["_path"] = rel
        page.append(doc)
        if len(page) >= 1000:
            yield page
            page = []
    if page:
        yield page

t0 = time.perf_counter()
resource_ = dlt.resource(articles, name="articles", write_disposition="merge", primary_key="webUrl")
pipeline = dlt.pipeline(pipeline_name="bench_peers", pipelines_dir=pipes, dataset_name="news",
                        destination=dlt.destinations.sqlalchemy(credentials="sqlite:///" + db))
info = pipeline.run(resource_)
report(t0, failed_jobs=bool(info.has_failed_jobs))
'''

# Bare script: the minimum a hand-written loader does -- parse with libyaml,
# keep a few scalar columns plus the whole document as JSON, one transaction.
_BARE = _COMMON + r'''
import sqlite3, yaml
Loader = yaml.CSafeLoader
t0 = time.perf_counter()
con = sqlite3.connect(db)
con.execute("""CREATE TABLE articles (path TEXT PRIMARY KEY, web_url TEXT, title TEXT,
               excerpt TEXT, published TEXT, provider TEXT, doc TEXT)""")

def rows():
    for rel in paths:
        with open(rel, encoding="utf-8") as fh:
            text = fh.read()
        end = text.find("\n---", 3)
        d = yaml.load(text[3:end], Loader=Loader)
        prov = d.get("provider") or {}
        yield (rel, d.get("webUrl"), d.get("title"), d.get("excerpt"),
               str(d.get("publishedDateTime")), prov.get("domain"),
               json.dumps(d, default=str, ensure_ascii=False))

with con:
    con.executemany("INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?)", rows())
con.close()
report(t0)
'''

_SCRIPTS = {"m2s": _M2S, "dlt": _DLT, "bare": _BARE}


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------
def count_rows(db_paths: list[Path]) -> dict[str, int]:
    """Row count of every user table in the given SQLite files."""
    counts: dict[str, int] = {}
    for p in db_paths:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            names = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            for n in names:
                counts[n] = con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]
        finally:
            con.close()
    return counts


def warm_cache(corpus_dir: Path | str) -> int:
    """Read every file once so the first peer run does not pay a cold page cache."""
    n = 0
    for p in Path(corpus_dir).rglob("*.md"):
        p.read_bytes()
        n += 1
    return n


def run_peer(peer: str, corpus_dir: Path | str, work_dir: Path | str | None = None,
             venv: Path | str = PEERS_VENV, keep: bool = False, timeout: float = 3600) -> PeerResult:
    """Run one peer (``"m2s"``, ``"dlt"`` or ``"bare"``) on ``corpus_dir`` into a fresh database.

    Raises ``RuntimeError`` if the child fails or writes no article rows.
    Databases are deleted afterwards unless ``keep``.
    """
    if peer not in _SCRIPTS:
        raise ValueError(f"unknown peer {peer!r}; choose from {PEERS}")
    py = ensure_venv(venv)
    corpus = Path(corpus_dir).resolve()
    base = Path(work_dir) if work_dir else RUNS_DIR
    run_dir = (base / peer).resolve()
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    db = run_dir / f"{peer}.db"
    argv = [str(py), "-c", _SCRIPTS[peer], str(corpus), str(db)]
    if peer == "dlt":
        argv.append(str(run_dir / "pipelines"))
    env = dict(os.environ, RUNTIME__DLTHUB_TELEMETRY="false", PYTHONDONTWRITEBYTECODE="1")
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{peer} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    # dlt with SQLite puts each dataset in its own attached file: <db>__<dataset>.db
    dbs = sorted(p for p in run_dir.glob("*.db") if not p.name.endswith("_staging.db"))
    rows = count_rows(dbs)
    if rows.get("articles", 0) == 0:
        raise RuntimeError(f"{peer} wrote no rows to 'articles': {rows}")
    files = report.pop("files")
    result = PeerResult(peer=peer, files=files, seconds=round(wall, 3), cpu_seconds=round(cpu, 3),
                        inner_seconds=round(report.pop("inner_seconds"), 3),
                        files_per_s=round(files / wall, 1), rows=rows,
                        peak_rss_mb=report.pop("peak_rss_mb"),
                        db_paths=[str(p) for p in dbs], extra=report)
    if not keep:
        shutil.rmtree(run_dir)
    return result


def run_markdown_to_sqlite(corpus_dir: Path | str, **kw) -> PeerResult:
    """markdown-to-sqlite 1.0 into a fresh db: one flat table ``articles``."""
    return run_peer("m2s", corpus_dir, **kw)


def run_dlt(corpus_dir: Path | str, **kw) -> PeerResult:
    """dlt -> SQLite (sqlalchemy destination), merge on webUrl, nested child tables."""
    return run_peer("dlt", corpus_dir, **kw)


def run_bare_script(corpus_dir: Path | str, **kw) -> PeerResult:
    """open + CSafeLoader + one sqlite3 transaction into one table."""
    return run_peer("bare", corpus_dir, **kw)


def run_all(corpus_dir: Path | str, repeats: int = 3, peers: tuple[str, ...] = PEERS,
            **kw) -> dict[str, dict]:
    """Run each peer ``repeats`` times; return per peer the runs and the median.

    The cache is warmed first and peers are interleaved (a, b, c, a, b, c...)
    so a drift in machine speed affects them alike.
    """
    warm_cache(corpus_dir)
    runs: dict[str, list[PeerResult]] = {p: [] for p in peers}
    for _ in range(repeats):
        for p in peers:
            r = run_peer(p, corpus_dir, **kw)
            runs[p].append(r)
            print(f"  {p:5s} {r.files} files in {r.seconds:7.2f}s = {r.files_per_s:8.1f} files/s "
                  f"(cpu {r.cpu_seconds:.2f}s, inner {r.inner_seconds:.2f}s, peak RSS {r.peak_rss_mb:.0f} MB) "
                  f"rows={r.rows}",
                  file=sys.stderr, flush=True)
    return {p: {"median_seconds": statistics.median(r.seconds for r in rs),
                "median_files_per_s": statistics.median(r.files_per_s for r in rs),
                "median_cpu_seconds": statistics.median(r.cpu_seconds for r in rs),
                "median_files_per_cpu_s": statistics.median(r.files / r.cpu_seconds for r in rs),
                "runs": [asdict(r) for r in rs]} for p, rs in runs.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark peer tools on a folder of article files.")
    ap.add_argument("corpus_dir", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default=",".join(PEERS), help=f"comma list from {PEERS}")
    ap.add_argument("--venv", type=Path, default=PEERS_VENV)
    ap.add_argument("--work-dir", type=Path, default=RUNS_DIR, help="where the databases are written")
    ap.add_argument("--keep", action="store_true", help="keep the databases of the last run")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    peers = tuple(p.strip() for p in args.only.split(",") if p.strip())
    ensure_venv(args.venv, quiet=False)
    versions = peer_versions(args.venv)
    print(f"peer versions: {versions}", file=sys.stderr)
    res = run_all(args.corpus_dir, repeats=args.repeats, peers=peers, venv=args.venv,
                  work_dir=args.work_dir, keep=args.keep)
    out = {"corpus_dir": str(args.corpus_dir), "versions": versions, "results": res}
    for p, r in res.items():
        print(f"{p:5s} median {r['median_seconds']:.2f}s  {r['median_files_per_s']:.1f} files/s "
              f"(cpu {r['median_cpu_seconds']:.2f}s = {r['median_files_per_cpu_s']:.1f} files per cpu-s) "
              f"over {len(r['runs'])} run(s)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
