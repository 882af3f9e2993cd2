"""RouterBuilder: makes a router's network real on this host, through the privileged helper.

``sync(router)`` reads what exists, plans the difference (``plan.py``) and applies
only that, then reports the router's and each port's status; ``remove(router_id)``
and ``cleanup(keep)`` delete managed namespaces with their veths (whose host ends
go with them), macvlans and NAT rules. ``calls.counts`` says how many privileged reads and
writes that took. Modes: ``managed`` is built; ``external`` is only checked to
exist; ``host`` needs nothing.
"""

from __future__ import annotations

import logging
import uuid
from typing import Iterable

from isthmus.agent.routers import names, observe
from isthmus.agent.routers.calls import PrivilegedCalls
from isthmus.agent.routers.desired import DesiredRouter, desired_router
from isthmus.agent.routers.plan import Plan, plan_router
from isthmus.privileged import Client, PrivilegedError
from isthmus.rpc.payloads import PortReport, ReportedStatus, RouterNetwork, RouterReport

LOG = logging.getLogger(__name__)


class RouterBuilder:
    """Builds, adopts and deletes routers' namespaces, devices, routes and NAT rules.

    ``physical_networks`` maps a physical network to its host device, a Linux bridge
    or a plain interface (``options.parse_physical_networks``); ``namespace_prefix`` marks this agent's
    namespaces. Safe to call from several threads for different routers.
    """

    def __init__(self, client: Client, physical_networks: dict[str, str],
                 namespace_prefix: str = "isthmus-") -> None:
        self.calls = PrivilegedCalls(client)
        self.physical_networks = dict(physical_networks)
        self.namespace_prefix = names.check_prefix(namespace_prefix)

    def namespace_of(self, router_id: str) -> str:
        """The namespace a managed router with this id lives in."""
        return names.namespace_name(self.namespace_prefix, router_id)

    def sync(self, router: RouterNetwork) -> RouterReport:
        """Make ``router``'s network what it says; its report (never raises PrivilegedError)."""
        desired = desired_router(router, self.namespace_prefix, self.physical_networks)
        try:
            if desired.mode == "host":
                return _report(desired, [], {})
            if desired.mode == "external":
                return self._check_external(desired)
            return self._sync_managed(desired)
        except PrivilegedError as exc:
            LOG.warning("router %s: could not read its state: %s", desired.router_id, exc)
            return _report(desired, [f"could not read the router's state: {exc}"], {})

    def remove(self, router_id: str) -> bool:
        """Delete a managed router's namespace, veths and rules; False if it had none."""
        namespace = self.namespace_of(router_id)
        if namespace not in self.calls.list_netns():
            return False
        self._delete_namespace(namespace)
        return True

    def managed_routers(self) -> set[str]:
        """The ids of the routers this agent has a namespace for (its prefix + a UUID)."""
        found = set()
        for namespace in self.calls.list_netns():
            router_id = names.router_id_of(self.namespace_prefix, namespace)
            if router_id is not None and _is_uuid(router_id):
                found.add(router_id)
        return found

    def cleanup(self, keep: Iterable[str]) -> list[str]:
        """Delete every managed router of this agent's prefix not in ``keep``; their ids.

        A namespace is this agent's when its name is the prefix followed by a
        canonical UUID (so prefix ``isthmus-`` never claims ``isthmus-b-<uuid>``).
        """
        keep = set(keep)
        removed = []
        for namespace in sorted(self.calls.list_netns()):
            router_id = names.router_id_of(self.namespace_prefix, namespace)
            if router_id is None or not _is_uuid(router_id) or router_id in keep:
                continue
            self._delete_namespace(namespace)
            removed.append(router_id)
        return removed

    # -- managed routers ---------------------------------------------------------

    def _sync_managed(self, desired: DesiredRouter) -> RouterReport:
        ns = desired.namespace
        assert ns is not None
        observed = self._observe(ns, ns in self.calls.list_netns())
        host_links = observe.parse_links(self.calls.read(["ip", "-j", "-d", "link", "show"]))
        plan = plan_router(desired, observed, host_links)
        router_errors, failed = self._apply(ns, plan)
        if plan.steps:
            LOG.info("router %s: %d change(s) in %s%s", desired.router_id, len(plan.steps), ns,
                     f", {len(failed) + len(router_errors)} failed" if failed or router_errors else "")
        return _report(desired, router_errors + list(desired.route_errors),
                       {**plan.port_errors, **failed})

    def _observe(self, ns: str, exists: bool) -> observe.ObservedNamespace:
        if not exists:
            return observe.ObservedNamespace(exists=False)
        read = self.calls.read
        return observe.ObservedNamespace(
            exists=True,
            links=observe.parse_links(read(["ip", "-j", "-d", "-n", ns, "address", "show"])),
            routes=observe.parse_routes(read(["ip", "-j", "-n", ns, "route", "show", "table", "all",
                                              "proto", observe.ROUTE_PROTO])),
            forwarding=observe.parse_forwarding(read(
                ["ip", "netns", "exec", ns, "sysctl", "-n", *observe.SYSCTLS])),
            nat_lines=read(["ip", "netns", "exec", ns, "iptables", "-t", "nat", "-S"]).splitlines())

    def _apply(self, ns: str, plan: Plan) -> tuple[list[str], dict[str, str]]:
        """Run the plan's steps; a failed step skips the rest of its port's steps."""
        router_errors: list[str] = []
        failed: dict[str, str] = {}
        for step in plan.steps:
            if step.port_id is not None and step.port_id in failed:
                continue
            try:
                if step.netns_add:
                    self.calls.add_netns(ns)
                elif step.in_namespace:
                    self.calls.write(["ip", "netns", "exec", ns, *step.argv])
                else:
                    self.calls.write(step.argv)
            except PrivilegedError as exc:
                LOG.warning("namespace %s: %s", ns, exc)
                if step.port_id is None:
                    router_errors.append(str(exc))
                    if step.netns_add:
                        break
                else:
                    failed[step.port_id] = str(exc)
        return router_errors, failed

    def _delete_namespace(self, ns: str) -> None:
        # Delete the veths and macvlans first: host ends and the macvlans' hold on their
        # parent go at once, even if something still holds the namespace open and the
        # kernel keeps it a while.
        links = observe.parse_links(self.calls.read(["ip", "-j", "-d", "-n", ns, "link", "show"]))
        plugs = sorted(name for name, link in links.items()
                       if names.is_agent_device(name) and link.kind in ("veth", "macvlan"))
        for name in plugs:
            self.calls.write(["ip", "-n", ns, "link", "delete", name])
        self.calls.delete_netns(ns)
        LOG.info("deleted router namespace %s and its %d veth(s)/macvlan(s)", ns, len(plugs))

    # -- other modes -----------------------------------------------------------------

    def _check_external(self, desired: DesiredRouter) -> RouterReport:
        if not desired.namespace:
            return _report(desired, ["mode external needs the namespace to use; the router has none"], {})
        if desired.namespace not in self.calls.list_netns():
            return _report(desired, [
                f"namespace {desired.namespace} does not exist (mode external: it is made outside "
                "Isthmus, e.g. by Neutron's L3 agent, which has not made it on this host)"], {})
        return _report(desired, [], {})


def _report(desired: DesiredRouter, router_errors: list[str], port_errors: dict[str, str]) -> RouterReport:
    ports: dict[str, PortReport] = {}
    for port_id in desired.port_ids:
        if port_id in port_errors:
            ports[port_id] = PortReport(status="ERROR", reason=port_errors[port_id])
        elif router_errors and desired.mode != "managed":
            ports[port_id] = PortReport(status="ERROR", reason=router_errors[0])
        elif not desired.admin_state_up:
            ports[port_id] = PortReport(status="DOWN", reason="the router is administratively down")
        else:
            ports[port_id] = PortReport(status="ACTIVE", reason=None)
    reasons = router_errors + [f"port {p}: {r}" for p, r in port_errors.items()]
    status: ReportedStatus
    if reasons:
        status, reason = "ERROR", "; ".join(reasons)
    elif not desired.admin_state_up:
        status, reason = "DOWN", "administratively down"
    else:
        status, reason = "ACTIVE", None
    return RouterReport(id=desired.router_id, status=status, reason=reason, ports=ports)


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False
