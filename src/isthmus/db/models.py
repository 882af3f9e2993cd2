"""SQLAlchemy models: the tables behind the API resources.

Nested API values are flattened (``lifetime`` → ``lifetime_units`` +
``lifetime_value``, ``dpd`` → three columns); lists live in child tables so
that "which connections use this subnet/CIDR" stays an indexed query.
Foreign keys are real, so a race between an in-use check and a delete ends
in a constraint error (a 409), never in a dangling reference.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, MetaData,
                        String)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(36)
NAME = String(255)
PROJECT = String(255)


class Base(DeclarativeBase):
    """The declarative base; its naming convention gives constraints stable names for migrations."""

    metadata = MetaData(naming_convention=NAMING)


class _Owned:
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT)
    name: Mapped[str] = mapped_column(NAME, default="")
    description: Mapped[str] = mapped_column(NAME, default="")

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        # A project's page of a list (``WHERE project_id = ? ORDER BY id LIMIT n``)
        # is one range of this index, however large the table.
        return (Index(f"ix_{cls.__tablename__}_project_id_id", "project_id", "id"),)


class _StandardAttributes:
    """Neutron's standard attributes of networks, subnets and routers (timestamps,
    revision); their tags are rows of :class:`Tag`. The timestamps are nullable only so
    that migration 0004 could add them to existing rows (it dates those by the upgrade)."""

    created_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revision_number: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


# ---------------------------------------------------------------- networking

class Network(_Owned, _StandardAttributes, Base):
    """A network; ``router_external`` marks the ones routers take gateways from."""

    __tablename__ = "networks"
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    router_external: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")


class Subnet(_Owned, _StandardAttributes, Base):
    """A subnet; pools, DNS servers and host routes are JSON text (read whole, never queried)."""

    __tablename__ = "subnets"
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    ip_version: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    allocation_pools: Mapped[str] = mapped_column(String(4096), default="[]")  # JSON
    dns_nameservers: Mapped[str] = mapped_column(String(4096), default="[]")   # JSON
    host_routes: Mapped[str] = mapped_column(String(4096), default="[]")       # JSON
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)


class Router(_Owned, _StandardAttributes, Base):
    """A router: its gateway network, and the agent host and namespace that serve it."""

    __tablename__ = "routers"
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    gw_network_id: Mapped[str | None] = mapped_column(ForeignKey("networks.id"), nullable=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    agent_host: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    namespace: Mapped[str | None] = mapped_column(String(255), nullable=True)


class RouterRoute(Base):
    """One extra route of a router (Neutron's ``extraroute``)."""

    __tablename__ = "router_routes"
    router_id: Mapped[str] = mapped_column(ForeignKey("routers.id", ondelete="CASCADE"),
                                           primary_key=True)
    destination: Mapped[str] = mapped_column(String(64), primary_key=True)
    nexthop: Mapped[str] = mapped_column(String(64), primary_key=True)


class Tag(Base):
    """One tag of a network, subnet or router (Neutron's ``standard-attr-tag``).

    Keyed by the object's id (UUIDs do not collide across tables), so no foreign key:
    the collection deletes an object's tags with it.
    """

    __tablename__ = "tags"
    resource_id: Mapped[str] = mapped_column(ID, primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)


class Port(_Owned, Base):
    """A port of a router: its gateway or one interface (``device_owner`` tells which)."""

    __tablename__ = "ports"
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    device_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    device_owner: Mapped[str] = mapped_column(String(255), default="")
    mac_address: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)


class IPAllocation(Base):
    """One fixed IP of a port; unique per subnet, so two ports never share an IP."""

    __tablename__ = "ip_allocations"
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id"), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"), index=True)


# ----------------------------------------------------------------------- VPN

class IKEPolicy(_Owned, Base):
    """An IKE (phase 1) policy."""

    __tablename__ = "ikepolicies"
    auth_algorithm: Mapped[str] = mapped_column(String(32))
    encryption_algorithm: Mapped[str] = mapped_column(String(32))
    phase1_negotiation_mode: Mapped[str] = mapped_column(String(16))
    lifetime_units: Mapped[str] = mapped_column(String(16))
    lifetime_value: Mapped[int] = mapped_column(Integer)
    ike_version: Mapped[str] = mapped_column(String(8))
    pfs: Mapped[str] = mapped_column(String(16))


class IPsecPolicy(_Owned, Base):
    """An IPsec (phase 2) policy."""

    __tablename__ = "ipsecpolicies"
    transform_protocol: Mapped[str] = mapped_column(String(16))
    auth_algorithm: Mapped[str] = mapped_column(String(32))
    encryption_algorithm: Mapped[str] = mapped_column(String(32))
    encapsulation_mode: Mapped[str] = mapped_column(String(16))
    lifetime_units: Mapped[str] = mapped_column(String(16))
    lifetime_value: Mapped[int] = mapped_column(Integer)
    pfs: Mapped[str] = mapped_column(String(16))


class VPNService(_Owned, Base):
    """A VPN service on a router; the external IPs are copied from the router's gateway."""

    __tablename__ = "vpnservices"
    router_id: Mapped[str] = mapped_column(ForeignKey("routers.id"), index=True)
    subnet_id: Mapped[str | None] = mapped_column(ForeignKey("subnets.id"), nullable=True)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16))
    external_v4_ip: Mapped[str | None] = mapped_column(String(16), nullable=True)
    external_v6_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    flavor_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(255), nullable=True)


class EndpointGroup(_Owned, Base):
    """An endpoint group: ``endpoint_type`` is ``subnet`` or ``cidr``."""

    __tablename__ = "vpn_endpoint_groups"
    endpoint_type: Mapped[str] = mapped_column(String(16))


class Endpoint(Base):
    """One endpoint of a group (a subnet id or a CIDR); unique within its group."""

    __tablename__ = "vpn_endpoints"
    endpoint: Mapped[str] = mapped_column(String(255), primary_key=True)
    endpoint_group_id: Mapped[str] = mapped_column(
        ForeignKey("vpn_endpoint_groups.id", ondelete="CASCADE"), primary_key=True)


class SiteConnection(_Owned, Base):
    """An IPsec site connection, with the traffic counters its agent last reported.

    The PSK is stored in clear: agents need it (docs/rpc.md)."""

    __tablename__ = "ipsec_site_connections"
    peer_address: Mapped[str] = mapped_column(String(255))
    peer_id: Mapped[str] = mapped_column(String(255))
    local_id: Mapped[str] = mapped_column(String(255), default="")
    route_mode: Mapped[str] = mapped_column(String(8), default="static")
    mtu: Mapped[int] = mapped_column(Integer)
    initiator: Mapped[str] = mapped_column(String(16))
    auth_mode: Mapped[str] = mapped_column(String(16), default="psk")
    psk: Mapped[str] = mapped_column(String(255))
    dpd_action: Mapped[str] = mapped_column(String(16))
    dpd_interval: Mapped[int] = mapped_column(Integer)
    dpd_timeout: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    vpnservice_id: Mapped[str] = mapped_column(ForeignKey("vpnservices.id"), index=True)
    ikepolicy_id: Mapped[str] = mapped_column(ForeignKey("ikepolicies.id"), index=True)
    ipsecpolicy_id: Mapped[str] = mapped_column(ForeignKey("ipsecpolicies.id"), index=True)
    local_ep_group_id: Mapped[str | None] = mapped_column(
        ForeignKey("vpn_endpoint_groups.id"), nullable=True, index=True)
    peer_ep_group_id: Mapped[str | None] = mapped_column(
        ForeignKey("vpn_endpoint_groups.id"), nullable=True, index=True)
    # Traffic counters of the tunnel, as the agent last reported them.
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bytes_out: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    packets_in: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    packets_out: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Why the status is what it is, in words, as the agent last said it.
    status_detail: Mapped[str | None] = mapped_column(String(255), nullable=True)


class PeerCidr(Base):
    """One peer CIDR of a connection (legacy mode, without endpoint groups)."""

    __tablename__ = "ipsec_peer_cidrs"
    cidr: Mapped[str] = mapped_column(String(64), primary_key=True)
    ipsec_site_connection_id: Mapped[str] = mapped_column(
        ForeignKey("ipsec_site_connections.id", ondelete="CASCADE"), primary_key=True)


# -------------------------------------------------------------------- agents

class Agent(Base):
    """A VPN agent as its heartbeats describe it; ``alive`` is derived from the last one."""

    __tablename__ = "agents"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    host: Mapped[str] = mapped_column(String(255), unique=True)
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    agent_type: Mapped[str] = mapped_column(String(255))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    configurations: Mapped[str] = mapped_column(String(4096), default="{}")  # JSON
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_timestamp: Mapped[datetime] = mapped_column(DateTime)
