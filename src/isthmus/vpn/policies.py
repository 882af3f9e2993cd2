"""IKE and IPsec policies: algorithm sets for phase 1 and phase 2.

The two share everything but a few attributes, so they share one class. A
policy used by any site connection can be neither updated nor deleted (409),
as in Neutron: a connection's negotiated parameters never change under it.
"""

from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from isthmus import attributes as a
from isthmus.context import RequestContext
from isthmus.db import models
from isthmus.db.collection import Collection, new_id, owner_project
from isthmus.vpn import constants as c
from isthmus.vpn import exceptions as vexc



def _checked_as_sent(parse: a.Parser) -> a.Parser:
    """Validate with ``parse`` but keep the client's value: Neutron 29 echoes a lifetime
    value as sent (``"2000"`` stays a string) in the create and update answers, and
    neutron-tempest-plugin asserts that echo; it stores (and later shows) the integer."""
    def check(value: Any) -> Any:
        parse(value)
        return value
    return check


LIFETIME_VALUE = a.int_at_least(c.LIFETIME_MIN_SECONDS)
LIFETIME = a.dict_of({"units": a.one_of(c.LIFETIME_UNITS),
                      "value": _checked_as_sent(LIFETIME_VALUE)})
LIFETIME_SCHEMA = {"type": "object", "properties": {
    "units": {"type": "string", "enum": list(c.LIFETIME_UNITS)},
    "value": {"type": "integer", "minimum": c.LIFETIME_MIN_SECONDS}},
    "additionalProperties": False}


def _enum(name: str, values: tuple[str, ...], default: str) -> a.Attr:
    return a.Attr(name, post=True, put=True, default=default, parse=a.one_of(values),
                  schema={"type": "string", "enum": list(values)})


AUTH = _enum("auth_algorithm", c.AUTH_ALGORITHMS, c.DEFAULT_AUTH_ALGORITHM)
ENCRYPTION = _enum("encryption_algorithm", c.ENCRYPTION_ALGORITHMS,
                   c.DEFAULT_ENCRYPTION_ALGORITHM)
PFS = _enum("pfs", c.PFS_GROUPS, c.DEFAULT_PFS)
LIFETIME_ATTR = a.Attr("lifetime", post=True, put=True, default={}, parse=LIFETIME,
                       schema=LIFETIME_SCHEMA)

IKE_RESOURCE = a.Resource(
    singular="ikepolicy", plural="ikepolicies", path="/v2.0/vpn/ikepolicies",
    description="IKE (phase 1) policies",
    not_found=lambda id_: vexc.IKEPolicyNotFound(ikepolicy_id=id_),
    attrs=(*a.COMMON, AUTH, ENCRYPTION,
           _enum("phase1_negotiation_mode", c.PHASE1_MODES, "main"),
           LIFETIME_ATTR, _enum("ike_version", c.IKE_VERSIONS, "v1"), PFS),
)

IPSEC_RESOURCE = a.Resource(
    singular="ipsecpolicy", plural="ipsecpolicies", path="/v2.0/vpn/ipsecpolicies",
    description="IPsec (phase 2) policies",
    not_found=lambda id_: vexc.IPsecPolicyNotFound(ipsecpolicy_id=id_),
    attrs=(*a.COMMON, _enum("transform_protocol", c.TRANSFORM_PROTOCOLS, "esp"),
           AUTH, ENCRYPTION, _enum("encapsulation_mode", c.ENCAPSULATION_MODES, "tunnel"),
           LIFETIME_ATTR, PFS),
)

_CONNECTIONS = models.SiteConnection.__table__


class _Policies(Collection):
    """Shared behaviour of both policy kinds."""

    usage_column: str       # column of ipsec_site_connections pointing here
    in_use_error: type[vexc.InUse]
    in_use_key: str

    def __init__(self) -> None:
        scalars = [x.name for x in self.resource.attrs
                   if x.kind == "scalar" and x.name != "tenant_id"]
        self.columns = {name: name for name in scalars}
        self.columns["tenant_id"] = "project_id"
        self._scalars = [n for n in scalars if n not in ("id", "project_id")]

    def to_api(self, row: Row, extras: Any) -> dict[str, Any]:
        m = row._mapping
        out: dict[str, Any] = {"id": m["id"], "project_id": m["project_id"]}
        for name in self._scalars:
            out[name] = m[name]
        out["lifetime"] = {"units": m["lifetime_units"], "value": m["lifetime_value"]}
        out["tenant_id"] = m["project_id"]
        return out

    def _check_unused(self, conn: Connection, id_: str) -> None:
        used = conn.execute(sa.select(_CONNECTIONS.c.id).where(
            _CONNECTIONS.c[self.usage_column] == id_).limit(1)).first()
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
        values = {name: body[name] for name in self._scalars}
        values.update(id=new_id(), project_id=owner_project(ctx, body),
                      lifetime_units=lifetime["units"],
                      lifetime_value=LIFETIME_VALUE(lifetime["value"]))
        return self._echo_lifetime(self.to_api(self.insert(conn, values), None), body)

    def update(self, conn: Connection, ctx: RequestContext, id_: str,
               body: Mapping[str, Any]) -> dict[str, Any]:
        self.get_row(conn, ctx, id_, lock=True)
        self._check_unused(conn, id_)
        values = {k: v for k, v in body.items() if k != "lifetime"}
        lifetime = body.get("lifetime") or {}
        if "units" in lifetime:
            values["lifetime_units"] = lifetime["units"]
        if "value" in lifetime:
            values["lifetime_value"] = LIFETIME_VALUE(lifetime["value"])
        return self._echo_lifetime(self.to_api(self.update_row(conn, id_, values), None), body)

    def delete(self, conn: Connection, ctx: RequestContext, id_: str) -> dict[str, Any]:
        row = self.get_row(conn, ctx, id_, lock=True)
        self._check_unused(conn, id_)
        self.delete_row(conn, id_)
        return self.to_api(row, None)


class IKEPolicies(_Policies):
    """IKE policies (phase 1); while a connection uses one, it can be neither updated nor deleted."""

    resource = IKE_RESOURCE
    table = models.IKEPolicy.__table__
    usage_column = "ikepolicy_id"
    in_use_error = vexc.IKEPolicyInUse
    in_use_key = "ikepolicy_id"


class IPsecPolicies(_Policies):
    """IPsec policies (phase 2); while a connection uses one, it can be neither updated nor deleted."""

    resource = IPSEC_RESOURCE
    table = models.IPsecPolicy.__table__
    usage_column = "ipsecpolicy_id"
    in_use_error = vexc.IPsecPolicyInUse
    in_use_key = "ipsecpolicy_id"
