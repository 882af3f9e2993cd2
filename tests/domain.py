"""The domain (networking and VPN) on a real SQLite database, driven without HTTP."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from isthmus.api.request import parse_create
from isthmus.context import RequestContext
from isthmus.db import Database
from isthmus.services import Services

ADMIN = RequestContext.admin("admin-project")
MEMBER = RequestContext("p1", roles=frozenset({"member", "reader"}))


@dataclass
class Domain:
    services: Services

    def create(self, plural: str, ctx: RequestContext = MEMBER, **body: Any) -> dict[str, Any]:
        """Create as the API would, with the API's defaults filled in."""
        resource = self.services.collections[plural].resource
        parsed = parse_create(resource, ctx, {resource.singular: body})
        return self.services.create(ctx, plural, parsed)

    def topology(self, agent_host: str = "host-a") -> dict[str, str]:
        """External network with v4 and v6 subnets, a private subnet, a router between."""
        public = self.create("networks", ADMIN, name="public", **{"router:external": True})
        public_v4 = self.create("subnets", ADMIN, network_id=public["id"], ip_version=4,
                                cidr="172.24.5.0/24")
        self.create("subnets", ADMIN, network_id=public["id"], ip_version=6,
                    cidr="2001:db8:2::/64")
        private = self.create("networks", name="private")
        subnet = self.create("subnets", network_id=private["id"], ip_version=4,
                             cidr="10.1.0.0/24")
        router = self.create("routers", name="r1", external_gateway_info={
            "network_id": public["id"]}, **{"isthmus:agent_host": agent_host,
                                            "isthmus:namespace": "ns-r1"})
        self.services.router_interface(MEMBER, router["id"], "add", {"subnet_id": subnet["id"]})
        ike = self.create("ikepolicies", name="ike")
        ipsec = self.create("ipsecpolicies", name="esp")
        return {"router": router["id"], "subnet": subnet["id"], "public_v4": public_v4["id"],
                "ike": ike["id"], "ipsec": ipsec["id"]}


@pytest.fixture
def domain(tmp_path, migrated_sqlite) -> Iterator[Domain]:
    path = tmp_path / "isthmus.db"
    shutil.copy(migrated_sqlite, path)
    db = Database(f"sqlite:///{path}")
    yield Domain(Services(db))
    db.dispose()
