"""A device driver that touches nothing and reports everything ACTIVE (tests, scale runs)."""

from __future__ import annotations

from typing import Mapping

from isthmus import diagnosis
from isthmus.drivers.device.base import DeviceDriver, RouterState, Statuses


class NoopDeviceDriver(DeviceDriver):
    """A device driver that configures nothing: every enabled object is ACTIVE.

    For tests and ``isthmus up`` without strongSwan; it also shows the least a driver has to do.
    Its statuses say so on each connection, so nobody mistakes them for a tunnel's."""

    status_note = "simulated by the noop device driver: no tunnel is built"

    def details(self, router: RouterState) -> Mapping[str, diagnosis.StatusDetail]:
        return {conn["id"]: diagnosis.detail("simulated", self.status_note, simulated=True)
                for service in router.services for conn in service["ipsec_site_connections"]}

    def sync(self, router: RouterState) -> Statuses:
        statuses: dict[str, str] = {}
        for service in router.services:
            up = service["admin_state_up"]
            statuses[service["id"]] = "ACTIVE" if up else "DOWN"
            for conn in service["ipsec_site_connections"]:
                statuses[conn["id"]] = "ACTIVE" if up and conn["admin_state_up"] else "DOWN"
        return statuses

    poll = sync
