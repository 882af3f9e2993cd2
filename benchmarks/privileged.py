#!/usr/bin/env python3
"""Benchmark: the cost of running `true` and `ip netns list` as root, side by side.

    sudo /work/main/.venv/bin/python benchmarks/privileged.py [--quick]

Not a test. Must run as root (it creates network namespaces and starts
daemons; sudo as root needs no sudoers entry). Prints a Markdown table with
per-call median and p99 in milliseconds, the ratio of each median to direct
exec's, and calls/s, for:

- direct exec: `subprocess.Popen` with three pipes + `communicate()`
  (what an agent would do if it were root), 1 and 8 threads;
- Isthmus daemon: `Client.execute`, 1 caller and 8 concurrent callers
  sharing one Client; plus the in-process `Client.list_netns()`;
- Isthmus CLI: `sudo isthmus-rootwrap CONF CMD` (console script) and
  `sudo python3 -I -S .../isthmus/privileged/cli.py CONF CMD` (the fast
  launcher docs/privileged.md recommends for sudoers);
- oslo.rootwrap CLI: `sudo oslo-rootwrap CONF CMD`;
- oslo.rootwrap daemon: `oslo_rootwrap.client.Client.execute`, 1 and 8
  threads on one shared Client (neutron's pattern).

oslo.rootwrap is installed from PyPI into its own virtualenv under /tmp
(created on first run) so it never touches the project's environment.
Both helpers load the same filter file (30 filters, 24 padding
RegExpFilters first, as in docs/privileged.md). Methods are interleaved in
rounds so background noise spreads evenly.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

OSLO_VENV = Path("/tmp/isthmus-bench-oslo-venv")
NAMESPACES = [f"isth-bench-{i}" for i in range(5)]
COMMANDS = {"true": ["true"], "ip netns list": ["ip", "netns", "list"]}
EXEC_DIRS = "/sbin,/usr/sbin,/bin,/usr/bin"

FILTERS = "[Filters]\n" + "".join(
    f"pad{i}: RegExpFilter, /bin/true, root, padding{i}, --flag, [0-9]+\n" for i in range(24)
) + textwrap.dedent("""\
    ip: IpFilter, ip, root
    ip_exec: IpNetnsExecFilter, ip, root
    true: CommandFilter, true, root
    echo: CommandFilter, echo, root
    cat: CommandFilter, cat, root
    """)

# Runs inside the oslo.rootwrap virtualenv; prints per-call seconds as JSON.
OSLO_DAEMON_HELPER = textwrap.dedent("""\
    import json, sys, threading, time
    from oslo_rootwrap import client as rw_client
    spec = json.loads(sys.argv[1])
    c = rw_client.Client(spec["start"])
    c.execute(spec["cmd"])  # spawn the daemon outside the timing
    def one():
        t = time.perf_counter()
        code, out, err = c.execute(spec["cmd"])
        assert code == 0, (code, err)
        return time.perf_counter() - t
    result = {}
    if spec["threads"] == 1:
        result["lat"] = [one() for _ in range(spec["n"])]
    else:
        lat, lock = [], threading.Lock()
        per = spec["n"] // spec["threads"]
        def worker():
            mine = [one() for _ in range(per)]
            with lock:
                lat.extend(mine)
        threads = [threading.Thread(target=worker) for _ in range(spec["threads"])]
        start = time.perf_counter()
        for th in threads: th.start()
        for th in threads: th.join()
        result["wall"] = time.perf_counter() - start
        result["lat"] = lat
    print(json.dumps(result))
    """)


# -- measuring ----------------------------------------------------------------

class Series:
    """Latencies (seconds) of one method, plus wall time for concurrent runs."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.latencies: list[float] = []
        self.wall: float | None = None
        self.calls = 0

    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000

    def per_second(self) -> float:
        if self.wall:
            return self.calls / self.wall
        return 1000 / self.median_ms()


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def concurrent(fn, threads: int, total: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    lock = threading.Lock()
    per = total // threads

    def worker():
        mine = timed(fn, per)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return latencies, time.perf_counter() - started


def direct(cmd: list[str]):
    path = shutil.which(cmd[0])
    argv = [path, *cmd[1:]]

    def run():
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        process.communicate()
        assert process.returncode == 0

    return run


def refused_call(client):
    from isthmus.privileged import NotAllowed

    def run():
        try:
            client.execute(["rm", "-rf", "/nonexistent"])
        except NotAllowed:
            return
        raise AssertionError("rm was allowed")
    return run


def cli(argv: list[str]):
    def run():
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert result.returncode == 0, result.stderr
    return run


# -- set-up ---------------------------------------------------------------------

def ensure_oslo_venv() -> Path:
    python = OSLO_VENV / "bin" / "python"
    if not (OSLO_VENV / "bin" / "oslo-rootwrap").exists():
        print(f"# installing oslo.rootwrap from PyPI into {OSLO_VENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(OSLO_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "oslo.rootwrap"], check=True)
    return python


def oslo_version(python: Path) -> str:
    return subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('oslo.rootwrap'))"],
                          capture_output=True, text=True).stdout.strip()


def write_setup(root: Path) -> Path:
    filters_dir = root / "rootwrap.d"
    filters_dir.mkdir(mode=0o755)
    (filters_dir / "bench.filters").write_text(FILTERS)
    conf = root / "rootwrap.conf"
    conf.write_text(textwrap.dedent(f"""\
        [DEFAULT]
        filters_path = {filters_dir}
        exec_dirs = {EXEC_DIRS}
        use_syslog = False
        daemon_timeout = 600
        daemon_socket = {root}/run/rootwrap.sock
        """))
    for path in (filters_dir / "bench.filters", conf):
        path.chmod(0o644)
    return conf


def start_isthmus_daemon(conf: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    process = subprocess.Popen([sys.executable, "-m", "isthmus.privileged.daemon", str(conf)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                               start_new_session=True)
    line = process.stdout.readline().decode()
    process.stdout.close()
    if not line.startswith("ready"):
        raise SystemExit(f"Isthmus daemon did not start: {line!r}")
    return process


def oslo_daemon_run(python: Path, conf: Path, cmd: list[str], n: int, threads: int) -> dict:
    start = ["sudo", str(OSLO_VENV / "bin" / "oslo-rootwrap-daemon"), str(conf)]
    spec = json.dumps({"start": start, "cmd": cmd, "n": n, "threads": threads})
    out = subprocess.run([str(python), "-c", OSLO_DAEMON_HELPER, spec], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the run ------------------------------------------------------------------------

def benchmark(args) -> None:
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark creates namespaces and starts root daemons")
    if shutil.which("sudo") is None:
        raise SystemExit("sudo is required: apt-get install -y sudo")
    oslo_python = ensure_oslo_venv()
    from isthmus.privileged import Client

    fast_n, slow_n, rounds = (200, 20, 2) if args.quick else (1000, 100, 5)
    root = Path(tempfile.mkdtemp(prefix="isthmus-bench-"))
    root.chmod(0o755)
    conf = write_setup(root)
    created = []
    daemon = None
    try:
        for name in NAMESPACES:
            if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode == 0:
                created.append(name)
        daemon = start_isthmus_daemon(conf)
        client = Client(str(root / "run" / "rootwrap.sock"), autostart=False)
        isthmus_cli = str(Path(sys.executable).parent / "isthmus-rootwrap")
        oslo_cli = str(OSLO_VENV / "bin" / "oslo-rootwrap")
        import isthmus.privileged.cli as cli_module

        # The sudoers line docs/privileged.md recommends: no site-packages scan.
        fast_cli = [sys.executable, "-I", "-S", cli_module.__file__]
        subprocess.run(["sudo", isthmus_cli, str(conf), "true"], check=True)  # write bytecode once

        tables = {}
        for title, cmd in COMMANDS.items():
            rows: dict[str, Series] = {}

            def add(label: str) -> Series:
                return rows.setdefault(label, Series(label))

            fast = {
                "direct exec (Popen, 3 pipes)": direct(cmd),
                "Isthmus daemon, 1 caller": lambda: client.execute(cmd),
            }
            if title == "ip netns list":
                fast["Isthmus daemon, in-process Client.list_netns()"] = client.list_netns
            else:
                fast["Isthmus daemon, refused command (NotAllowed)"] = refused_call(client)
            slow = {
                "Isthmus CLI through sudo": cli(["sudo", isthmus_cli, str(conf), *cmd]),
                "Isthmus CLI through sudo, fast launcher": cli(["sudo", *fast_cli, str(conf), *cmd]),
                "oslo.rootwrap CLI through sudo": cli(["sudo", oslo_cli, str(conf), *cmd]),
                "sudo CMD (reference)": cli(["sudo", *cmd]),
            }
            for fn in (*fast.values(), *slow.values()):
                fn()  # warm-up
            for _ in range(rounds):
                for label, fn in fast.items():
                    add(label).latencies += timed(fn, fast_n // rounds)
                for label, fn in slow.items():
                    add(label).latencies += timed(fn, slow_n // rounds)

            for label, fn in (("direct exec, 8 threads", direct(cmd)),
                              ("Isthmus daemon, 8 concurrent callers (one Client)", lambda: client.execute(cmd))):
                series = add(label)
                series.latencies, series.wall = concurrent(fn, 8, fast_n)
                series.calls = len(series.latencies)

            for threads, label in ((1, "oslo.rootwrap daemon client, 1 caller"),
                                   (8, "oslo.rootwrap daemon client, 8 threads (one Client)")):
                result = oslo_daemon_run(oslo_python, conf, cmd, fast_n, threads)
                series = add(label)
                series.latencies = result["lat"]
                if "wall" in result:
                    series.wall = result["wall"]
                    series.calls = len(series.latencies)
            tables[title] = rows
        client.close()
        report(tables, oslo_version(oslo_python), fast_n, slow_n, len(created))
    finally:
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
        for name in created:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


ORDER = [
    "direct exec (Popen, 3 pipes)",
    "Isthmus daemon, 1 caller",
    "Isthmus daemon, in-process Client.list_netns()",
    "Isthmus daemon, refused command (NotAllowed)",
    "oslo.rootwrap daemon client, 1 caller",
    "direct exec, 8 threads",
    "Isthmus daemon, 8 concurrent callers (one Client)",
    "oslo.rootwrap daemon client, 8 threads (one Client)",
    "sudo CMD (reference)",
    "Isthmus CLI through sudo",
    "Isthmus CLI through sudo, fast launcher",
    "oslo.rootwrap CLI through sudo",
]


def report(tables: dict[str, dict[str, Series]], oslo: str, fast_n: int, slow_n: int, namespaces: int) -> None:
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} | {platform.node()} | {os.cpu_count()} cores | "
          f"Python {platform.python_version()} | oslo.rootwrap {oslo} | caller uid {os.geteuid()} | "
          f"{fast_n} calls per fast path, {slow_n} per CLI path, {namespaces} namespaces present")
    for title, rows in tables.items():
        base = rows["direct exec (Popen, 3 pipes)"].median_ms()
        print(f"\n`{title}`\n")
        print("| method | median ms | p99 ms | median / direct | calls/s |")
        print("|---|---:|---:|---:|---:|")
        for label in ORDER:
            if label not in rows:
                continue
            series = rows[label]
            print(f"| {label} | {series.median_ms():.2f} | {series.p99_ms():.2f} | "
                  f"{series.median_ms() / base:.2f}x | {series.per_second():.0f} |")
        daemon = rows["Isthmus daemon, 1 caller"].median_ms()
        conc = rows["Isthmus daemon, 8 concurrent callers (one Client)"].per_second()
        direct8 = rows["direct exec, 8 threads"].per_second()
        cli_ms = rows["Isthmus CLI through sudo"].median_ms()
        fast_ms = rows["Isthmus CLI through sudo, fast launcher"].median_ms()
        print(f"\nGoals: daemon overhead {daemon - base:+.2f} ms over direct exec (goal <= +0.30); "
              f"8 callers at {100 * conc / direct8:.0f}% of direct exec's 8-thread throughput (goal >= 80%); "
              f"CLI through sudo {cli_ms:.1f} ms, fast launcher {fast_ms:.1f} ms (goal < 30).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, for a smoke run")
    benchmark(parser.parse_args())


if __name__ == "__main__":
    main()
