"""Core networking: networks, subnets, routers and their ports."""

from isthmus.network.guards import NetworkGuard
from isthmus.network.networks import Networks, Subnets
from isthmus.network.ports import Ports
from isthmus.network.routers import Routers

__all__ = ["NetworkGuard", "Networks", "Ports", "Routers", "Subnets"]
