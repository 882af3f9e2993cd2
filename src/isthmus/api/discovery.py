"""Version and extension documents that clients read before anything else.

openstacksdk asks ``GET /`` for the versions document and ``GET
/v2.0/extensions`` to learn that VPNaaS is there.
"""

from __future__ import annotations

from typing import Any

EXTENSIONS: list[dict[str, Any]] = [
    {"alias": "vpnaas", "name": "VPN service", "description": "Extension for VPN service",
     "updated": "2013-05-29T10:00:00-00:00"},
    {"alias": "vpn-endpoint-groups", "name": "VPN Endpoint Groups",
     "description": "VPN endpoint groups support", "updated": "2015-08-04T10:00:00-00:00"},
    {"alias": "vpn-aes-ccm-gcm", "name": "VPN support for AES CCM and GCM modes",
     "description": "Add AES CCM and GCM modes to the encryption algorithms of IKE and IPsec "
                    "policies", "updated": "2023-10-24T10:00:00-00:00"},
    {"alias": "vpn-aes-ctr", "name": "VPN support for AES CTR mode",
     "description": "Add AES CTR mode to the encryption algorithms of IKE and IPsec policies",
     "updated": "2024-01-09T09:00:00-00:00"},
    {"alias": "vpn-no-sha1-3des", "name": "VPN without SHA1 and 3DES",
     "description": "Remove the sha1 auth algorithm and the 3des encryption algorithm; the "
                    "default auth algorithm is sha256", "updated": "2025-03-30T10:00:00-00:00"},
    {"alias": "router", "name": "Neutron L3 Router",
     "description": "Router abstraction for basic L3 forwarding between L2 Neutron networks "
                    "and access to external networks via a NAT gateway.",
     "updated": "2012-07-20T10:00:00-00:00"},
    {"alias": "external-net", "name": "Neutron external network",
     "description": "Adds external network attribute to network resource.",
     "updated": "2013-01-14T10:00:00-00:00"},
    {"alias": "provider", "name": "Provider Network",
     "description": "Expose mapping of virtual networks to physical networks",
     "updated": "2012-09-07T10:00:00-00:00"},
    {"alias": "service-type", "name": "Neutron Service Type Management",
     "description": "API for retrieving service providers for Neutron advanced services",
     "updated": "2013-01-20T00:00:00-00:00"},
    {"alias": "extraroute", "name": "Neutron Extra Route",
     "description": "Extra routes configuration for L3 router",
     "updated": "2013-02-01T10:00:00-00:00"},
    {"alias": "extraroute-atomic", "name": "Atomically add/remove extra routes",
     "description": "Edit extra routes of a router on server side by atomically adding/"
                    "removing extra routes", "updated": "2019-07-10T00:00:00+00:00"},
    {"alias": "standard-attr-tag",
     "name": "Tag support for resources with standard attribute: subnet, network, router",
     "description": "Enables to set tag on resources with standard attribute.",
     "updated": "2017-01-01T00:00:00-00:00"},
    {"alias": "standard-attr-timestamp", "name": "Resource timestamps",
     "description": "Adds created_at and updated_at fields to all Neutron resources that "
                    "have Neutron standard attributes.", "updated": "2016-09-12T10:00:00-00:00"},
    {"alias": "standard-attr-revisions", "name": "Resource revision numbers",
     "description": "This extension will display the revision number of neutron resources.",
     "updated": "2016-04-11T10:00:00-00:00"},
    {"alias": "isthmus-router-placement", "name": "Isthmus router placement",
     "description": "Admin-only router attributes isthmus:agent_host (the agent host that "
                    "serves the router) and isthmus:namespace (its network namespace)",
     "updated": "2026-11-23T00:00:00-00:00"},
    {"alias": "isthmus-peer-config", "name": "Isthmus peer configurations",
     "description": "GET /v2.0/vpn/ipsec-site-connections/{id}/peer-config?format=F: the "
                    "configuration of the device at the other end of a site connection "
                    "(strongswan, libreswan, generic...); without format, the formats",
     "updated": "2026-12-02T00:00:00-00:00"},
]
for _ext in EXTENSIONS:
    _ext["links"] = []
BY_ALIAS = {ext["alias"]: ext for ext in EXTENSIONS}

CORE_RESOURCES = (("network", "networks"), ("subnet", "subnets"), ("port", "ports"),
                  ("router", "routers"))


def versions(base_url: str) -> dict[str, Any]:
    """Neutron's ``GET /`` answer, links on ``base_url``."""
    return {"versions": [{"id": "v2.0", "status": "CURRENT",
                          "links": [{"rel": "self", "href": f"{base_url}/v2.0/"}]}]}


def resources(base_url: str) -> dict[str, Any]:
    """Neutron's ``GET /v2.0/`` answer, links on ``base_url``."""
    return {"resources": [
        {"name": name, "collection": collection,
         "links": [{"rel": "self", "href": f"{base_url}/v2.0/{collection}"}]}
        for name, collection in CORE_RESOURCES]}
