"""Pluggable VPN drivers: service drivers (server) and device drivers (agent)."""

from isthmus.drivers.device import AgentContext, DeviceDriver, NoopDeviceDriver, RouterState
from isthmus.drivers.loader import DriverLoadError, build_driver, check_driver, load_driver
from isthmus.drivers.service import Change, IPsecServiceDriver, ServiceDriver

__all__ = ["AgentContext", "Change", "DeviceDriver", "DriverLoadError", "IPsecServiceDriver",
           "NoopDeviceDriver", "RouterState", "ServiceDriver", "build_driver", "check_driver",
           "load_driver"]
