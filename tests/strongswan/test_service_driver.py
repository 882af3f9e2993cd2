"""StrongSwanServiceDriver refuses, with a 400, connections whose policies strongSwan cannot do."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from isthmus.context import RequestContext
from isthmus.drivers import Change
from isthmus.drivers.loader import StandInServer
from isthmus.drivers.service.strongswan import StrongSwanServiceDriver
from isthmus.exceptions import BadRequest
from tests.agent.conftest import running_embedded
from tests.api.test_vpn_resources import CONNS, SERVICES
from tests.api.topology import build, ok
from tests.strongswan.test_mapping import ikepolicy, ipsecpolicy

PROVIDER = "VPN:strongswan:isthmus.drivers.service.strongswan.StrongSwanServiceDriver:default"


def change(action: str = "create", new: dict | None = None, old: dict | None = None,
           resource: str = "ipsec_site_connections", **policies: dict) -> Change:
    stored = {("ikepolicies", "ike-1"): ikepolicy(**policies.get("ike", {})),
              ("ipsecpolicies", "ipsec-1"): ipsecpolicy(**policies.get("ipsec", {})),
              ("ipsecpolicies", "ah-esp"): ipsecpolicy(id="ah-esp", transform_protocol="ah-esp")}
    return Change(context=RequestContext.admin(), resource=resource, action=action,
                  new=new if new is not None else {"ikepolicy_id": "ike-1",
                                                    "ipsecpolicy_id": "ipsec-1"},
                  old=old, router_id="r1",
                  lookup=lambda collection, id_: stored.get((collection, id_), {}))


def test_a_connection_with_an_ah_esp_policy_is_refused():
    driver = StrongSwanServiceDriver(StandInServer())
    with pytest.raises(BadRequest) as error:
        driver.validate(change(ipsec={"transform_protocol": "ah-esp"}))
    assert error.value.status == 400
    assert str(error.value) == (
        "Bad ipsec_site_connection request: strongSwan cannot negotiate this connection's "
        "policies: IPsec policy transform_protocol 'ah-esp' is not supported: strongSwan "
        "negotiates ESP or AH for a CHILD_SA, never an AH+ESP bundle; use esp. Choose other "
        "policies for the connection.")


def test_a_supported_connection_passes():
    StrongSwanServiceDriver(StandInServer()).validate(change())


def test_libipsec_is_a_class_default_overridable_per_instance():
    assert StrongSwanServiceDriver.libipsec is True
    driver = StrongSwanServiceDriver(StandInServer())
    with pytest.raises(BadRequest, match="transform_protocol 'ah'.*kernel-libipsec"):
        driver.validate(change(ipsec={"transform_protocol": "ah"}))
    driver.libipsec = False
    driver.validate(change(ipsec={"transform_protocol": "ah"}))
    assert StrongSwanServiceDriver.libipsec is True


def test_an_update_checks_the_stored_connections_policies():
    driver = StrongSwanServiceDriver(StandInServer())
    stored = {"id": "c1", "ikepolicy_id": "ike-1", "ipsecpolicy_id": "ipsec-1"}
    with pytest.raises(BadRequest, match="phase1_negotiation_mode 'aggressive'"):
        driver.validate(change("update", new={"name": "renamed"}, old=stored,
                               ike={"phase1_negotiation_mode": "aggressive"}))


def test_an_update_switching_to_another_policy_checks_the_new_one():
    driver = StrongSwanServiceDriver(StandInServer())
    stored = {"id": "c1", "ikepolicy_id": "ike-1", "ipsecpolicy_id": "ipsec-1"}
    with pytest.raises(BadRequest, match="transform_protocol 'ah-esp'"):
        driver.validate(change("update", new={"ipsecpolicy_id": "ah-esp"}, old=stored))
    driver.validate(change("update", new={"ipsecpolicy_id": "ipsec-1"},
                           old={**stored, "ipsecpolicy_id": "ah-esp"}))


@pytest.mark.parametrize("resource, action", [("ipsec_site_connections", "delete"),
                                              ("ipsecpolicies", "create"),
                                              ("vpnservices", "update")])
def test_other_changes_are_not_checked(resource, action):
    StrongSwanServiceDriver(StandInServer()).validate(change(
        action, resource=resource, ipsec={"transform_protocol": "ah-esp"}))


def test_a_missing_policy_is_left_to_the_api_404():
    StrongSwanServiceDriver(StandInServer()).validate(change(new={
        "ikepolicy_id": "nope", "ipsecpolicy_id": "ipsec-1"}, ipsec={"transform_protocol":
                                                                      "ah-esp"}))


def test_changes_still_notify_the_router():
    server = StandInServer()
    StrongSwanServiceDriver(server).changed(change("update", new={"id": "c1"}, old={"id": "c1"}))
    assert server.notified == ["r1"]


# -- through the API -------------------------------------------------------------------
@pytest.fixture
def api(tmp_path) -> Iterator[Any]:
    with running_embedded(tmp_path, **{"service_providers.service_provider": [PROVIDER]}) \
            as env, env.api.client("adminproj", roles="admin,member,reader") as admin, \
            env.api.client("demoproj") as member:
        yield admin, member, build(admin, member)


def test_the_api_refuses_an_ah_esp_connection_and_stores_nothing(api):
    admin, member, topo = api
    ike = ok(member.post("/v2.0/vpn/ikepolicies", json={"ikepolicy": {"name": "ike"}}))
    ipsec = ok(member.post("/v2.0/vpn/ipsecpolicies", json={"ipsecpolicy": {
        "name": "ah-esp", "transform_protocol": "ah-esp"}}))
    service = ok(member.post(SERVICES, json={"vpnservice": {
        "router_id": topo.router, "subnet_id": topo.subnet_a}}))["vpnservice"]
    body = {"ipsec_site_connection": {
        "vpnservice_id": service["id"], "ikepolicy_id": ike["ikepolicy"]["id"],
        "ipsecpolicy_id": ipsec["ipsecpolicy"]["id"], "peer_address": "203.0.113.5",
        "peer_id": "203.0.113.5", "psk": "secret", "peer_cidrs": ["10.50.0.0/24"]}}

    refused = member.post(CONNS, json=body)
    assert refused.status_code == 400, refused.text
    error = refused.json()["NeutronError"]
    assert error["type"] == "BadRequest"
    assert "transform_protocol 'ah-esp'" in error["message"]
    assert "AH+ESP bundle" in error["message"]
    assert member.get(CONNS).json()["ipsec_site_connections"] == []

    esp = ok(member.post("/v2.0/vpn/ipsecpolicies", json={"ipsecpolicy": {"name": "esp"}}))
    body["ipsec_site_connection"]["ipsecpolicy_id"] = esp["ipsecpolicy"]["id"]
    created = ok(member.post(CONNS, json=body))["ipsec_site_connection"]
    assert [c["id"] for c in member.get(CONNS).json()["ipsec_site_connections"]] == \
        [created["id"]]
