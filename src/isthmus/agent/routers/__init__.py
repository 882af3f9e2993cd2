"""The agent-side data plane of routers: namespaces, veths, addresses, routes, NAT.

``RouterBuilder`` (``builder.py``) is the public surface: ``sync(RouterNetwork) ->
RouterReport``, ``remove(router_id)``, ``cleanup(keep)``, ``calls.counts``. The
other modules are its parts, one concept each: ``names`` (what things are called),
``desired`` (payload -> wanted state), ``observe`` (``ip -j`` & co. -> current
state), ``firewall`` (NAT rules), ``plan`` (the difference as privileged calls),
``calls`` (counted privileged calls), ``options`` (``[vpnagent]`` options).
docs/routers.md describes the model.
"""

from isthmus.agent.routers.builder import RouterBuilder
from isthmus.agent.routers.calls import CallCounts
from isthmus.agent.routers.options import BadPhysicalNetworks, parse_physical_networks

__all__ = ["BadPhysicalNetworks", "CallCounts", "RouterBuilder", "parse_physical_networks"]
