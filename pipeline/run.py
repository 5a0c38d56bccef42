"""``pipeline run``: the daemon and Datasette together, as two child processes.

Two processes rather than two threads: each keeps its own signal handling and event loop
(watchdog threads, uvicorn), and one crashing cannot take the other's state with it. Ctrl-C (or
SIGTERM) stops both: the daemon commits the batch in hand first. If either exits on its own, the
other is stopped and its exit status is returned.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from .logs import get_logger

log = get_logger()
STOP_TIMEOUT_S = 20.0


def run_both(watch_args: list[str], serve_args: list[str], common: list[str], url: str) -> int:
    """Start ``pipeline watch`` and ``pipeline serve`` with the given arguments; wait."""
    me = [sys.executable, "-m", "pipeline"]
    children = {
        "watch": subprocess.Popen([*me, "watch", *watch_args, *common], stdin=subprocess.DEVNULL),
        "serve": subprocess.Popen([*me, "serve", *serve_args, *common], stdin=subprocess.DEVNULL),
    }
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"Daemon watching {' '.join(a for a in watch_args if not a.startswith('-'))}; "
          f"browse the articles at {url}  (Ctrl-C stops both)", file=sys.stderr, flush=True)
    status = 0
    try:
        while not stopping:
            ended = {name: p.returncode for name, p in children.items() if p.poll() is not None}
            if ended:
                name, status = next(iter(ended.items()))
                log.error("run.child_exited", child=name, status=status)
                status = status or 1
                break
            time.sleep(0.2)
    finally:
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
