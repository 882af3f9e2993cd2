"""Fake service drivers for the provider tests (importable by dotted path)."""

from __future__ import annotations

from isthmus.drivers import Change, IPsecServiceDriver
from isthmus.exceptions import BadRequest, Conflict

SEEN: list[tuple[str, str, str, str | None]] = []


class FakeRefusingDriver(IPsecServiceDriver):
    """Refuses AH-ESP policies (400) and a connection named 'busy' (409); records changes."""

    def validate(self, change: Change) -> None:
        if change.resource == "ipsec_site_connections" and change.action == "create":
            policy = change.lookup("ipsecpolicies", change.new["ipsecpolicy_id"])
            if policy.get("transform_protocol") == "ah-esp":
                raise BadRequest(resource="ipsec_site_connection",
                                 msg=f"provider {self.name} cannot do ah-esp")
            if change.new.get("name") == "busy":
                raise Conflict(msg="the device is busy")

    def changed(self, change: Change) -> None:
        SEEN.append((self.name, change.resource, change.action, change.router_id))
        super().changed(change)
