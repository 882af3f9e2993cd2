"""Types of the RPC payloads between server and agents (version 1.1; docs/rpc.md).

The JSON schemas in :mod:`isthmus.rpc.schema` say what is valid on the wire; these
TypedDicts say the same to type checkers, so that the server building a payload
and the agent or device driver reading it agree on its keys.
``tests/rpc/test_payloads.py`` checks that both name the same keys. This module
imports only :mod:`typing`: both processes load it, and an agent must not load
the server. (No ``from __future__ import annotations``: with it, Python 3.11
cannot tell ``NotRequired`` keys at run time.)
"""

from typing import Literal, NotRequired, TypedDict

from isthmus.diagnosis import StatusDetail

Status = Literal["ACTIVE", "DOWN", "ERROR", "BUILD", "PENDING_CREATE", "PENDING_UPDATE",
                 "PENDING_DELETE"]
"""A status as the server stores it (pending states included)."""

ReportedStatus = Literal["ACTIVE", "DOWN", "ERROR"]
"""A status an agent reports: what the device does, never a pending state."""


class Lifetime(TypedDict):
    """The lifetime of an IKE or IPsec security association."""

    units: str
    value: int


class Dpd(TypedDict):
    """Dead peer detection of a site connection."""

    action: str
    interval: int
    timeout: int


class IKEPolicy(TypedDict):
    """The IKE policy of a site connection, as an agent gets it."""

    id: str
    auth_algorithm: str
    encryption_algorithm: str
    pfs: str
    lifetime: Lifetime
    ike_version: str
    phase1_negotiation_mode: str


class IPsecPolicy(TypedDict):
    """The IPsec policy of a site connection, as an agent gets it."""

    id: str
    auth_algorithm: str
    encryption_algorithm: str
    pfs: str
    lifetime: Lifetime
    transform_protocol: str
    encapsulation_mode: str


class Connection(TypedDict):
    """The desired state of one IPsec site connection.

    ``psk`` is in clear (the bus must be trusted); ``local_cidrs`` and ``peer_cidrs``
    are resolved from the service subnet, peer CIDRs or endpoint groups alike, and
    ``external_ip`` is the service's external IP of the peer's IP version.
    """

    id: str
    name: str
    admin_state_up: bool
    status: Status
    peer_address: str
    peer_id: str
    local_id: str
    mtu: int
    initiator: Literal["bi-directional", "response-only"]
    psk: str
    dpd: Dpd
    ikepolicy: IKEPolicy
    ipsecpolicy: IPsecPolicy
    local_cidrs: list[str]
    peer_cidrs: list[str]
    local_ip_version: Literal[4, 6]
    external_ip: str | None


class Service(TypedDict):
    """The desired state of one VPN service: one item of ``get_vpn_services_on_host``'s answer.

    A service without connections is sent too, so that it leaves ``PENDING_CREATE``.
    """

    id: str
    project_id: str
    name: str
    router_id: str
    namespace: str | None
    provider: str | None
    admin_state_up: bool
    status: Status
    subnet_id: str | None
    external_v4_ip: str | None
    external_v6_ip: str | None
    ipsec_site_connections: list[Connection]


class Traffic(TypedDict, total=False):
    """Counters of one connection since its tunnel came up; a driver may leave some out."""

    bytes_in: int
    bytes_out: int
    packets_in: int
    packets_out: int


TRAFFIC_COUNTERS = tuple(Traffic.__annotations__)
"""The counter names, in order: the server stores and shows them as they are named here."""


class ConnectionReport(TypedDict):
    """What an agent reports of one connection in ``update_status``."""

    status: ReportedStatus
    updated_pending_status: bool
    """True only after a sync: the report may end a pending status (status.py)."""
    traffic: NotRequired[Traffic]
    status_detail: NotRequired[StatusDetail | str | None]
    """Why the status is what it is (shown as ``isthmus:status_detail``): an object since
    1.3, a sentence before; None clears it; older agents leave it out."""


class ServiceReport(TypedDict):
    """What an agent reports of one VPN service and its connections in ``update_status``."""

    id: str
    status: ReportedStatus
    updated_pending_status: bool
    ipsec_site_connections: dict[str, ConnectionReport]
    """Only the connections with news, by connection id."""


class AgentConfigurations(TypedDict):
    """What an agent says of itself in its heartbeat (shown as the agent's ``configurations``)."""

    device_drivers: list[str]
    routers: int
    physical_networks: NotRequired[list[str]]
    """The physical networks this agent plugs routers into (none: it builds no routers)."""


class AgentState(TypedDict):
    """The heartbeat ``report_state(agent_state)`` an agent casts every ``report_interval``.

    ``start_flag`` is true in the first heartbeat after the agent started.
    """

    host: str
    binary: str
    topic: str
    start_flag: bool
    configurations: AgentConfigurations


# -- Routers the agent builds (agent/routers/; docs/routers.md) ---------------------------


class FixedIP(TypedDict):
    """One address of a router port: ``ip_address/prefixlen`` on the subnet ``cidr``.

    On a gateway port ``gateway_ip`` is the external subnet's gateway (the default
    route); on an interface port it is the router's own address, not used for routing.
    """

    ip_address: str
    prefixlen: int
    subnet_id: str
    cidr: str
    gateway_ip: str | None


class RouterPort(TypedDict):
    """A router's port on a network the agent's host reaches through ``physical_network``.

    ``network_type`` ``vlan`` tags the port's frames with ``segmentation_id``;
    ``flat`` leaves them untagged (``segmentation_id`` None).
    """

    id: str
    mac_address: str
    mtu: int
    physical_network: str | None
    """None: the network has no provider attributes (the router reports ERROR)."""
    network_type: Literal["flat", "vlan"] | None
    segmentation_id: int | None
    fixed_ips: list[FixedIP]


class Route(TypedDict):
    """An extra route of a router (Neutron's extraroute): ``destination`` via ``nexthop``."""

    destination: str
    nexthop: str


class RouterNetwork(TypedDict):
    """The desired network of one router, as an agent gets it.

    ``mode``: ``managed`` (the agent builds the namespace, ``namespace`` None: the
    agent derives it), ``external`` (``namespace`` exists and is someone else's, e.g.
    Neutron's ``qrouter-<id>``: only used) or ``host`` (the host's own stack).
    ``nat_exempt`` holds (local CIDR, peer CIDR) pairs of VPN connections: traffic
    between them leaves the gateway without SNAT.
    """

    id: str
    admin_state_up: bool
    mode: Literal["managed", "external", "host"]
    namespace: str | None
    gateway: RouterPort | None
    enable_snat: bool
    interfaces: list[RouterPort]
    routes: list[Route]
    nat_exempt: list[tuple[str, str]]


class PortReport(TypedDict):
    """What an agent reports of one router port: ACTIVE, DOWN or ERROR, and why."""

    status: ReportedStatus
    reason: str | None


class RouterReport(TypedDict):
    """What an agent reports of one router's network and its ports (by port id)."""

    id: str
    status: ReportedStatus
    reason: str | None
    ports: dict[str, PortReport]
