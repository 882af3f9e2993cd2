"""IKE and IPsec policies: algorithm sets for phase 1 and phase 2.

The two share everything but a few attributes, so they share one class. A
policy used by any site connection can be neither updated nor deleted (409),
as in Neutron: a connection's negotiated parameters never change under it.
"""

from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from isthmus import attributes as a
from isthmus.context import RequestContext
from isthmus.db import mapping, models
from isthmus.db.collection import Collection, new_id, owner_project, statement
from isthmus.vpn import constants as c
from isthmus.vpn import exceptions as vexc


def _checked_as_sent(parse: a.Parser) -> a.Parser:
    """Validate with ``parse`` but keep the client's value: Neutron 29 echoes a lifetime
    value as sent (``"2000"`` stays a string) in the create and update answers, and
    neutron-tempest-plugin asserts that echo; it stores (and later shows) the integer."""
    def check(value: Any) -> Any:
        parse(value)
        return value
    check.schema = a.schema_of(parse)  # type: ignore[attr-defined]
    return check


LIFETIME_VALUE = a.int_at_least(c.LIFETIME_MIN_SECONDS)
LIFETIME = a.dict_of({"units": a.one_of(c.LIFETIME_UNITS),
                      "value": _checked_as_sent(LIFETIME_VALUE)})


def _enum(name: str, values: tuple[str, ...], default: str, size: int) -> a.Attr:
    return a.Attr(name, post=True, put=True, default=default, parse=a.one_of(values),
                  store=a.Column(sa.String(size)), agent=True)


AUTH = _enum("auth_algorithm", c.AUTH_ALGORITHMS, c.DEFAULT_AUTH_ALGORITHM, 32)
ENCRYPTION = _enum("encryption_algorithm", c.ENCRYPTION_ALGORITHMS,
                   c.DEFAULT_ENCRYPTION_ALGORITHM, 32)
PFS = _enum("pfs", c.PFS_GROUPS, c.DEFAULT_PFS, 16)
LIFETIME_ATTR = a.Attr("lifetime", post=True, put=True, default={}, parse=LIFETIME, agent=True,
                       store=a.Nested({
                           "units": a.Column(sa.String(16), name="lifetime_units"),
                           "value": a.Column(sa.Integer(), name="lifetime_value")}))

IKE_RESOURCE = a.Resource(
    singular="ikepolicy", plural="ikepolicies", path="/v2.0/vpn/ikepolicies",
    description="IKE (phase 1) policies", table="ikepolicies",
    not_found=lambda id_: vexc.IKEPolicyNotFound(ikepolicy_id=id_),
    attrs=(*a.COMMON, AUTH, ENCRYPTION,
           _enum("phase1_negotiation_mode", c.PHASE1_MODES, "main", 16),
           LIFETIME_ATTR, _enum("ike_version", c.IKE_VERSIONS, "v1", 8), PFS),
)

IPSEC_RESOURCE = a.Resource(
    singular="ipsecpolicy", plural="ipsecpolicies", path="/v2.0/vpn/ipsecpolicies",
    description="IPsec (phase 2) policies", table="ipsecpolicies",
    not_found=lambda id_: vexc.IPsecPolicyNotFound(ipsecpolicy_id=id_),
    attrs=(*a.COMMON, _enum("transform_protocol", c.TRANSFORM_PROTOCOLS, "esp", 16),
           AUTH, ENCRYPTION, _enum("encapsulation_mode", c.ENCAPSULATION_MODES, "tunnel", 16),
           LIFETIME_ATTR, PFS),
)

IKE_POLICIES = mapping.table_of(IKE_RESOURCE, models.Base.metadata)
IPSEC_POLICIES = mapping.table_of(IPSEC_RESOURCE, models.Base.metadata)


class _Policies(Collection):
    """Shared behaviour of both policy kinds."""

    usage_column: str       # column of ipsec_site_connections pointing here
    in_use_error: type[vexc.InUse]
    in_use_key: str

    def _check_unused(self, conn: Connection, id_: str) -> None:
        connections = models.Base.metadata.tables["ipsec_site_connections"]  # imports this module
        used = conn.execute(statement(connections, f"{self.usage_column} in use", lambda: sa.select(
            connections.c.id).where(connections.c[self.usage_column] == sa.bindparam("used"))
            .limit(1)), {"used": id_}).first()
        if used is not None:
            raise self.in_use_error(**{self.in_use_key: id_})

    @staticmethod
    def _echo_lifetime(shown: dict[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
        """The write answer with the lifetime value as the client sent it (Neutron's echo)."""
        sent = body.get("lifetime") or {}
        if "value" in sent:
            shown["lifetime"]["value"] = sent["value"]
        return shown

    def create(self, conn: Connection, ctx: RequestContext,
               body: Mapping[str, Any]) -> dict[str, Any]:
        lifetime = {**c.DEFAULT_LIFETIME, **body["lifetime"]}
        values = mapping.row_values(self.resource, {
            **body, "lifetime": {**lifetime, "value": LIFETIME_VALUE(lifetime["value"])}})
        values.update(id=new_id(), project_id=owner_project(ctx, body))
        return self._echo_lifetime(self.to_api(self.insert(conn, values), None), body)

    def update(self, conn: Connection, ctx: RequestContext, id_: str,
               body: Mapping[str, Any]) -> dict[str, Any]:
        current = self.get_row(conn, ctx, id_, lock=True)
        self._check_unused(conn, id_)
        lifetime = dict(body.get("lifetime") or {})
        if "value" in lifetime:
            lifetime["value"] = LIFETIME_VALUE(lifetime["value"])
        values = mapping.row_values(self.resource, {**body, "lifetime": lifetime})
        return self._echo_lifetime(self.to_api(self.update_row(conn, id_, values, current=current),
                                               None), body)

    def delete(self, conn: Connection, ctx: RequestContext, id_: str) -> dict[str, Any]:
        row = self.get_row(conn, ctx, id_, lock=True)
        self._check_unused(conn, id_)
        self.delete_row(conn, id_)
        return self.to_api(row, None)


class IKEPolicies(_Policies):
    """IKE policies (phase 1); while a connection uses one, it can be neither updated nor deleted."""

    resource = IKE_RESOURCE
    table = IKE_POLICIES
    usage_column = "ikepolicy_id"
    in_use_error = vexc.IKEPolicyInUse
    in_use_key = "ikepolicy_id"


class IPsecPolicies(_Policies):
    """IPsec policies (phase 2); while a connection uses one, it can be neither updated nor deleted."""

    resource = IPSEC_RESOURCE
    table = IPSEC_POLICIES
    usage_column = "ipsecpolicy_id"
    in_use_error = vexc.IPsecPolicyInUse
    in_use_key = "ipsecpolicy_id"
