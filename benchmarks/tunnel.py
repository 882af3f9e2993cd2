#!/usr/bin/env python3
"""Tunnel benchmark: POST of a site connection → first ping through it; tunnel down → DOWN.

Runs, as root, the two-site topology of ``isthmus demo`` (namespaces, real charon
with kernel-libipsec, the privileged helper) and an embedded Isthmus. For N in
1, 10, 50 connections on one router it creates N-1 connection pairs, then times
the POSTs of the N-th pair until a ping crosses that tunnel, and then times
from taking the tunnel down on the peer (VICI unload + terminate, outside
Isthmus) until the API shows the connection DOWN. Goals: < 3 s and < 1 s.

    sudo python benchmarks/tunnel.py [--sizes 1,10,50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import vici

from isthmus.demo.run import Api, embedded_isthmus
from isthmus.demo.sites import WAN, Sites, stop_charons_under, sh
from isthmus.drivers.device.strongswan.charon import Charon


def pings(sites: Sites, i: int) -> bool:
    return subprocess.run(["ip", "netns", "exec", sites.ns("ra"), "ping", "-c", "1", "-W",
                           "0.2", "-I", f"10.80.{i}.1", f"10.90.{i}.1"],
                          capture_output=True).returncode == 0


def run(size: int) -> tuple[float, float]:
    state = Path(tempfile.mkdtemp(prefix="ism-bench-", dir="/tmp"))
    os.chmod(state, 0o755)
    sites = Sites()
    try:
        sites.create()
        for i in range(size):
            sh("ip", "-n", sites.ns("ra"), "addr", "add", f"10.80.{i}.1/24", "dev", "lo")
            sh("ip", "-n", sites.ns("rb"), "addr", "add", f"10.90.{i}.1/24", "dev", "lo")
        with embedded_isthmus(state, host="bench-agent") as api:
            return measure(api, sites, state, size)
    finally:
        sites.destroy()
        stop_charons_under(state)
        shutil.rmtree(state, ignore_errors=True)


def measure(api: Api, sites: Sites, state: Path, size: int) -> tuple[float, float]:
    """Create N-1 pairs, then time the N-th: POST to ping, and down to DOWN."""
    wan = api.create("networks", "network", **{"router:external": True})
    wan_subnet = api.create("subnets", "subnet", network_id=wan["id"], ip_version=4,
                            cidr="198.51.100.0/24", gateway_ip=None)
    ike = api.create("vpn/ikepolicies", "ikepolicy", ike_version="v2", pfs="group14")
    esp = api.create("vpn/ipsecpolicies", "ipsecpolicy", pfs="group14")
    services, routers = {}, {}
    for side, lan in (("a", "10.80"), ("b", "10.90")):
        net = api.create("networks", "network")
        routers[side] = api.create("routers", "router", **{
            "isthmus:namespace": sites.ns(f"r{side}"),
            "external_gateway_info": {"network_id": wan["id"], "external_fixed_ips": [
                {"subnet_id": wan_subnet["id"], "ip_address": WAN[side]}]}})
        subnets = []
        for i in range(size):
            sub = api.create("subnets", "subnet", network_id=net["id"], ip_version=4,
                             cidr=f"{lan}.{i}.0/24", gateway_ip=f"{lan}.{i}.254")
            api.call("PUT", f"/v2.0/routers/{routers[side]['id']}/add_router_interface",
                     {"subnet_id": sub["id"]})
            subnets.append(sub)
        services[side] = (api.create("vpn/vpnservices", "vpnservice",
                                     router_id=routers[side]["id"]), subnets)

    def pair(i: int) -> dict:
        made = {}
        for own, other, peer_lan in (("a", "b", "10.90"), ("b", "a", "10.80")):
            service, subnets = services[own]
            local = api.create("vpn/endpoint-groups", "endpoint_group", type="subnet",
                               endpoints=[subnets[i]["id"]])
            peer = api.create("vpn/endpoint-groups", "endpoint_group", type="cidr",
                              endpoints=[f"{peer_lan}.{i}.0/24"])
            made[own] = api.create(
                "vpn/ipsec-site-connections", "ipsec_site_connection",
                vpnservice_id=service["id"], ikepolicy_id=ike["id"],
                ipsecpolicy_id=esp["id"], psk="bench", peer_address=WAN[other],
                peer_id=f"@{other}{i}", local_id=f"@{own}{i}",
                local_ep_group_id=local["id"], peer_ep_group_id=peer["id"])
        return made

    def status(conn_id: str) -> str:
        return api.call("GET", f"/v2.0/vpn/ipsec-site-connections/{conn_id}")[
            "ipsec_site_connection"]["status"]

    for i in range(size - 1):
        pair(i)
    last = size - 1
    started = time.perf_counter()
    made = pair(last)
    while not pings(sites, last):
        if time.perf_counter() - started > 60:
            raise RuntimeError("no ping after 60 s")
    first_ping = time.perf_counter() - started
    while status(made["a"]["id"]) != "ACTIVE":
        time.sleep(0.01)

    # The tunnel goes down on the peer, outside Isthmus: B forgets the connection.
    peer = Charon(str(state / "strongswan"), routers["b"]["id"], sites.ns("rb"), True,
                  lambda argv: None)
    name = f"isthmus-{made['b']['id']}"
    started = time.perf_counter()
    with peer.session() as session:
        session.unload_conn({"name": name})   # also closes the SAs it carried
        try:
            for _ in session.terminate({"ike": name, "timeout": "-1", "force": "yes"}):
                pass
        except vici.exception.CommandException:
            pass   # nothing left to terminate
    while status(made["a"]["id"]) != "DOWN":
        if time.perf_counter() - started > 60:
            raise RuntimeError("not DOWN after 60 s")
        time.sleep(0.01)
    down = time.perf_counter() - started
    return first_ping, down


def main() -> int:
    if os.geteuid() != 0:
        print("run as root (namespaces, charon)")
        return 2
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,10,50")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import logging
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        samples = [run(size) for _ in range(args.repeat)]
        rows.append((size, [s[0] for s in samples], [s[1] for s in samples]))
    print("\nIsthmus + strongSwan (kernel-libipsec) in namespaces, one router per site, "
          f"{args.repeat} runs each (median / max)\n")
    print(f"{'connections':>12}{'POST → first ping':>22}{'down → DOWN in API':>24}")
    for size, up, down in rows:
        print(f"{size:>12}{statistics.median(up):>13.2f} / {max(up):.2f} s"
              f"{statistics.median(down):>15.3f} / {max(down):.3f} s")
    print("\ngoals: first ping under 3 s, status under 1 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
