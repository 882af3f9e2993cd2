#!/usr/bin/env python3
"""IP allocation under contention: concurrent clients creating routers with a gateway.

Runs a real ``isthmus server`` process per backend and run, and has
``--clients`` threads (each with its own keep-alive connection) create
``--rounds`` routers each, all with ``external_gateway_info`` on one external
network, so every create allocates an address from the same pool. Each backend
runs twice: with retries on (``[database] db_max_retries``, the default) and,
as the baseline, with retries off (``db_max_retries = 0``). Prints creates/s,
median and p99 latency, 409 conflicts, other failures and the retries the
server logged; checks that no two routers got the same address.

    python benchmarks/ip_allocation.py                     # sqlite, mariadb, postgresql
    python benchmarks/ip_allocation.py --backends postgresql --clients 16 --rounds 20
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from api import Client, free_port, make_database, start_server

RETRY_LOG = "Transaction lost a race"


@dataclass
class Run:
    seconds: float
    latencies_ms: list[float]
    statuses: list[int]
    retries: int

    def row(self) -> str:
        ordered = sorted(self.latencies_ms)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        created = self.statuses.count(201)
        conflicts = self.statuses.count(409)
        return (f"{created / self.seconds:>10.1f}{statistics.median(ordered):>10.1f}"
                f"{p99:>9.1f}{conflicts:>10}{len(self.statuses) - created - conflicts:>7}"
                f"{self.retries:>9}")


def admin_call(client: Client, method: str, path: str, body: dict) -> dict:
    _, status, payload = client.call(method, path, body)
    assert status == 201, payload
    return json.loads(payload)


def run_once(backend: str, clients: int, rounds: int, max_retries: int,
             server_threads: int) -> Run:
    with tempfile.TemporaryDirectory(prefix="isthmus-bench-") as tmp:
        workdir = Path(tmp)
        url, drop = make_database(backend, workdir)
        port = free_port()
        proc = start_server(url, workdir, port, default_opts=f"api_threads = {server_threads}",
                            database_opts=f"db_max_retries = {max_retries}\n")
        try:
            setup = Client(port)
            public = admin_call(setup, "POST", "/v2.0/networks", {"network": {
                "name": "public", "router:external": True}})["network"]["id"]
            admin_call(setup, "POST", "/v2.0/subnets", {"subnet": {
                "network_id": public, "ip_version": 4, "cidr": "172.16.0.0/16",
                "enable_dhcp": False}})
            body = {"router": {"external_gateway_info": {"network_id": public}}}

            def client_work(_: int) -> list[tuple[float, int, bytes]]:
                client = Client(port)
                return [client.call("POST", "/v2.0/routers", body) for _ in range(rounds)]

            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                results = [r for batch in pool.map(client_work, range(clients)) for r in batch]
            seconds = time.perf_counter() - start
            addresses = [json.loads(payload)["router"]["external_gateway_info"]
                         ["external_fixed_ips"][0]["ip_address"]
                         for _, status, payload in results if status == 201]
            assert len(set(addresses)) == len(addresses), "two routers share an address"
            retries = (workdir / "server.log").read_text().count(RETRY_LOG)
            return Run(seconds, [ms for ms, _, _ in results], [s for _, s, _ in results],
                       retries)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            drop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,mariadb,postgresql")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=10, help="routers per client")
    parser.add_argument("--server-threads", type=int, default=32,
                        help="api_threads of the server (default: one per client)")
    parser.add_argument("--max-retries", type=int, default=10,
                        help="db_max_retries of the run with retries")
    args = parser.parse_args()
    print(f"\n{args.clients} clients x {args.rounds} router creates with a gateway, one "
          f"server process with {args.server_threads} threads "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} cores)\n")
    header = (f"{'backend':<12}{'retries':<9}{'creates/s':>10}{'median ms':>10}{'p99 ms':>9}"
              f"{'409s':>10}{'other':>7}{'retried':>9}")
    print(header)
    print("-" * len(header))
    for backend in args.backends.split(","):
        for label, max_retries in (("on", args.max_retries), ("off", 0)):
            run = run_once(backend, args.clients, args.rounds, max_retries,
                           args.server_threads)
            print(f"{backend:<12}{label:<9}{run.row()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
