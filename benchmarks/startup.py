#!/usr/bin/env python3
"""Start-up benchmark: launch to first answer of ``isthmus up``, and ``import isthmus.server``.

Each case runs as a fresh process, several times, interleaved (so a busy
moment of the machine hits every case alike); medians are printed side by
side with two baselines measured in the same run: ``python -c pass`` and a bare
falcon app served by waitress answering one request. ``--old SRC`` adds the
same cases for another checkout's ``src`` (e.g. the code before a change),
put first on PYTHONPATH.

    python benchmarks/startup.py                      # 7 runs of each case
    git worktree add /tmp/old <commit>
    python benchmarks/startup.py --old /tmp/old/src --runs 9
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

PYTHON = sys.executable
ISTHMUS = str(Path(PYTHON).with_name("isthmus"))

BARE_SERVER = """
import sys, falcon, waitress
class Root:
    def on_get(self, req, resp):
        resp.media = {"ok": True}
app = falcon.App()
app.add_route("/", Root())
waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]), _quiet=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def first_answer_s(args: list[str], port: int, env: dict[str, str]) -> float:
    """Seconds from launching ``args`` until ``GET /`` on ``port`` answers 200."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while not _answers(port):
            if proc.poll() is not None:
                raise RuntimeError(f"{args} exited with {proc.returncode}")
            if time.perf_counter() - started > 60:
                raise RuntimeError(f"{args} did not answer within 60 s")
            time.sleep(0.005)
        return time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_s(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def cases(src: str | None, scratch: Path) -> dict[str, Callable[[], float]]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    warm = scratch / f"warm-{abs(hash(src))}"

    def up(fresh: bool) -> float:
        data = scratch / f"fresh-{time.perf_counter_ns()}" if fresh else warm
        port = free_port()
        elapsed = first_answer_s([ISTHMUS, "up", "--data-dir", str(data), "--port", str(port)],
                                 port, env)
        if fresh:
            shutil.rmtree(data, ignore_errors=True)
        return elapsed

    up(fresh=False)   # creates and migrates the warm data dir once
    return {"isthmus up, fresh data dir": lambda: up(True),
            "isthmus up, warm data dir": lambda: up(False),
            "import isthmus.server": lambda: run_s([PYTHON, "-c", "import isthmus.server"],
                                                   env)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--old", metavar="SRC", help="also measure this src directory")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="isthmus-startup-"))
    try:
        baselines = {
            "python -c pass": lambda: run_s([PYTHON, "-c", "pass"], dict(os.environ)),
            "falcon + waitress, one answer": lambda: (lambda port: first_answer_s(
                [PYTHON, "-c", BARE_SERVER, str(port)], port, dict(os.environ)))(free_port()),
        }
        columns = {"this tree": cases(None, scratch)}
        if args.old:
            columns["old (--old)"] = cases(args.old, scratch)
        samples: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.runs):   # interleaved: each round measures every case once
            for name, measure in baselines.items():
                samples.setdefault(("baseline", name), []).append(measure())
            for column, measures in columns.items():
                for name, measure in measures.items():
                    samples.setdefault((column, name), []).append(measure())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def median_ms(key: tuple[str, str]) -> str:
        return f"{statistics.median(samples[key]) * 1000:8.0f} ms"

    print(f"Medians of {args.runs} runs (launch to first answer, or to exit for imports)")
    for name in baselines:
        print(f"  baseline  {name:32} {median_ms(('baseline', name))}")
    header = "".join(f"{column:>14}" for column in columns)
    print(f"  {'case':42}{header}")
    for name in columns["this tree"]:
        row = "".join(f"{median_ms((column, name)):>14}" for column in columns)
        print(f"  {name:42}{row}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
