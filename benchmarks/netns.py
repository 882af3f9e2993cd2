#!/usr/bin/env python3
"""Benchmark: pyroute2.netns against isthmus.privileged.netns (why `syscalls` exists).

    sudo .venv/bin/python benchmarks/netns.py

Not a test. Must run as root (it creates and deletes network namespaces
`isth-bench-ns-N`). Prints the median time to import each module (in a
fresh interpreter, the import statement alone) and to create and delete
one namespace, and list namespaces, with each, from a process that has
threads (as the daemon does).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Callable

MODULES = ("pyroute2.netns", "isthmus.privileged.netns")


def import_ms(module: str, runs: int = 15) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True).stdout) * 1000 for _ in range(runs)]
    return statistics.median(times)


def create_delete_ms(create: Callable[[str], None], delete: Callable[[str], None], runs: int = 40) -> float:
    times = []
    for i in range(runs):
        name = f"isth-bench-ns-{i}"
        started = time.perf_counter()
        create(name)
        delete(name)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def list_us(list_namespaces: Callable[[], object], runs: int = 2000) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        list_namespaces()
    return (time.perf_counter() - started) / runs * 1e6


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark creates network namespaces")
    for module in MODULES:
        print(f"import {module}: median {import_ms(module):.1f} ms")
    import pyroute2.netns

    from isthmus.privileged import netns

    idle = threading.Event()
    threading.Thread(target=idle.wait, daemon=True).start()  # a threaded process, like the daemon
    for _ in range(2):
        print(f"create+delete, pyroute2.netns: {create_delete_ms(pyroute2.netns.create, pyroute2.netns.remove):.2f} ms"
              f"; isthmus.privileged.netns: "
              f"{create_delete_ms(netns.create_namespace, netns.delete_namespace):.2f} ms")
    print(f"list, pyroute2.netns.listnetns: {list_us(pyroute2.netns.listnetns):.1f} us; "
          f"isthmus.privileged.netns.list_namespaces: {list_us(netns.list_namespaces):.1f} us")
    idle.set()


if __name__ == "__main__":
    main()
