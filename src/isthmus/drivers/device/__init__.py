"""Device drivers: the agent half of a VPN provider."""

from isthmus.drivers.device.base import AgentContext, DeviceDriver, RouterState, Statuses
from isthmus.drivers.device.noop import NoopDeviceDriver

__all__ = ["AgentContext", "DeviceDriver", "NoopDeviceDriver", "RouterState", "Statuses"]
