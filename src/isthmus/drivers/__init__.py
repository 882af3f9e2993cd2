"""Pluggable VPN drivers: service drivers (server) and device drivers (agent)."""

from isthmus.drivers.device import AgentContext, DeviceDriver, NoopDeviceDriver, RouterState
from isthmus.drivers.service import Change, IPsecServiceDriver, ServiceDriver

__all__ = ["AgentContext", "Change", "DeviceDriver", "IPsecServiceDriver", "NoopDeviceDriver",
           "RouterState", "ServiceDriver"]
