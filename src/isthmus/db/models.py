"""SQLAlchemy models: the metadata, and the tables that are not an API resource's own.

Each API resource's table is derived from its attribute table where the resource
is declared (:mod:`isthmus.network`, :mod:`isthmus.vpn`, through
:func:`isthmus.db.mapping.table_of`): import those packages before using
``Base.metadata`` whole. Here are the child tables: lists live in them so that
"which connections use this subnet/CIDR" stays an indexed query. Foreign keys
are real, so a race between an in-use check and a delete ends in a constraint
error (a 409), never in a dangling reference.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(36)


class Base(DeclarativeBase):
    """The declarative base; its naming convention gives constraints stable names for migrations."""

    metadata = MetaData(naming_convention=NAMING)


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


class IPAllocation(Base):
    """One fixed IP of a port; unique per subnet, so two ports never share an IP."""

    __tablename__ = "ip_allocations"
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id"), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"), index=True)


# ----------------------------------------------------------------------- VPN

class Endpoint(Base):
    """One endpoint of a group (a subnet id or a CIDR); unique within its group."""

    __tablename__ = "vpn_endpoints"
    endpoint: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Indexed apart: the primary key starts with ``endpoint``, and a group's endpoints
    # are read by group (without it, a scan of every group's endpoints).
    endpoint_group_id: Mapped[str] = mapped_column(
        ForeignKey("vpn_endpoint_groups.id", ondelete="CASCADE"), primary_key=True,
        index=True)


class PeerCidr(Base):
    """One peer CIDR of a connection (legacy mode, without endpoint groups)."""

    __tablename__ = "ipsec_peer_cidrs"
    cidr: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Indexed apart: the primary key starts with ``cidr``, and a connection's CIDRs are
    # read by connection (without it, a scan of every connection's CIDRs).
    ipsec_site_connection_id: Mapped[str] = mapped_column(
        ForeignKey("ipsec_site_connections.id", ondelete="CASCADE"), primary_key=True,
        index=True)


# ------------------------------------------------------------------- servers

class Lease(Base):
    """A lease that one server process of the deployment holds at a time
    (:mod:`isthmus.leader`): ``holder`` runs the work named ``name`` until
    ``expires_at`` (UTC), renewing it well before then."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(DateTime())
