"""The strongSwan service driver: the reference driver, plus refusing what strongSwan cannot do.

A site connection whose IKE or IPsec policy strongSwan cannot negotiate (an
``ah-esp`` transform, aggressive mode with IKEv2, AES-GCM in IKEv1 phase 1, AH
under kernel-libipsec, ...) is refused with a 400 when it is created or updated,
instead of being accepted and then failing on the device. The rules live with
the mapping they protect, in
:func:`isthmus.drivers.device.strongswan.mapping.unsupported`.
"""

from __future__ import annotations

from typing import Any, Mapping

from isthmus.drivers.device.strongswan.mapping import unsupported
from isthmus.drivers.device.strongswan.options import GROUP, list_opts
from isthmus.drivers.service.base import Change
from isthmus.drivers.service.ipsec import IPsecServiceDriver
from isthmus.exceptions import BadRequest

__all__ = ["StrongSwanServiceDriver"]


class StrongSwanServiceDriver(IPsecServiceDriver):
    """Casts changes to the router's agent like ``ipsec``; refuses policies strongSwan cannot do.

    ``libipsec``: whether the agents run strongSwan's kernel-libipsec (userspace
    ESP in UDP, which has no AH and no transport mode): ``[strongswan]
    kernel_libipsec`` of the server's configuration, ``True`` (the stricter
    answer) when the server has none.
    """

    options = list_opts()
    libipsec: bool = True

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        conf = getattr(server, "conf", None)
        if conf is not None:
            self.libipsec = conf[GROUP].kernel_libipsec

    def validate(self, change: Change) -> None:
        """Refuse a site connection create/update whose policies strongSwan cannot negotiate.

        Policies that do not exist are left for the API's own 404.
        """
        super().validate(change)
        if change.resource != "ipsec_site_connections" or change.action not in ("create",
                                                                                  "update"):
            return
        ikepolicy = self._policy(change, "ikepolicies", "ikepolicy_id")
        ipsecpolicy = self._policy(change, "ipsecpolicies", "ipsecpolicy_id")
        if not ikepolicy or not ipsecpolicy:
            return
        reasons = unsupported(ikepolicy, ipsecpolicy, libipsec=self.libipsec)
        if reasons:
            raise BadRequest(resource="ipsec_site_connection", msg=(
                "strongSwan cannot negotiate this connection's policies: " + "; ".join(reasons)
                + ". Choose other policies for the connection"))

    @staticmethod
    def _policy(change: Change, collection: str, attribute: str) -> Mapping[str, Any]:
        policy_id = (change.new or {}).get(attribute) or (change.old or {}).get(attribute)
        return change.lookup(collection, policy_id) if policy_id else {}
