#!/usr/bin/env python3
"""RabbitMQ outage benchmark: API latency while the broker is down, and time to recover.

Seeds N VPN services (two connections each, 10 services per router) on one agent,
starts a real ``isthmus server`` and ``isthmus agent`` (noop device driver) whose
``transport_url`` points at a TCP forwarding proxy in front of the local RabbitMQ
(the proxy from tests/rpc/forwarding_proxy.py; the shared broker is never stopped),
then for each round:

* cuts the proxy for ``--outage`` seconds (long enough for the server to declare
  the agent dead, ``agent_down_time`` = 10 s, and set its objects DOWN) while 8
  clients send GETs and PUTs (a rename of a connection) as fast as answers come;
* restores it and measures the seconds from broker-back to every service and
  connection ACTIVE again (``--resync-interval`` 600 s by default, so no periodic
  resync helps; 60 s is the default of a deployment).

The same load runs for ``--up`` seconds with the broker up, for comparison.

    python benchmarks/broker_outage.py                        # 500 services, 30 s, 3 rounds
    python benchmarks/broker_outage.py --services 1000 --outage 60 --rounds 2
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.rpc.forwarding_proxy

from agent_sync import EXE, HOST, free_port, get, seed  # noqa: E402

from tests.rpc.forwarding_proxy import ForwardingProxy  # noqa: E402

CLIENTS = 8
CONNS = "/v2.0/vpn/ipsec-site-connections"


def not_active(port: int) -> int:
    count = 0
    for path, key in (("/v2.0/vpn/vpnservices", "vpnservices"), (CONNS, "ipsec_site_connections")):
        count += sum(o["status"] != "ACTIVE" for o in get(port, f"{path}?fields=status")[key])
    return count


def load(port: int, conn_ids: list[str], seconds: float, timeout_s: float,
         results: dict[str, list]) -> list[threading.Thread]:
    """``CLIENTS`` threads alternating a GET and a PUT for ``seconds``; latencies in ms.

    Returns the running threads: a request started in time is waited for (and
    counted) even if it only answers once the broker is back.
    """
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client(n: int) -> None:
        i = 0
        while time.monotonic() < end:
            conn_id = conn_ids[(n * 97 + i) % len(conn_ids)]
            for method in ("GET", "PUT"):
                body = json.dumps({"ipsec_site_connection": {"name": f"c{n}-{i}"}}) \
                    if method == "PUT" else None
                started = time.perf_counter()
                try:
                    http_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
                    http_conn.request(method, f"{CONNS}/{conn_id}", body=body,
                                      headers={"Content-Type": "application/json"})
                    status = http_conn.getresponse().status
                    http_conn.close()
                except OSError as err:
                    status = type(err).__name__
                elapsed_ms = (time.perf_counter() - started) * 1000
                with lock:
                    results[method].append(elapsed_ms)
                    if status != 200:
                        results["failed"].append(status)
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    return threads


def results() -> dict[str, list]:
    return {"GET": [], "PUT": [], "failed": []}


def wait(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.1)


def run(args: argparse.Namespace, workdir: Path, vhost: str, proxy: ForwardingProxy) -> None:
    url = f"sqlite:///{workdir}/bench.db"
    seed(url, args.services)
    port = free_port()
    conf = workdir / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\nhost = {HOST}\n"
                    f"state_path = {workdir}\ntransport_url = {proxy.url(vhost)}\n"
                    "agent_down_time = 10\n\n[database]\n"
                    f"connection = {url}\n\n[vpnagent]\nrpc_timeout = 20\n"
                    f"report_interval = 2\nresync_interval = {args.resync_interval}\n")
    log = open(workdir / "bench.log", "w")
    procs = [subprocess.Popen([EXE, "server", "--config-file", str(conf)], stdout=log,
                              stderr=subprocess.STDOUT)]
    try:
        def answers() -> bool:
            try:
                return bool(get(port, "/"))
            except OSError:
                return False

        wait(answers, 60, "the server")
        procs.append(subprocess.Popen([EXE, "agent", "--config-file", str(conf)], stdout=log,
                                      stderr=subprocess.STDOUT))
        wait(lambda: not_active(port) == 0, 300, "all ACTIVE at start")
        conn_ids = [c["id"] for c in get(port, f"{CONNS}?fields=id")["ipsec_site_connections"]]
        timeout_s = args.outage + 60

        up = results()
        for t in load(port, conn_ids, args.up, timeout_s, up):
            t.join()
        wait(lambda: not_active(port) == 0, 120, "all ACTIVE after the load")
        down = results()
        recoveries = []
        for n in range(args.rounds):
            proxy.cut()
            clients = load(port, conn_ids, args.outage, timeout_s, down)
            time.sleep(args.outage)
            proxy.restore()
            back = time.perf_counter()
            for t in clients:
                t.join()
            wait(lambda: not_active(port) == 0, 600, "all ACTIVE after the outage")
            recoveries.append(time.perf_counter() - back)
            print(f"round {n + 1}: broker back → all ACTIVE in {recoveries[-1]:.2f} s",
                  flush=True)
            time.sleep(2)
        report(args, up, down, recoveries)
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(args: argparse.Namespace, up: dict, down: dict, recoveries: list[float]) -> None:
    print(f"\nIsthmus through a RabbitMQ outage: {args.services} services, "
          f"{2 * args.services} connections, one agent (noop driver), "
          f"{args.outage:g} s outages, {args.rounds} rounds\n")
    print(f"{'API latency (ms)':<18}{'requests':>10}{'GET median':>12}{'GET p99':>10}"
          f"{'PUT median':>12}{'PUT p99':>10}{'failed':>8}")
    for name, r in (("broker up", up), ("broker down", down)):
        print(f"{name:<18}{len(r['GET']) + len(r['PUT']):>10}"
              f"{statistics.median(r['GET']):>12.1f}{pct(r['GET'], 0.99):>10.1f}"
              f"{statistics.median(r['PUT']):>12.1f}{pct(r['PUT'], 0.99):>10.1f}"
              f"{len(r['failed']):>8}")
    print(f"\nbroker back → all ACTIVE: median {statistics.median(recoveries):.2f} s "
          f"(rounds: {', '.join(f'{r:.2f}' for r in recoveries)}); "
          f"resync_interval = {args.resync_interval} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--outage", type=float, default=30, help="seconds the broker is cut")
    parser.add_argument("--up", type=float, default=10,
                        help="seconds of the same load with the broker up")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--resync-interval", type=int, default=600,
                        help="the agent's periodic full resync, seconds")
    args = parser.parse_args()
    if args.outage < 15:
        parser.error("--outage must be at least 15 s: the server declares the agent dead "
                     "after agent_down_time = 10 s")
    vhost = f"isthmus-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                   check=True, capture_output=True)
    proxy = ForwardingProxy(5672).start()
    try:
        with tempfile.TemporaryDirectory(prefix="isthmus-outage-bench-") as tmp:
            run(args, Path(tmp), vhost, proxy)
    finally:
        proxy.close()
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
