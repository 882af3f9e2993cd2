"""Isthmus: a Neutron-VPNaaS-compatible VPN-as-a-Service control plane."""

__version__ = "0.1.0"
