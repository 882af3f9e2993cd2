"""The VPN domain: policies, services, endpoint groups, site connections."""

from isthmus.vpn.endpoint_groups import EndpointGroups
from isthmus.vpn.guard import VPNNetworkGuard
from isthmus.vpn.hooks import ChangeHooks, NoHooks
from isthmus.vpn.policies import IKEPolicies, IPsecPolicies
from isthmus.vpn.site_connections import SiteConnections
from isthmus.vpn.vpnservices import VPNServices

__all__ = ["ChangeHooks", "EndpointGroups", "IKEPolicies", "IPsecPolicies", "NoHooks",
           "SiteConnections", "VPNNetworkGuard", "VPNServices"]
