"""IP allocation under concurrency: racing requests never share an address or fail spuriously.

Each test drives a real server over HTTP from many threads at once, on every
backend; the server must turn lost races into retries, not into 409s.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress

import httpx

from tests.api.test_networking import ROUTERS, network, subnet
from tests.api.test_policies import error
from tests.api.topology import ok

THREADS = 32


def _in_parallel(api, count: int, request) -> list[httpx.Response]:
    """``request(client, i)`` for i in range(count), from THREADS clients at once."""
    clients = [api.client("adminproj", roles="admin,member,reader", user="admin")
               for _ in range(THREADS)]
    try:
        with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
            return list(pool.map(lambda i: request(clients[i % THREADS], i), range(count)))
    finally:
        for client in clients:
            client.close()


def _gateway_router(public: str, **gateway) -> dict:
    return {"router": {"external_gateway_info": {"network_id": public, **gateway}}}


def test_concurrent_gateway_routers_all_get_distinct_pool_addresses(api, admin):
    public = network(admin, **{"router:external": True})
    pool = subnet(admin, public, "172.24.0.0/23", enable_dhcp=False)["allocation_pools"][0]
    rounds = 5
    responses = _in_parallel(api, THREADS * rounds, lambda client, i: client.post(
        ROUTERS, json=_gateway_router(public)))
    assert [r.status_code for r in responses] == [201] * (THREADS * rounds), \
        sorted({r.text for r in responses if r.status_code != 201})
    ips = [r.json()["router"]["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
           for r in responses]
    assert len(set(ips)) == len(ips)
    start, end = ipaddress.ip_address(pool["start"]), ipaddress.ip_address(pool["end"])
    assert all(start <= ipaddress.ip_address(ip) <= end for ip in ips)
    ports = ok(admin.get("/v2.0/ports", params={"device_owner": "network:router_gateway"}),
               200)["ports"]
    assert sorted(f["ip_address"] for p in ports for f in p["fixed_ips"]) == sorted(ips)


def test_requested_taken_address_is_still_a_conflict(api, admin):
    public = network(admin, **{"router:external": True})
    subnet(admin, public, "172.24.5.0/24", enable_dhcp=False)
    wanted = _gateway_router(public, external_fixed_ips=[{"ip_address": "172.24.5.77"}])
    responses = _in_parallel(api, THREADS, lambda client, i: client.post(ROUTERS, json=wanted))
    assert sorted(r.status_code for r in responses) == [201] + [409] * (THREADS - 1)
    errors = [r.json()["NeutronError"] for r in responses if r.status_code == 409]
    assert {e["type"] for e in errors} == {"IpAddressAlreadyAllocated"}
    assert all("172.24.5.77" in e["message"] for e in errors)
    assert len(ok(admin.get(ROUTERS), 200)["routers"]) == 1


def test_racing_interface_adds_on_one_subnet_leave_one_owner(api, admin):
    private = network(admin)
    shared = subnet(admin, private, "10.4.0.0/24")["id"]
    routers = [ok(admin.post(ROUTERS, json={"router": {"name": f"r{i}"}}))["router"]["id"]
               for i in range(THREADS)]
    responses = _in_parallel(api, THREADS, lambda client, i: client.put(
        f"{ROUTERS}/{routers[i]}/add_router_interface", json={"subnet_id": shared}))
    assert sorted(r.status_code for r in responses) == [200] + [409] * (THREADS - 1)
    assert {r.json()["NeutronError"]["type"] for r in responses if r.status_code == 409} == \
        {"IpAddressAlreadyAllocated"}
    ports = ok(admin.get("/v2.0/ports", params={"network_id": private}), 200)["ports"]
    assert [f["ip_address"] for p in ports for f in p["fixed_ips"]] == ["10.4.0.1"]


def test_full_pool_is_a_generation_failure_and_leaves_nothing(api, admin):
    public = network(admin, **{"router:external": True})
    subnet(admin, public, "172.24.6.0/24", enable_dhcp=False,
           allocation_pools=[{"start": "172.24.6.10", "end": "172.24.6.13"}])
    responses = _in_parallel(api, THREADS, lambda client, i: client.post(
        ROUTERS, json=_gateway_router(public)))
    assert sorted(r.status_code for r in responses) == [201] * 4 + [409] * (THREADS - 4)
    failures = [r.json()["NeutronError"] for r in responses if r.status_code == 409]
    assert {f["type"] for f in failures} == {"IpAddressGenerationFailure"}
    assert failures[0]["message"] == f"No more IP addresses available on network {public}."
    assert len(ok(admin.get(ROUTERS), 200)["routers"]) == 4
    ports = ok(admin.get("/v2.0/ports"), 200)["ports"]
    assert sorted(f["ip_address"] for p in ports for f in p["fixed_ips"]) == \
        [f"172.24.6.{n}" for n in (10, 11, 12, 13)]
    assert error(admin.post(ROUTERS, json=_gateway_router(public)), 409)["type"] == \
        "IpAddressGenerationFailure"
