"""IPsec site connections: one tunnel between a VPN service and a peer.

The checks run in Neutron's order, so a request with several faults gets the
same error Neutron would give: mode (legacy ``peer_cidrs`` versus endpoint
groups), endpoint group types and IP versions, DPD, MTU, then the peer
address, which is resolved here and stored resolved.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from isthmus import attributes as a
from isthmus.context import RequestContext
from isthmus.db import mapping, models
from isthmus.db.collection import Collection, children, new_id, owner_project
from isthmus.network import Subnets
from isthmus.rpc.payloads import TRAFFIC_COUNTERS
from isthmus.vpn import constants as c
from isthmus.vpn import exceptions as vexc
from isthmus.vpn import status
from isthmus.vpn.endpoint_groups import EndpointGroups
from isthmus.vpn.policies import IKEPolicies, IPsecPolicies
from isthmus.vpn.vpnservices import VPNServices, router_subnet_ids

PEER_CIDRS = models.PeerCidr.__table__

TRAFFIC = "isthmus:traffic"   # read-only: counters the agent reports (docs/api.md)
STATUS_DETAIL = "isthmus:status_detail"   # read-only: why the status, as the agent said it
DETAIL_SCHEMA = {"type": ["object", "null"], "properties": {
    "reason": {"type": ["string", "null"]}, "message": {"type": ["string", "null"]},
    "ike": {"type": ["object", "null"]}, "child": {"type": ["object", "null"]},
    "last_failure": {"type": ["object", "null"]}, "warnings": {"type": "array"},
    "simulated": {"type": "boolean"}}}

DPD = a.dict_of({"action": a.one_of(c.DPD_ACTIONS), "interval": a.non_negative_int,
                 "timeout": a.non_negative_int})


def _ref(name: str, table: str, put: bool = False) -> a.Attr:
    return a.Attr(name, post=True, put=put, default=a.REQUIRED, parse=a.uuid_str,
                  store=a.Column(a.UUID_TYPE, foreign_key=f"{table}.id", index=True))


def _optional_ref(name: str) -> a.Attr:
    return a.Attr(name, post=True, put=True, default=None, parse=a.uuid_or_none,
                  store=a.Column(a.UUID_TYPE, nullable=True, index=True,
                                 foreign_key="vpn_endpoint_groups.id"))


def _sent(name: str, parse: a.Parser, default: Any = a.REQUIRED, **column: Any) -> a.Attr:
    """An attribute clients set and agents are sent."""
    return a.Attr(name, post=True, put=True, default=default, parse=parse, agent=True,
                  store=a.Column(**column))


RESOURCE = a.Resource(
    singular="ipsec_site_connection", plural="ipsec_site_connections",
    path="/v2.0/vpn/ipsec-site-connections", description="IPsec site connections",
    table="ipsec_site_connections",
    not_found=lambda id_: vexc.IPsecSiteConnectionNotFound(ipsec_site_conn_id=id_),
    attrs=(a.ID, a.PROJECT_ID, a.TENANT_ID, a.to_agents(a.NAME), a.DESCRIPTION,
           # Stored resolved: a host name is looked up once, on create and update.
           _sent("peer_address", a.string(255), type=a.NAME_TYPE),
           _sent("peer_id", a.string(255), type=a.NAME_TYPE),
           _sent("local_id", a.string(255), default="", type=a.NAME_TYPE),
           a.Attr("route_mode", store=a.Column(sa.String(8), default="static")),
           a.Attr("mtu", post=True, put=True, default=1500, parse=a.int_in_range(0, 65535),
                  filter_parse=a.integer, agent=True, store=a.Column(sa.Integer())),
           a.Attr("auth_mode", store=a.Column(sa.String(16), default="psk")),
           # In clear: agents need it (docs/rpc.md).
           a.Attr("psk", post=True, put=True, default=a.REQUIRED, agent=True,
                  parse=a.string(255, secret=True), secret=True,
                  store=a.Column(a.NAME_TYPE)),
           _sent("initiator", a.one_of(c.INITIATORS), default="bi-directional",
                 type=sa.String(16)),
           a.Attr("dpd", post=True, put=True, default={}, parse=DPD, agent=True,
                  store=a.Nested({"action": a.Column(sa.String(16), name="dpd_action"),
                                  "interval": a.Column(sa.Integer(), name="dpd_interval"),
                                  "timeout": a.Column(sa.Integer(), name="dpd_timeout")})),
           a.to_agents(a.ADMIN_STATE_UP), status.STATUS,
           # Isthmus extension: a connection may switch policies (Neutron: read-only);
           # the device renegotiates that connection alone.
           _ref("vpnservice_id", "vpnservices"), _ref("ikepolicy_id", "ikepolicies", put=True),
           _ref("ipsecpolicy_id", "ipsecpolicies", put=True),
           # Rows of PEER_CIDRS (legacy mode, without endpoint groups).
           a.Attr("peer_cidrs", post=True, put=True, default=[], parse=a.as_list(a.cidr)),
           _optional_ref("local_ep_group_id"), _optional_ref("peer_ep_group_id"),
           # The tunnel's counters, as its agent last reported them.
           a.Attr(TRAFFIC, schema={"type": "object", "properties": {
               k: {"type": "integer"} for k in TRAFFIC_COUNTERS}},
               store=a.Nested({k: a.Column(sa.BigInteger(), name=k, default=0,
                                           server_default="0") for k in TRAFFIC_COUNTERS})),
           # Why the status: states, negotiated algorithms, reason (docs/diagnosis.md).
           a.Attr(STATUS_DETAIL, schema=DETAIL_SCHEMA,
                  store=a.Column(sa.Text(), nullable=True, json=True))),
)
CONNECTIONS = mapping.table_of(RESOURCE, models.Base.metadata)


def _version_text(version: int) -> str:
    return f"IPv{version}"


def resolve_peer_address(address: str) -> str:
    """An IP literal as given, or the first address a host name resolves to."""
    try:
        ipaddress.ip_address(address)
        return address
    except ValueError:
        pass
    try:
        return socket.getaddrinfo(address, None)[0][4][0]
    except (OSError, UnicodeError, IndexError):
        raise vexc.VPNPeerAddressNotResolved(peer_address=address) from None


class SiteConnections(Collection):
    """IPsec site connections, checked as Neutron VPNaaS checks them.

    Validation follows Neutron's order (endpoints, DPD and MTU, peer address),
    so a request with several faults gets the error Neutron gives. Peer host
    names are resolved once, on create and update."""

    resource = RESOURCE
    table = CONNECTIONS

    def __init__(self, services: VPNServices, ike: IKEPolicies, ipsec: IPsecPolicies,
                 groups: EndpointGroups, subnets: Subnets) -> None:
        self.services = services
        self.ike = ike
        self.ipsec = ipsec
        self.groups = groups
        self.subnets = subnets

    def load_extras(self, conn: Connection, rows: Sequence[Row]) -> Any:
        return children(conn, PEER_CIDRS, "ipsec_site_connection_id", "cidr",
                        [r.id for r in rows])

    def computed(self, row: Row, extras: Any) -> dict[str, Any]:
        return {"peer_cidrs": extras[row.id]}

    # -- the consistency rules ----------------------------------------------
    def _check_endpoints(self, conn: Connection, ctx: RequestContext, service: Row,
                         conn_dict: Mapping[str, Any]) -> int:
        """Steps 4–6 of Neutron's validation; returns the local IP version."""
        peer_cidrs = conn_dict["peer_cidrs"]
        local_group = conn_dict["local_ep_group_id"]
        peer_group = conn_dict["peer_ep_group_id"]
        if service.subnet_id:
            if local_group or peer_group:
                which = " and ".join(w for w, g in (("local", local_group),
                                                    ("peer", peer_group)) if g)
                raise vexc.InvalidEndpointGroup(suffix="s" if local_group and peer_group
                                                else "", which=which)
            if not peer_cidrs:
                raise vexc.MissingPeerCidrs()
            subnet = self.subnets.get_row(conn, None, service.subnet_id)
            local_version = subnet.ip_version
            peer_versions = {a.ip_version_of(p) for p in peer_cidrs}
            if len(peer_versions) > 1:
                raise vexc.MixedIPVersionsForPeerCidrs()
        else:
            if peer_cidrs:
                raise vexc.PeerCidrsInvalid()
            if not local_group or not peer_group:
                missing = [w for w, g in (("local", local_group), ("peer", peer_group)) if not g]
                raise vexc.MissingRequiredEndpointGroup(
                    suffix="s" if len(missing) == 2 else "", which=" and ".join(missing))
            local = self.groups.get_row(conn, ctx, local_group)
            peer = self.groups.get_row(conn, ctx, peer_group)
            if local.endpoint_type != "subnet":
                raise vexc.WrongEndpointGroupType(which=local.id, group_type=local.endpoint_type,
                                                  expected="subnet")
            if peer.endpoint_type != "cidr":
                raise vexc.WrongEndpointGroupType(which=peer.id, group_type=peer.endpoint_type,
                                                  expected="cidr")
            attached = router_subnet_ids(conn, service.router_id)
            local_versions = set()
            for subnet_id in self.groups.endpoints_of(conn, local.id):
                if subnet_id not in attached:
                    raise vexc.SubnetIsNotConnectedToRouter(subnet_id=subnet_id,
                                                            router_id=service.router_id)
                local_versions.add(self.subnets.get_row(conn, None, subnet_id).ip_version)
            if len(local_versions) > 1:
                raise vexc.MixedIPVersionsForIPSecEndpoints(group=local.id)
            peer_versions = {a.ip_version_of(p) for p in self.groups.endpoints_of(conn, peer.id)}
            if len(peer_versions) > 1:
                raise vexc.MixedIPVersionsForIPSecEndpoints(group=peer.id)
            local_version = local_versions.pop()
        if peer_versions and local_version not in peer_versions:
            raise vexc.MixedIPVersionsForIPSecConnection()
        return local_version

    @staticmethod
    def _check_dpd_and_mtu(conn_dict: Mapping[str, Any], local_version: int) -> None:
        dpd = conn_dict["dpd"]
        if dpd["timeout"] <= dpd["interval"]:
            raise vexc.IPsecSiteConnectionDpdIntervalValueError(attr="dpd_timeout")
        mtu = conn_dict["mtu"]
        if mtu and mtu < c.MIN_MTU[local_version]:
            raise vexc.IPsecSiteConnectionMtuError(mtu=mtu, version=local_version)

    @staticmethod
    def _check_peer_address(service: Row, address: str) -> str:
        resolved = resolve_peer_address(address)
        version = ipaddress.ip_address(resolved).version
        if (service.external_v4_ip if version == 4 else service.external_v6_ip) is None:
            raise vexc.ExternalNetworkHasNoSubnet(router_id=service.router_id,
                                                  ip_version=_version_text(version))
        return resolved

    # -- CRUD ----------------------------------------------------------------
    def create(self, conn: Connection, ctx: RequestContext,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Insert a connection (born PENDING_CREATE) after every consistency rule passed."""
        data = dict(body)
        data["dpd"] = {**c.DEFAULT_DPD, **body["dpd"]}
        service = self.services.get_row(conn, ctx, body["vpnservice_id"], lock=True)
        self.ike.get_row(conn, ctx, body["ikepolicy_id"], lock=True)
        self.ipsec.get_row(conn, ctx, body["ipsecpolicy_id"], lock=True)
        local_version = self._check_endpoints(conn, ctx, service, data)
        self._check_dpd_and_mtu(data, local_version)
        values = {**mapping.row_values(self.resource, data), "id": new_id(),
                  "project_id": owner_project(ctx, body), "status": status.on_create(),
                  "peer_address": self._check_peer_address(service, body["peer_address"])}
        row = self.insert(conn, values)
        self._store_peer_cidrs(conn, row.id, data["peer_cidrs"])
        return self.show_row(conn, row)

    def update(self, conn: Connection, ctx: RequestContext, id_: str,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Change a connection that is not pending; the rules are checked on the merged result."""
        row = self.get_row(conn, ctx, id_, lock=True)
        current = self.show_row(conn, row)
        data = {**current, **body}
        data["dpd"] = {**current["dpd"], **body.get("dpd", {})}
        service = self.services.get_row(conn, None, row.vpnservice_id)
        local_version = self._check_endpoints(conn, ctx, service, data)
        self._check_dpd_and_mtu(data, local_version)
        values = mapping.row_values(self.resource, body)
        if "ikepolicy_id" in body:
            self.ike.get_row(conn, ctx, body["ikepolicy_id"], lock=True)
        if "ipsecpolicy_id" in body:
            self.ipsec.get_row(conn, ctx, body["ipsecpolicy_id"], lock=True)
        if "peer_address" in body:
            values["peer_address"] = self._check_peer_address(service, body["peer_address"])
        if not status.can_update(row.status):
            raise vexc.VPNStateInvalidToUpdate(state=row.status, id=id_)
        row = self.update_row(conn, id_, values, current=row)
        if "peer_cidrs" in body:
            conn.execute(sa.delete(PEER_CIDRS)
                         .where(PEER_CIDRS.c.ipsec_site_connection_id == id_))
            self._store_peer_cidrs(conn, id_, body["peer_cidrs"])
        return self.show_row(conn, row)

    def delete(self, conn: Connection, ctx: RequestContext, id_: str) -> dict[str, Any]:
        """Delete a connection and its peer CIDRs; answer what was deleted."""
        row = self.get_row(conn, ctx, id_, lock=True)
        shown = self.show_row(conn, row)
        conn.execute(sa.delete(PEER_CIDRS).where(PEER_CIDRS.c.ipsec_site_connection_id == id_))
        self.delete_row(conn, id_)
        return shown

    @staticmethod
    def _store_peer_cidrs(conn: Connection, conn_id: str, cidrs: list[str]) -> None:
        if cidrs:
            conn.execute(sa.insert(PEER_CIDRS), [{"cidr": cidr, "ipsec_site_connection_id": conn_id}
                                                 for cidr in cidrs])
