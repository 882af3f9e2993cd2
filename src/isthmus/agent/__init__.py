"""The VPN agent: reconciles the desired state of its routers onto devices."""

from isthmus.agent.agent import VPNAgent
from isthmus.agent.workqueue import RouterWorkQueue

__all__ = ["RouterWorkQueue", "VPNAgent"]
