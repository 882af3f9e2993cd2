"""Service drivers: the server half of a VPN provider."""

from isthmus.drivers.service.base import Change, DriverServer, ServiceDriver
from isthmus.drivers.service.ipsec import IPsecServiceDriver

__all__ = ["Change", "DriverServer", "IPsecServiceDriver", "ServiceDriver"]
