"""A continuous ping across a tunnel while its configuration changes: the tools that
tests/e2e/test_rotation.py and benchmarks/rotation.py share."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable

from isthmus.demo.sites import LAN, WAN, Sites
from tests.agent.conftest import wait_until

INTERVAL_S = 0.02    # 50 pings a second
_REPLY = re.compile(r"icmp_seq=(\d+) ttl=")


@dataclass
class PingResult:
    """What a continuous ping saw: ``sent`` up to the last answered one, ``lost`` among
    them, and the longest run of consecutive lost ones (in pings and seconds)."""

    sent: int
    lost: int
    longest_gap: int

    @property
    def longest_gap_s(self) -> float:
        """The longest run of lost pings, as a time."""
        return self.longest_gap * INTERVAL_S


class ContinuousPing:
    """``ping -i 0.02`` from host a to host b, until :meth:`stop`."""

    def __init__(self, sites: Sites, src: str = "ha", dst: str = f"{LAN['b']}.2") -> None:
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", sites.ns(src), "ping", "-n", "-i", str(INTERVAL_S),
             "-W", "1", dst], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self) -> PingResult:
        """Stop pinging; count what was lost between the first and the last answer."""
        time.sleep(1.5)    # answers still in flight
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=10)
        seqs = sorted({int(m) for m in _REPLY.findall(out)})
        if not seqs:
            raise AssertionError(f"no ping was answered:\n{out[-2000:]}")
        answered = set(seqs)
        lost, gap, longest = 0, 0, 0
        for seq in range(seqs[0], seqs[-1] + 1):
            if seq in answered:
                gap = 0
                continue
            lost += 1
            gap += 1
            longest = max(longest, gap)
        return PingResult(sent=seqs[-1] - seqs[0] + 1, lost=lost, longest_gap=longest)


def make_site(sdk: Any, sites: Sites, side: str, public: Any, pub_subnet: Any) -> dict:
    """Router ``side`` with its LAN and a VPN service, through the API."""
    net = sdk.network
    lan_net = net.create_network(name=f"lan-{side}")
    lan = net.create_subnet(network_id=lan_net.id, ip_version=4, cidr=f"{LAN[side]}.0/24",
                            gateway_ip=f"{LAN[side]}.1")
    router = net.create_router(name=f"router-{side}", external_gateway_info={
        "network_id": public.id,
        "external_fixed_ips": [{"subnet_id": pub_subnet.id, "ip_address": WAN[side]}]})
    response = net.put(f"/routers/{router.id}",
                       json={"router": {"isthmus:namespace": sites.ns(f"r{side}")}})
    assert response.status_code == 200, response.text
    net.add_interface_to_router(router, subnet=lan.id)
    local = net.create_vpn_endpoint_group(type="subnet", endpoints=[lan.id])
    service = net.create_vpn_service(router_id=router.id, name=f"vpn-{side}")
    return {"router": router, "service": service, "local": local}


def site_connection(sdk: Any, site: dict, own: str, other: str, psk: str) -> dict:
    """A connection from ``own`` to ``other`` with IKE and IPsec policies of its own (as
    two sites managed apart have): ``{"conn", "ike", "ipsec"}``."""
    net = sdk.network
    ike = net.create_vpn_ike_policy(name=f"ike-{own}", ike_version="v2",
                                    encryption_algorithm="aes-128", pfs="group14")
    ipsec = net.create_vpn_ipsec_policy(name=f"ipsec-{own}", encryption_algorithm="aes-128",
                                        pfs="group14")
    peer = net.create_vpn_endpoint_group(type="cidr", endpoints=[f"{LAN[other]}.0/24"])
    conn = net.create_vpn_ipsec_site_connection(
        name=f"{own}-to-{other}", vpnservice_id=site["service"].id, ikepolicy_id=ike.id,
        ipsecpolicy_id=ipsec.id, psk=psk, local_ep_group_id=site["local"].id,
        peer_ep_group_id=peer.id, peer_address=WAN[other], peer_id=f"@{other}.example",
        local_id=f"@{own}.example", dpd={"action": "restart", "interval": 2, "timeout": 10})
    return {"conn": conn, "ike": ike, "ipsec": ipsec}


def charon_of(isthmus: Any, router_id: str) -> Any:
    """The driver's :class:`~isthmus.drivers.device.strongswan.charon.Charon` of a router."""
    return isthmus.agent.drivers[0]._charons[router_id]


def sa_state(isthmus: Any, router_id: str) -> list[tuple[str, str, list[str]]]:
    """``(IKE unique id, IKE state, [installed CHILD unique ids])`` of a router's SAs."""
    found = []
    for entry in charon_of(isthmus, router_id).list_sas():
        for _, ike in entry.items():
            children = [c["uniqueid"].decode() for c in (ike.get("child-sas") or {}).values()
                        if c["state"] == b"INSTALLED"]
            found.append((ike["uniqueid"].decode(), ike["state"].decode(), children))
    return found


def settled(isthmus: Any, router_ids: list[str], before: dict[str, Any],
            key: Callable[[list], Any]) -> bool:
    """Whether each router's SAs are all new (``key`` of them shares nothing with
    ``before``), ESTABLISHED with a CHILD_SA each, and no rotation is under way."""
    for router_id in router_ids:
        state = sa_state(isthmus, router_id)
        if not state or any(s[1] != "ESTABLISHED" or not s[2] for s in state):
            return False
        if charon_of(isthmus, router_id).replacing() or key(state) & before[router_id]:
            return False
    return True


def rotate(isthmus: Any, sites: Sites, router_ids: list[str], updates: list[Callable[[], Any]],
           key: Callable[[list], Any], pause_s: float = 2.0, timeout_s: float = 60) -> PingResult:
    """A continuous ping while ``updates`` run one after the other (``pause_s`` apart: the
    sides disagree meanwhile), until every router is :func:`settled` on new SAs."""
    before = {r: key(sa_state(isthmus, r)) for r in router_ids}
    ping = ContinuousPing(sites)
    try:
        time.sleep(1)
        for update in updates:
            update()
            time.sleep(pause_s)
        try:
            wait_until(lambda: settled(isthmus, router_ids, before, key), timeout_s=timeout_s)
        except AssertionError:
            raise AssertionError("the rotation did not settle: " + "; ".join(
                f"router {r}: SAs {sa_state(isthmus, r)}, before {sorted(before[r])}, "
                f"replacing {charon_of(isthmus, r).replacing()}" for r in router_ids)) from None
    finally:
        result = ping.stop()
    return result


def ike_ids(state: list) -> frozenset:
    """The IKE_SA unique ids of :func:`sa_state` (a PSK or IKE change makes new ones)."""
    return frozenset(s[0] for s in state)


def child_ids(state: list) -> frozenset:
    """The CHILD_SA unique ids of :func:`sa_state` (an ESP change makes new ones)."""
    return frozenset(c for s in state for c in s[2])


def reload_peer(peer: Any, **changes: Any) -> None:
    """Change a :class:`~tests.peers.strongswan.PlainStrongSwan` peer's connection as its
    operator would: edit swanctl.conf, then ``swanctl --load-all``."""
    for field_name, value in changes.items():
        setattr(peer.conns[0], field_name, value)
    peer.write_config()
    peer.load()
