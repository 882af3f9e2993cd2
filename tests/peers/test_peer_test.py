"""``isthmus peer test`` against a router an Isthmus agent built from the API (root).

The physical world is :class:`isthmus.demo.sites.Fabric` (an "internet" bridge with
a host on it, a LAN bridge per site); only site a has an agent, so router a is real
and its peer (site b's address) does not exist yet: exactly when an operator wants
the command. It runs as operators run it, a separate process (``python -m
isthmus.cli peer test``) over HTTP, and must leave nothing behind: no namespace, no
veth on the bridge, no charon.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any, Iterator

import pytest

from isthmus.demo.run import site_settings
from isthmus.demo.sites import INTERNET_HOST, LAN, WAN, Fabric, sh
from isthmus.peers.trial import NAMESPACE_PREFIX
from tests.agent.conftest import Embedded, wait_until
from tests.e2e.conftest import running_isthmus, sdk_for
from tests.e2e.test_routers_from_the_api import post

pytestmark = pytest.mark.e2e

PSK = "peer-test-secret"


@pytest.fixture
def site_a(short_tmp, privileged_conf, fabric) -> Iterator[Embedded]:
    """The server and site a's agent (routers on the fabric's bridges, strongSwan)."""
    yield from running_isthmus(short_tmp, privileged_conf,
                               **site_settings(fabric, "a", privileged_conf, short_tmp))


@pytest.fixture
def sdk(site_a) -> Iterator[Any]:
    yield from sdk_for(site_a.api.url)


def router_a(sdk) -> dict[str, Any]:
    """Router a, built by site a's agent: gateway on the internet bridge, LAN a; and the
    IDs the connections need."""
    net = sdk.network
    internet = post(sdk, "networks", "network", name="internet", **{
        "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "public"})
    inet_subnet = net.create_subnet(network_id=internet["id"], ip_version=4,
                                    cidr="198.51.100.0/24", gateway_ip=INTERNET_HOST)
    lan_net = post(sdk, "networks", "network", name="lan-a", **{
        "provider:network_type": "flat", "provider:physical_network": "lan-a"})
    lan = net.create_subnet(network_id=lan_net["id"], ip_version=4, cidr=f"{LAN['a']}.0/24",
                            gateway_ip=f"{LAN['a']}.1")
    router = post(sdk, "routers", "router", name="router-a", **{
        "isthmus:agent_host": "site-a",
        "external_gateway_info": {"network_id": internet["id"], "external_fixed_ips": [
            {"subnet_id": inet_subnet.id, "ip_address": WAN["a"]}]}})
    net.add_interface_to_router(router["id"], subnet_id=lan.id)
    wait_until(lambda: net.get(f"/routers/{router['id']}").json()["router"]["status"]
               == "ACTIVE", timeout_s=30)
    service = net.create_vpn_service(router_id=router["id"], name="vpn-a")
    ike = net.create_vpn_ike_policy(name="ike", ike_version="v2", pfs="group14",
                                    encryption_algorithm="aes-256")
    esp = net.create_vpn_ipsec_policy(name="esp", pfs="group14")
    local = net.create_vpn_endpoint_group(type="subnet", endpoints=[lan.id])
    return {"vpnservice_id": service.id, "ikepolicy_id": ike.id, "ipsecpolicy_id": esp.id,
            "local_ep_group_id": local.id}


def connection(sdk, ids: dict[str, Any], name: str, peer_address: str, **extra: Any) -> str:
    """A connection of router a to ``peer_address`` whose peer LAN is site b's; its id."""
    peer = sdk.network.create_vpn_endpoint_group(type="cidr", endpoints=[f"{LAN['b']}.0/24"])
    return sdk.network.create_vpn_ipsec_site_connection(
        name=name, psk=PSK, peer_ep_group_id=peer.id, peer_address=peer_address,
        peer_id="@b.example", local_id="@a.example",
        dpd={"action": "restart", "interval": 2, "timeout": 10}, **ids, **extra).id


def peer_test(site_a: Embedded, fabric: Fabric, conn_id: str, *extra: str
              ) -> subprocess.CompletedProcess:
    """``isthmus peer test`` as an operator runs it (noauth: the admin project)."""
    result = subprocess.run(
        [sys.executable, "-m", "isthmus.cli", "peer", "test", conn_id, "--url",
         site_a.api.url, "--bridge", fabric.internet_bridge, *extra],
        capture_output=True, text=True, timeout=180)
    print(result.stdout, result.stderr)
    return result


def namespace_of(output: str) -> str:
    """The throwaway namespace the command announced."""
    start = output.index(NAMESPACE_PREFIX)
    return output[start:start + len(NAMESPACE_PREFIX) + 6]


def leftovers(fabric: Fabric, namespace: str) -> list[str]:
    """What a throwaway peer left: its namespace, its veth end, orphaned charons."""
    found = [line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines()
             if line.startswith(namespace)]
    found += [port for ports in fabric.bridge_ports().values() for port in ports
              if port == "ipt-" + namespace[len(NAMESPACE_PREFIX):]]
    found += [f"charon {pid}" for pid in orphaned_trial_charons()]
    return found


def orphaned_trial_charons() -> list[int]:
    """charons of throwaway peers whose private directory is gone (stop() removes it
    only after charon died: a charon still running without it leaked)."""
    orphans = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            if os.readlink(f"/proc/{pid}/exe") != "/usr/lib/ipsec/charon":
                continue
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        for entry in environ:
            if entry.startswith(b"STRONGSWAN_CONF=/tmp/ispeer-"):
                conf = entry.split(b"=", 1)[1].decode()
                if not os.path.exists(os.path.dirname(conf)):
                    orphans.append(int(pid))
    return orphans


@pytest.mark.parametrize("initiator", ["bi-directional", "response-only"])
def test_a_good_connection_comes_up_and_answers_pings(site_a, sdk, fabric, initiator):
    conn_id = connection(sdk, router_a(sdk), "a-to-b", WAN["b"], initiator=initiator)
    result = peer_test(site_a, fabric, conn_id, "--timeout", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"Throwaway peer {WAN['b']}/24 on {fabric.internet_bridge}" in out
    assert "IKE SA:    ESTABLISHED, IKEv2, AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/" \
           "MODP_2048" in out
    assert f"CHILD SA:  INSTALLED, ESP tunnel, AES_CBC-128/HMAC_SHA2_256_128, " \
           f"{LAN['b']}.0/24 === {LAN['a']}.0/24" in out
    assert f"ping:      {LAN['a']}.1 answered" in out      # router a's LAN address
    assert f"OK: connection a-to-b ({conn_id})" in out
    assert leftovers(fabric, namespace_of(out)) == []
    # The router's side saw a real peer: the connection went ACTIVE meanwhile, and the
    # peer's Delete took it down again (nothing stays up towards a peer that is gone).
    events = sdk.network.get("/vpn/events", params={"resource_id": conn_id}).json()
    assert any(e["status"] == "ACTIVE" for e in events["events"]), events
    if initiator == "bi-directional":
        # The tunnel up, but nothing answers at the address asked for: a failure.
        result = peer_test(site_a, fabric, conn_id, "--timeout", "60", "--ping",
                           f"{LAN['a']}.99")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "CHILD SA:  INSTALLED" in result.stdout
        assert f"FAILED: the tunnel is up but {LAN['a']}.99 did not answer a ping through " \
               "it." in result.stdout
        assert leftovers(fabric, namespace_of(result.stdout)) == []


def test_failures_say_why_and_leave_nothing(site_a, sdk, fabric):
    ids = router_a(sdk)
    # Administratively down: the router does not answer; Isthmus's reason is shown.
    down = connection(sdk, ids, "a-to-b-down", WAN["b"], admin_state_up=False)
    result = peer_test(site_a, fabric, down, "--timeout", "10")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "reason admin_down:" in result.stdout
    assert "FAILED: no CHILD_SA INSTALLED within 10 s." in result.stdout
    assert "peer log (last relevant lines):" in result.stdout
    assert leftovers(fabric, namespace_of(result.stdout)) == []
    # The address is taken (the internet host): refused before anything is said on it.
    taken = connection(sdk, ids, "a-to-internet-host", INTERNET_HOST)
    result = peer_test(site_a, fabric, taken)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{INTERNET_HOST} already answers on {fabric.internet_bridge}" in result.stderr
    assert leftovers(fabric, namespace_of(result.stdout)) == []
    assert fabric.ping("inet", WAN["a"], count=1)   # the internet host kept its address


def test_keep_leaves_the_peer_and_says_how_to_remove_it(site_a, sdk, fabric):
    conn_id = connection(sdk, router_a(sdk), "a-to-b", WAN["b"])
    result = peer_test(site_a, fabric, conn_id, "--timeout", "60", "--keep")
    assert result.returncode == 0, result.stdout + result.stderr
    namespace = namespace_of(result.stdout)
    commands: list[str] = []
    try:
        assert leftovers(fabric, namespace) == [namespace, "ipt-" + namespace[-6:]]
        assert charons_in(namespace), "--keep leaves charon running"
        commands = result.stdout.split("Remove it with:\n")[1].splitlines()
        assert commands and all(line.startswith("  ") for line in commands), result.stdout
    finally:
        for line in commands:
            subprocess.run(["sh", "-c", line.strip()], check=False)
    # charon takes a moment to exit after the TERM the commands send
    wait_until(lambda: leftovers(fabric, namespace) == [], timeout_s=30)


def charons_in(namespace: str) -> list[int]:
    pids = sh("ip", "netns", "pids", namespace, check=False).stdout.split()
    return [int(p) for p in pids if os.path.exists(f"/proc/{p}/exe")
            and os.readlink(f"/proc/{p}/exe") == "/usr/lib/ipsec/charon"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_it_removes_the_peer(site_a, sdk, fabric, signum):
    # Isthmus does not answer (admin down): the command waits, then is interrupted.
    conn_id = connection(sdk, router_a(sdk), "a-to-b", WAN["b"], admin_state_up=False)
    command = subprocess.Popen(
        [sys.executable, "-m", "isthmus.cli", "peer", "test", conn_id, "--url",
         site_a.api.url, "--bridge", fabric.internet_bridge, "--timeout", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = command.stdout.readline()
        namespace = namespace_of(first)
        wait_until(lambda: charons_in(namespace), timeout_s=30)
        command.send_signal(signum)
        out, err = command.communicate(timeout=60)
    finally:
        if command.poll() is None:
            command.kill()
    assert command.returncode == 130, first + out + err
    assert "interrupted" in err
    assert leftovers(fabric, namespace) == []
