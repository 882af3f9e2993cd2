"""Device and namespace names: within IFNAMSIZ, stable, distinct."""

from __future__ import annotations

import uuid

import pytest

from isthmus.agent.routers import names


def test_device_names_fit_ifnamsiz_and_are_stable():
    port_id = str(uuid.uuid4())
    ns = names.namespace_name("isthmus-", str(uuid.uuid4()))
    made = [names.gateway_device(port_id), names.interface_device(port_id),
            names.trunk_device(port_id), names.host_device(ns, port_id)]
    assert all(len(name) <= names.IFNAMSIZ for name in made), made
    assert made == [names.gateway_device(port_id), names.interface_device(port_id),
                    names.trunk_device(port_id), names.host_device(ns, port_id)]
    assert len(set(made)) == 4


def test_host_ends_differ_between_agents_routers_and_ports():
    router_id, port_id = str(uuid.uuid4()), str(uuid.uuid4())
    a = names.host_device(names.namespace_name("isthmus-a-", router_id), port_id)
    b = names.host_device(names.namespace_name("isthmus-b-", router_id), port_id)
    c = names.host_device(names.namespace_name("isthmus-a-", str(uuid.uuid4())), port_id)
    assert len({a, b, c}) == 3


def test_many_ports_get_distinct_host_ends():
    ns = names.namespace_name("isthmus-", str(uuid.uuid4()))
    made = {names.host_device(ns, str(uuid.uuid4())) for _ in range(5000)}
    assert len(made) == 5000


def test_namespace_round_trip_and_foreign_names():
    router_id = str(uuid.uuid4())
    assert names.router_id_of("isthmus-", names.namespace_name("isthmus-", router_id)) == router_id
    assert names.router_id_of("isthmus-", "qrouter-" + router_id) is None
    assert names.router_id_of("isthmus-", "isthmus-") is None


def test_agent_devices_are_recognised_by_prefix():
    port_id = str(uuid.uuid4())
    assert names.is_agent_device(names.gateway_device(port_id))
    assert names.is_agent_device(names.interface_device(port_id))
    assert not names.is_agent_device("lo") and not names.is_agent_device("ipsec0")


def test_duplicates_are_found():
    assert names.duplicate_devices(["qr-a", "qr-b", "qr-a"]) == {"qr-a"}


@pytest.mark.parametrize("prefix", ["", "-x", ".x", "a/b", "a b"])
def test_bad_prefix_is_refused(prefix):
    with pytest.raises(names.BadNamespacePrefix, match="router_namespace_prefix"):
        names.check_prefix(prefix)
