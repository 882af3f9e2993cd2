"""The default policy, resource by resource and role by role, over real HTTP.

One row per resource: what an admin, a member and a reader of the owning
project, and a member of another project get when they list, show, create,
update and delete. VPN and networking objects are read by the project's
readers and changed by its members, agents are for admins; whatever a caller
may not see is a 404, whatever it may see but not change a 403.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import httpx
import pytest

from isthmus.api import policy
from isthmus.context import RequestContext
from isthmus.db import models
from tests.api.test_vpn_resources import CONNS, GROUPS, SERVICES, make_policies, set_status
from tests.api.topology import Topology, ok

ROLES = ("admin", "member", "reader", "other")
VPN = {"admin": "L S 201 200 204", "member": "L S 201 200 204",
       "reader": "L S 403 403 403", "other": "- 404 . 404 404"}
NETWORKING = {"admin": "L S 201 200 204", "member": "L S 201 200 204",
              "reader": "L S 403 403 403", "other": "- 404 . 404 404"}
READ_ONLY = {"admin": "L S . . .", "member": "L S . . .", "reader": "L S . . .",
             "other": "- 404 . . ."}
ADMIN_ONLY = {"admin": "L S . . .", "member": "- 404 . . .", "reader": "- 404 . . .",
              "other": "- 404 . . ."}
"""Per role: listed (L) or not (-); then show, create, update, delete statuses
(S: 200; '.': not applicable). The object belongs to the member's project."""


@dataclass
class Case:
    path: str
    key: str
    make: Callable[[httpx.Client, Topology, object], str]    # an object in demoproj: its id
    create_body: Callable[[Topology], dict]
    expected: dict[str, str]


_cidrs = itertools.count(10)


def _post(path: str, key: str, body: dict) -> Callable:
    return lambda member, topo, api: ok(member.post(path, json={key: body}))[key]["id"]


def _service(member, topo, api) -> str:
    made = ok(member.post(SERVICES, json={"vpnservice": {"router_id": topo.router}}))
    set_status(api, models.Base.metadata.tables["vpnservices"], made["vpnservice"]["id"], "ACTIVE")
    return made["vpnservice"]["id"]


def _connection_body(member, topo, api) -> dict:
    ike, ipsec = make_policies(member)
    made = ok(member.post(SERVICES, json={"vpnservice": {
        "router_id": topo.router, "subnet_id": topo.subnet_a}}))["vpnservice"]["id"]
    n = next(_cidrs)
    return {"vpnservice_id": made, "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
            "peer_address": f"203.0.113.{n}", "peer_id": f"203.0.113.{n}", "psk": "secret",
            "peer_cidrs": [f"10.{100 + n}.0.0/24"]}


def _connection(member, topo, api) -> str:
    made = ok(member.post(CONNS, json={"ipsec_site_connection": _connection_body(
        member, topo, api)}))["ipsec_site_connection"]["id"]
    set_status(api, models.Base.metadata.tables["ipsec_site_connections"], made, "ACTIVE")
    return made


def _subnet_body(topo: Topology) -> dict:
    return {"network_id": topo.private_net, "ip_version": 4,
            "cidr": f"10.{next(_cidrs)}.128.0/24"}


def _port(member, topo, api) -> str:
    ports = ok(member.get("/v2.0/ports", params={"device_id": topo.router}), 200)["ports"]
    return ports[0]["id"]


def _agent(member, topo, api) -> str:
    host = f"host-{next(_cidrs)}"
    with api.db.write() as conn:
        api.services.agents.heartbeat(conn, {"host": host})
    with api.db.read() as conn:
        return api.services.agents.list(conn, RequestContext.admin(), {"host": [host]})[0]["id"]


def _event(member, topo, api) -> str:
    made = _post("/v2.0/vpn/ikepolicies", "ikepolicy", {})(member, topo, api)
    return ok(member.get("/v2.0/vpn/events", params={"resource_id": made}), 200)[
        "events"][0]["id"]


CASES = {
    "ikepolicies": Case("/v2.0/vpn/ikepolicies", "ikepolicy",
                        _post("/v2.0/vpn/ikepolicies", "ikepolicy", {}), lambda t: {}, VPN),
    "ipsecpolicies": Case("/v2.0/vpn/ipsecpolicies", "ipsecpolicy",
                          _post("/v2.0/vpn/ipsecpolicies", "ipsecpolicy", {}), lambda t: {},
                          VPN),
    "endpoint_groups": Case(GROUPS, "endpoint_group",
                            _post(GROUPS, "endpoint_group", {"type": "cidr",
                                                             "endpoints": ["10.9.0.0/24"]}),
                            lambda t: {"type": "cidr", "endpoints": ["10.8.0.0/24"]}, VPN),
    "vpnservices": Case(SERVICES, "vpnservice", _service,
                        lambda t: {"router_id": t.router}, VPN),
    "ipsec_site_connections": Case(CONNS, "ipsec_site_connection", _connection, None, VPN),
    "networks": Case("/v2.0/networks", "network", _post("/v2.0/networks", "network", {}),
                     lambda t: {}, NETWORKING),
    "subnets": Case("/v2.0/subnets", "subnet",
                    lambda m, t, a: ok(m.post("/v2.0/subnets", json={
                        "subnet": _subnet_body(t)}))["subnet"]["id"],
                    _subnet_body, NETWORKING),
    "routers": Case("/v2.0/routers", "router", _post("/v2.0/routers", "router", {}),
                    lambda t: {}, NETWORKING),
    "ports": Case("/v2.0/ports", "port", _port, None, READ_ONLY),
    "agents": Case("/v2.0/agents", "agent", _agent, None, ADMIN_ONLY),
    "events": Case("/v2.0/vpn/events", "event", _event, None, READ_ONLY),
}


def test_every_resource_has_a_row_and_rules(api):
    assert sorted(CASES) == sorted(api.services.collections)
    assert sorted(r.plural for r in policy.RESOURCES) == sorted(api.services.collections)


@pytest.mark.parametrize("plural", sorted(CASES))
def test_default_policy(api, admin, member, reader, other, topo, plural):
    case = CASES[plural]
    clients = {"admin": admin, "member": member, "reader": reader, "other": other}
    collection = case.path.rsplit("/", 1)[1].replace("-", "_")
    failures = []
    for role in ROLES:
        client = clients[role]
        listed, show, create, update, delete = case.expected[role].split()
        id_ = case.make(member, topo, api)
        ids = [i["id"] for i in ok(client.get(case.path), 200)[collection]]
        if (id_ in ids) != (listed == "L"):
            failures.append(f"{role} list: {'missing' if listed == 'L' else 'sees'} {id_}")
        got = client.get(f"{case.path}/{id_}").status_code
        if got != (200 if show == "S" else int(show)):
            failures.append(f"{role} show: {got}, expected {show}")
        if create != ".":
            body = case.create_body(topo) if case.create_body else \
                _connection_body(member, topo, api)
            if role == "admin":
                body = {**body, "project_id": "demoproj"}
            got = client.post(case.path, json={case.key: body}).status_code
            if got != int(create):
                failures.append(f"{role} create: {got}, expected {create}")
        if update != ".":
            got = client.put(f"{case.path}/{id_}", json={case.key: {"name": "renamed"}})
            if got.status_code != int(update):
                failures.append(f"{role} update: {got.status_code}, expected {update}: "
                                f"{got.text}")
        if delete != ".":
            got = client.delete(f"{case.path}/{id_}").status_code
            if got != int(delete):
                failures.append(f"{role} delete: {got}, expected {delete}")
    assert not failures, failures
