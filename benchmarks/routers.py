#!/usr/bin/env python3
"""Routers benchmark: from the API call to a router port answering ping (root).

Builds only a physical world — a "public" and a "lan" Linux bridge, a probe
namespace on each — and runs Isthmus in this process (API, one agent that
builds routers through the real privileged daemon and the shipped filters, the
noop VPN driver). Then, through the HTTP API:

* side by side, alternating one router at a time (``--rounds``): the agent
  path (POST a router with a gateway, PUT add_router_interface) against the
  baseline of running the very same privileged commands the agent ran for a
  router directly, each an exec of ``ip``/``iptables`` without API, agent or
  daemon; both timed to the interface answering ping (medians, p99, ratio);
* scale: N routers (``--sizes``, default 1,10,100) created one after the other,
  each timed from its ``add_router_interface`` (and from its create with a
  gateway) to its interface (gateway) answering ping, and the time to all;
* adoption: the agent is stopped and a new one started on the same state: the
  privileged reads and writes its full resync made (writes should be 0);
* privileged calls per router (reads and writes) for a build.

    sudo .venv/bin/python benchmarks/routers.py
    sudo .venv/bin/python benchmarks/routers.py --sizes 1,10 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from isthmus import config, server
from isthmus.agent.routers.calls import PrivilegedCalls
from isthmus.agent.service import build_agent
from isthmus.api.http import HTTPServer
from isthmus.demo import privileged
from isthmus.demo.run import apply_settings
from isthmus.rpc.transport import EMBEDDED_URL, get_transport

PREFIX = "bnr-"            # namespaces of the benchmark's routers
PUB, LAN = "bnr-pub", "bnr-lan"
PROBE_PUB, PROBE_LAN = "bnr-probe-p", "bnr-probe-l"

# Sends ICMP echo to every target not yet answered, every 5 ms, from inside a probe
# namespace; prints {target: wall-clock time of the first reply}.
PINGER = r"""
import json, os, select, socket, struct, sys, time
targets = set(sys.argv[2:]); deadline = time.time() + float(sys.argv[1]); seen = {}
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def packet(seq):
    header = struct.pack("!BBHHH", 8, 0, 0, os.getpid() & 0xFFFF, seq)
    total = sum(struct.unpack("!%dH" % (len(header) // 2), header))
    total = (total >> 16) + (total & 0xFFFF); total += total >> 16
    return struct.pack("!BBHHH", 8, 0, ~total & 0xFFFF, os.getpid() & 0xFFFF, seq)
print("ready", flush=True)
seq = 0
while targets - set(seen) and time.time() < deadline:
    seq = (seq + 1) & 0xFFFF
    for t in targets - set(seen):
        try: s.sendto(packet(seq), (t, 0))
        except OSError: pass
    end = time.time() + 0.005
    while time.time() < end:
        r, _, _ = select.select([s], [], [], max(0, end - time.time()))
        if not r: break
        data, (src, _) = s.recvfrom(2048)
        if data[20] == 0 and src in targets and src not in seen: seen[src] = time.time()
print(json.dumps(seen), flush=True)
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


class Pinger:
    """A pinger in a probe namespace, started before the work it times."""

    def __init__(self, namespace: str, targets: list[str], timeout_s: float) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", PINGER, str(timeout_s),
             *targets], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def first_replies(self) -> dict[str, float]:
        out, _ = self.proc.communicate()
        return json.loads(out.strip().splitlines()[-1])


class World:
    """Two bridges and a probe namespace on each; everything removed by :meth:`destroy`."""

    def create(self, lan_subnets: int) -> None:
        for bridge in (PUB, LAN):
            sh("ip", "link", "add", bridge, "type", "bridge")
            sh("ip", "link", "set", bridge, "up")
        for ns, bridge, dev, address in ((PROBE_PUB, PUB, "bnrpp", "198.18.0.254/16"),
                                         (PROBE_LAN, LAN, "bnrpl", None)):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", f"{dev}0", "type", "veth", "peer", "name", f"{dev}1")
            sh("ip", "link", "set", f"{dev}1", "master", bridge, "up")
            sh("ip", "link", "set", f"{dev}0", "netns", ns)
            sh("ip", "-n", ns, "link", "set", f"{dev}0", "up")
            if address:
                sh("ip", "-n", ns, "address", "add", address, "dev", f"{dev}0")
        for i in range(lan_subnets):
            sh("ip", "-n", PROBE_LAN, "address", "add", f"10.{100 + i // 250}.{i % 250}.2/24",
               "dev", "bnrpl0")

    def destroy(self) -> None:
        """Deleting a namespace deletes its veths, host ends included."""
        for ns in sh("ip", "netns", "list").stdout.split():
            if ns.startswith(PREFIX):
                sh("ip", "netns", "delete", ns, check=False)
        for bridge in (PUB, LAN):
            sh("ip", "link", "delete", bridge, check=False)


def lan_cidr(i: int) -> str:
    return f"10.{100 + i // 250}.{i % 250}.0/24"


class Api:
    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Content-Type": "application/json"},
            data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
        return json.loads(raw) if raw else {}


class Recording(PrivilegedCalls):
    """Counts like the agent's, and remembers the writes (to replay them directly)."""

    def __init__(self, calls: PrivilegedCalls) -> None:
        super().__init__(calls.client)
        self.writes: list[list[str]] = []

    def write(self, argv):  # type: ignore[override]
        self.writes.append(list(argv))
        super().write(argv)

    def add_netns(self, name: str) -> None:
        self.writes.append(["ip", "netns", "add", name])
        super().add_netns(name)


def start(state: Path, rootwrap: Path, transport: Any = None):
    conf = config.load([])
    apply_settings(conf, {
        "state_path": str(state), "host": "bench-routers",
        "vpnagent.physical_networks": [f"public:{PUB}", f"lan:{LAN}"],
        "vpnagent.router_namespace_prefix": PREFIX,
        "vpnagent.rootwrap_config": str(rootwrap),
        "vpnagent.workers": 8})
    return conf


def start_agent(conf: Any, transport: Any):
    agent = build_agent(conf, transport)
    agent.routers.calls = Recording(agent.routers.calls)
    agent.start()
    return agent


def wait(check, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        time.sleep(0.05)


def stats(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return f"median {statistics.median(ordered) * 1000:8.1f} ms  p99 {p99 * 1000:8.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("benchmarks/routers.py needs root (namespaces, bridges)", file=sys.stderr)
        return 1
    sizes = [int(n) for n in args.sizes.split(",")]
    state = Path(tempfile.mkdtemp(prefix="bnr-", dir="/tmp"))
    world = World()
    world.destroy()
    rootwrap = privileged.write_config(state)
    runtime = agent = stop_http = None
    try:
        slots = sum(sizes) + 1      # one LAN subnet per router, and one for the rounds
        world.create(slots)
        conf = start(state, rootwrap)
        transport = get_transport(conf, EMBEDDED_URL)
        runtime = server.build(conf, migrate=True, transport=transport)
        http = HTTPServer.bind(runtime.app, "127.0.0.1", 0, threads=8, connection_limit=100,
                               idle_timeout=60, max_header_bytes=65536)
        stop_http = http.serve_in_thread()
        port = http.address[1]
        api = Api(f"http://127.0.0.1:{port}")
        agent = start_agent(conf, transport)
        wait(lambda: api.call("GET", "/v2.0/agents")["agents"])
        public = api.call("POST", "/v2.0/networks", {"network": {
            "name": "public", "router:external": True, "provider:network_type": "flat",
            "provider:physical_network": "public"}})["network"]["id"]
        api.call("POST", "/v2.0/subnets", {"subnet": {
            "network_id": public, "ip_version": 4, "cidr": "198.18.0.0/16",
            "gateway_ip": "198.18.0.254"}})
        lan = api.call("POST", "/v2.0/networks", {"network": {
            "name": "lan", "provider:network_type": "flat",
            "provider:physical_network": "lan"}})["network"]["id"]
        subnets = [api.call("POST", "/v2.0/subnets", {"subnet": {
            "network_id": lan, "ip_version": 4, "cidr": lan_cidr(i)}})["subnet"]["id"]
            for i in range(slots)]

        def build_router(i: int) -> tuple[str, float, float]:
            """POST a router with a gateway, then add its interface: (id, t_post, t_put)."""
            t_post = time.time()
            router = api.call("POST", "/v2.0/routers", {"router": {
                "name": f"r{i}", "external_gateway_info": {"network_id": public}}})["router"]
            t_put = time.time()
            api.call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                     {"subnet_id": subnets[i]})
            return router["id"], t_post, t_put

        def delete_router(router_id: str, i: int) -> None:
            api.call("PUT", f"/v2.0/routers/{router_id}/remove_router_interface",
                     {"subnet_id": subnets[i]})
            api.call("DELETE", f"/v2.0/routers/{router_id}")
            wait(lambda: f"{PREFIX}{router_id}" not in sh("ip", "netns", "list").stdout)

        # -- side by side: the agent path against the same commands run directly ----
        calls = agent.routers.calls
        agent_s, direct_s = [], []
        slot = slots - 1
        for r in range(args.rounds):
            target = f"10.{100 + slot // 250}.{slot % 250}.1"
            pinger = Pinger(PROBE_LAN, [target], 60)
            before = len(calls.writes)
            router_id, t_post, _ = build_router(slot)
            replies = pinger.first_replies()
            agent_s.append(replies[target] - t_post)
            agent_ns = f"{PREFIX}{router_id}"
            direct_ns = f"{PREFIX}direct-{r}"   # not the agent's: its late syncs leave it be
            commands = [[direct_ns if word == agent_ns else word for word in argv]
                        for argv in calls.writes[before:]]
            delete_router(router_id, slot)
            agent.queue.wait_idle(60)
            pinger = Pinger(PROBE_LAN, [target], 60)
            t0 = time.time()
            for argv in commands:
                sh(*argv)
            direct_s.append(pinger.first_replies()[target] - t0)
            sh("ip", "netns", "delete", direct_ns)   # its veths, host ends included
        print(f"one router ready (POST router with gateway + PUT interface -> interface "
              f"answers ping), {args.rounds} rounds alternating:")
        print(f"  isthmus (API + agent + daemon)   {stats(agent_s)}")
        print(f"  direct exec of the same commands {stats(direct_s)}")
        print(f"  ratio of medians {statistics.median(agent_s) / statistics.median(direct_s):.2f}"
              f"  ({len(commands)} privileged writes per router)")

        # -- scale -------------------------------------------------------------------
        made: list[tuple[str, int]] = []
        first = 0
        for n in sizes:
            index = range(first, first + n)
            lan_targets = {f"10.{100 + i // 250}.{i % 250}.1": i for i in index}
            pinger = Pinger(PROBE_LAN, list(lan_targets), 300)
            counts = calls.counts
            started = time.time()
            times = {}
            for i in index:
                router_id, t_post, t_put = build_router(i)
                times[i] = (router_id, t_post, t_put)
                made.append((router_id, i))
            replies = pinger.first_replies()
            done = max(replies.values()) if len(replies) == n else float("nan")
            after = calls.counts
            per_put = [replies[t] - times[i][2] for t, i in lan_targets.items() if t in replies]
            # the gateway of each router, from the public probe
            shown = {r["id"]: r for r in api.call("GET", "/v2.0/routers")["routers"]}
            gw = {shown[times[i][0]]["external_gateway_info"]["external_fixed_ips"][0][
                "ip_address"]: i for i in index}
            gw_replies = Pinger(PROBE_PUB, list(gw), 60).first_replies()
            print(f"{n:4d} routers: all interfaces answering {done - started:6.2f} s after the "
                  f"first POST; add_router_interface -> ping {stats(per_put)}; "
                  f"gateways answering {len(gw_replies)}/{n}; privileged calls per router: "
                  f"{(after.reads - counts.reads) / n:.1f} reads, "
                  f"{(after.writes - counts.writes) / n:.1f} writes")
            first += n
        # -- adoption ----------------------------------------------------------------
        agent.stop()
        t0 = time.monotonic()
        agent = start_agent(conf, transport)
        # The resync is done when the calls stop and the queue is idle.
        last, quiet_since = None, time.monotonic()
        while time.monotonic() - quiet_since < 1.0:
            time.sleep(0.05)
            now = agent.routers.calls.counts
            if now != last or not agent.queue.wait_idle(0):
                last, quiet_since = now, time.monotonic()
        counts = agent.routers.calls.counts
        print(f"agent restart with {len(made)} routers: resync done in "
              f"{quiet_since - t0:.2f} s, {counts.writes} privileged writes, "
              f"{counts.reads / max(1, len(made)):.1f} reads per router")
        for router_id, i in made:
            api.call("PUT", f"/v2.0/routers/{router_id}/remove_router_interface",
                     {"subnet_id": subnets[i]})
            api.call("DELETE", f"/v2.0/routers/{router_id}")
        wait(lambda: not [ns for ns in sh("ip", "netns", "list").stdout.split()
                          if ns.startswith(PREFIX) and not ns.startswith("bnr-probe")], 300)
        return 0
    finally:
        if agent is not None:
            agent.stop()
        if stop_http is not None:
            stop_http()
        if runtime is not None:
            runtime.stop()
        privileged.stop_daemon(rootwrap)
        world.destroy()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
