"""The unit of work behind every API call: one transaction, then the driver seam.

:class:`Services` wires the collections together (networking first, VPN on
top), runs each operation in its own transaction, and hands committed changes
to the :class:`~isthmus.vpn.ChangeHooks`. The API layer only parses HTTP and
calls these methods.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, TypeVar
from typing import Collection as Collection_

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from isthmus import events
from isthmus.context import RequestContext
from isthmus.db import Database
from isthmus.db.collection import Collection, Filters, SortKeys
from isthmus.db.retry import RetryRequest, lost_race
from isthmus.exceptions import Conflict, ServiceUnavailable
from isthmus.network import Networks, Ports, Routers, Subnets
from isthmus.vpn import desired_state
from isthmus.vpn.agents import Agents
from isthmus.vpn import (ChangeHooks, EndpointGroups, IKEPolicies, IPsecPolicies, NoHooks,
                         SiteConnections, VPNNetworkGuard, VPNServices)

if TYPE_CHECKING:
    from isthmus.rpc.payloads import Connection as ConnectionState

LOG = logging.getLogger(__name__)

T = TypeVar("T")

READ_ONLY = frozenset({"ports", "agents", "events"})


def first_line(error: BaseException) -> str:
    """A database error without its detail lines: PostgreSQL's DETAIL can quote a whole row
    ("Failing row contains (..., psk, ...)")."""
    return str(error).partition("\n")[0]


class Services:
    """Every collection by plural name, with transactions and change hooks. Every change
    is recorded in the event history (:mod:`isthmus.events`) in its own transaction."""

    def __init__(self, db: Database,
                 hooks_for: Callable[["Services"], ChangeHooks] | None = None, *,
                 agents: Agents | None = None, default_provider: str | None = None) -> None:
        """``hooks_for(services)`` builds the change hooks, last: the service drivers
        behind them read objects through these services (:meth:`lookup`)."""
        self.db = db
        self.networks = Networks([VPNNetworkGuard()])
        self.subnets = Subnets(self.networks)
        self.ports = Ports()
        self.routers = Routers(self.networks, self.subnets, self.ports)
        self.ikepolicies = IKEPolicies()
        self.ipsecpolicies = IPsecPolicies()
        self.vpnservices = VPNServices(self.routers, default_provider)
        self.endpoint_groups = EndpointGroups(self.subnets)
        self.site_connections = SiteConnections(self.vpnservices, self.ikepolicies,
                                                self.ipsecpolicies, self.endpoint_groups,
                                                self.subnets)
        self.agents = agents or Agents()
        self.events = events.Events()
        self.collections: dict[str, Collection] = {
            c.resource.plural: c for c in (
                self.networks, self.subnets, self.ports, self.routers, self.ikepolicies,
                self.ipsecpolicies, self.vpnservices, self.endpoint_groups,
                self.site_connections, self.agents, self.events)}
        self.hooks: ChangeHooks = hooks_for(self) if hooks_for is not None else NoHooks()

    def lookup(self, plural: str, id_: str,
               conn: Connection | None = None) -> dict[str, Any] | None:
        """Any object by id, as an admin sees it (``None`` if gone); for drivers."""
        collection = self.collections[plural]
        if conn is None:
            return self._read(lambda own: self.lookup(plural, id_, own))
        row = collection.find_row(conn, None, id_)
        return None if row is None else collection.show_row(conn, row)

    def _read(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one read transaction (run again once if its connection was dead)."""
        with self._database_errors():
            return self.db.read_retrying(work)

    def _write(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one write transaction, run again while it loses races to others."""
        with self._database_errors():
            return self.db.write_retrying(work)

    @contextlib.contextmanager
    def _database_errors(self) -> Iterator[None]:
        """Database errors as API errors: lost races are 409s, an outage a 503."""
        try:
            yield
        except (RetryRequest, sa_exc.DBAPIError) as err:
            if isinstance(err, (RetryRequest, sa_exc.IntegrityError)) or lost_race(err):
                # A concurrent change won a race past our checks (and every retry);
                # the constraints held.
                LOG.info("Concurrent change refused: %s", first_line(getattr(err, "orig", err)))
                raise Conflict(msg="a concurrent change conflicts with this request; "
                                   "retry it") from None
            if isinstance(err, sa_exc.OperationalError):
                LOG.error("Database unavailable: %s", first_line(err.orig))
                raise ServiceUnavailable(
                    message="The database is unavailable; retry later.") from None
            raise

    # -- reads ------------------------------------------------------------
    def list(self, ctx: RequestContext, plural: str, filters: Filters | None = None,
             attrs: Collection_[str] | None = None) -> list[dict[str, Any]]:
        """Every object ``ctx`` may see that passes ``filters`` on plain columns; only
        the attributes ``attrs`` (None: all), read from only their columns."""
        return self._read(lambda conn: self.collections[plural].list(conn, ctx, filters,
                                                                     attrs))

    def list_page(self, ctx: RequestContext, plural: str, filters: Filters,
                  tag_filters: Mapping[str, Iterable[str]], sort: SortKeys,
                  limit: int | None, marker: str | None, reverse: bool,
                  accept: Callable[[dict[str, Any]], dict[str, Any] | None],
                  attrs: Collection_[str] | None = None
                  ) -> tuple[list[dict[str, Any]], bool]:
        """One page filtered, sorted and paged in SQL (see :meth:`Collection.page`)."""
        return self._read(lambda conn: self.collections[plural].page(
            conn, ctx, filters, tag_filters, sort, limit, marker, reverse, accept, attrs))

    def get(self, ctx: RequestContext, plural: str, id_: str) -> dict[str, Any]:
        """One object as ``ctx`` may see it, 404 otherwise."""
        return self._read(lambda conn: self.collections[plural].get(conn, ctx, id_))

    def connection_state(self, connection_id: str) -> ConnectionState | None:
        """A site connection's desired state as its agent gets it (None if gone); the
        caller checked that its user may see the connection."""
        return self._read(lambda conn: desired_state.connection_state(conn, connection_id))

    def latest_event_id(self) -> int:
        """The id of the newest event in the history (0 if none): where a stream that
        resumes from nothing starts."""
        return self._read(self.events.latest_id)

    # -- writes -----------------------------------------------------------
    def create(self, ctx: RequestContext, plural: str,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Create from a parsed body in one transaction, after the change hooks agreed; the hooks
        hear of it after the commit."""
        collection = self.collections[plural]

        def work(conn: Connection) -> dict[str, Any]:
            self.hooks.validate(conn, ctx, plural, "create", body, None)
            new = collection.create(conn, ctx, body)  # type: ignore[attr-defined]
            events.record_api(conn, ctx, collection.resource, "create", new)
            return new
        new = self._write(work)
        LOG.info("Created %s %s", collection.resource.singular, new["id"])
        self.hooks.changed(ctx, plural, "create", new, None)
        return new

    def update(self, ctx: RequestContext, plural: str, id_: str,
               body: Mapping[str, Any],
               authorize: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Update as :meth:`create` creates: hooks validate on the current object, hear after
        the commit. ``authorize(current object)`` raises if the caller may not: it runs in
        the same transaction, first (the API's policy check, without a read of its own)."""
        collection = self.collections[plural]

        def work(conn: Connection) -> tuple[dict[str, Any], dict[str, Any]]:
            old = collection.show_row(conn, collection.lock_row(conn, ctx, id_))
            if authorize is not None:
                authorize(old)
            self.hooks.validate(conn, ctx, plural, "update", body, old)
            new = collection.update(conn, ctx, id_, body)  # type: ignore[attr-defined]
            events.record_api(conn, ctx, collection.resource, "update", new,
                              events.changed_names(collection.resource, old, new, body))
            return old, new
        old, new = self._write(work)
        LOG.info("Updated %s %s: %s", collection.resource.singular, id_, sorted(body))
        self.hooks.changed(ctx, plural, "update", new, old)
        return new

    def delete(self, ctx: RequestContext, plural: str, id_: str,
               authorize: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Delete as :meth:`create` creates: hooks validate first, hear after commit;
        ``authorize`` as for :meth:`update`."""
        collection = self.collections[plural]

        def work(conn: Connection) -> dict[str, Any]:
            old = collection.show_row(conn, collection.lock_row(conn, ctx, id_))
            if authorize is not None:
                authorize(old)
            self.hooks.validate(conn, ctx, plural, "delete", {}, old)
            collection.delete(conn, ctx, id_)  # type: ignore[attr-defined]
            events.record_api(conn, ctx, collection.resource, "delete", old)
            return old
        old = self._write(work)
        LOG.info("Deleted %s %s", collection.resource.singular, id_)
        self.hooks.changed(ctx, plural, "delete", None, old)

    def router_interface(self, ctx: RequestContext, router_id: str, action: str,
                         body: Any) -> dict[str, Any]:
        """``add`` or ``remove`` an interface; routers own the rules."""
        change = self.routers.add_interface if action == "add" else \
            self.routers.remove_interface
        def work(conn: Connection) -> dict[str, Any]:
            info = change(conn, ctx, router_id, body)
            router = self.routers.get_row(conn, None, router_id)._mapping
            events.record_api(conn, ctx, self.routers.resource, f"{action}_router_interface",
                              router)
            return info
        info = self._write(work)
        LOG.info("Router %s: %s interface on subnet %s", router_id, action, info["subnet_id"])
        self.hooks.changed(ctx, "routers", f"{action}_router_interface", info, None)
        return info

    def router_routes(self, ctx: RequestContext, router_id: str, action: str,
                      routes: list[dict[str, str]]) -> dict[str, Any]:
        """``add`` or ``remove`` extra routes of a router, atomically."""
        def work(conn: Connection) -> tuple[dict[str, Any], dict[str, Any]]:
            old = self.routers.get(conn, ctx, router_id)
            new = self.routers.change_routes(conn, ctx, router_id, action, routes)
            events.record_api(conn, ctx, self.routers.resource, f"{action}_extraroutes", new,
                              events.changed_names(self.routers.resource, old, new, ["routes"]))
            return old, new
        old, new = self._write(work)
        LOG.info("Router %s: %s %d extra routes", router_id, action, len(routes))
        self.hooks.changed(ctx, "routers", "update", new, old)
        return new

    # -- tags (standard-attr-tag) -------------------------------------------
    def tags(self, ctx: RequestContext, plural: str, id_: str) -> list[str]:
        """The tags of one object ``ctx`` may see."""
        collection = self.collections[plural]
        def work(conn: Connection) -> list[str]:
            collection.get_row(conn, ctx, id_)
            return collection.tags(conn, id_)
        return self._read(work)

    def change_tags(self, ctx: RequestContext, plural: str, id_: str,
                    change: Callable[[list[str]], list[str]]) -> list[str]:
        """Set an object's tags to ``change(current tags)``, in one transaction; a change
        is a new revision of the object."""
        collection = self.collections[plural]

        def work(conn: Connection) -> list[str]:
            collection.get_row(conn, ctx, id_, lock=True)
            return collection.set_tags(conn, id_, change(collection.tags(conn, id_)))
        tags = self._write(work)
        LOG.info("Tags of %s %s: %d", collection.resource.singular, id_, len(tags))
        return tags
