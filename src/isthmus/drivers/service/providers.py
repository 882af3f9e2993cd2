"""The configured service providers, and the server half of the driver seam.

``[service_providers] service_provider = VPN:<name>:<driver>[:default]`` is parsed
with Neutron's rules; every driver is loaded at start (a driver that cannot
load stops the server with the loader's message). :class:`Providers` is the
:class:`~isthmus.vpn.ChangeHooks` the API calls: it routes each change to the
driver of the VPN service's provider, and offers drivers ``notify_router``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy.engine import Connection

from isthmus.context import RequestContext
from isthmus.drivers.service.base import Change, ServiceDriver
from isthmus.exceptions import BadRequest

LOG = logging.getLogger(__name__)

SERVICE_TYPE = "VPN"
ROUTED = frozenset({"vpnservices", "ipsec_site_connections"})


class ProviderConfigError(ValueError):
    """A ``service_provider`` line that cannot be used; the text says where and why."""


class UnknownProvider(BadRequest):
    message = "Provider '%(provider)s' is not configured; configured providers: %(known)s"


@dataclass(frozen=True)
class ProviderSpec:
    """One ``service_provider = VPN:<name>:<driver>[:default]`` line, parsed."""

    name: str
    driver: str
    default: bool


def parse_providers(lines: Sequence[str], origin: str) -> list[ProviderSpec]:
    """Neutron's rules: ``VPN:name:driver[:default]``, names unique, at most one default."""
    specs: list[ProviderSpec] = []
    for line in lines:
        parts = line.split(":")
        # A dotted path may use "module:Class", so join what sits between name and flag.
        default = parts[-1] == "default" and len(parts) >= 4
        body = parts[:-1] if default or (len(parts) >= 4 and parts[-1] == "") else parts
        if len(body) < 3 or body[0] != SERVICE_TYPE or not body[1] or not ":".join(body[2:]):
            raise ProviderConfigError(
                f"{origin}: '{line}' is not VPN:<name>:<driver>[:default] "
                "(e.g. VPN:ipsec:ipsec:default)")
        name, driver = body[1].lower(), ":".join(body[2:])
        if len(name) > 255:
            raise ProviderConfigError(f"{origin}: provider name '{name}' is over 255 characters")
        if any(s.name == name for s in specs):
            raise ProviderConfigError(f"{origin}: provider '{name}' is configured twice")
        specs.append(ProviderSpec(name, driver, default))
    if not specs:
        raise ProviderConfigError(f"{origin}: no VPN provider is configured; add "
                                  "service_provider = VPN:ipsec:ipsec:default")
    defaults = [s.name for s in specs if s.default]
    if len(defaults) > 1:
        raise ProviderConfigError(f"{origin}: several default providers ({', '.join(defaults)}); "
                                  "mark only one with :default")
    if not defaults:
        raise ProviderConfigError(f"{origin}: no default provider; append :default to one of "
                                  f"{', '.join(s.name for s in specs)}")
    return specs


def default_provider(specs: Sequence[ProviderSpec]) -> str:
    """The name of the provider marked ``:default`` (:func:`parse_providers` ensures one)."""
    return next(s.name for s in specs if s.default)


class Providers:
    """Service drivers by provider name; the API's change hooks; the drivers' server."""

    def __init__(self, specs: Sequence[ProviderSpec],
                 build: Callable[[str, "Providers"], ServiceDriver],
                 lookup: Callable[[str, str, Connection | None], Mapping[str, Any] | None],
                 notify_router: Callable[[str], None], conf: Any = None) -> None:
        self.conf = conf
        self.default = default_provider(specs)
        self._lookup = lookup
        self._notify_router = notify_router
        self.drivers: dict[str, ServiceDriver] = {}
        for spec in specs:
            driver = build(spec.driver, self)
            driver.name = spec.name
            self.drivers[spec.name] = driver
            LOG.info("VPN provider %s: %s%s", spec.name, spec.driver,
                     " (default)" if spec.default else "")

    def describe(self) -> list[dict[str, Any]]:
        """``GET /v2.0/service-providers``."""
        return [{"service_type": SERVICE_TYPE, "name": name, "default": name == self.default}
                for name in self.drivers]

    # -- DriverServer -----------------------------------------------------
    def notify_router(self, router_id: str) -> None:
        """Tell the agent serving ``router_id`` to sync it (for service drivers)."""
        self._notify_router(router_id)

    # -- ChangeHooks ------------------------------------------------------
    def _route(self, collection: str, obj: Mapping[str, Any] | None,
               get: Callable[[str, str], Mapping[str, Any] | None]) -> tuple[
            list[ServiceDriver], str | None]:
        """The drivers a change goes to, and the router it affects."""
        if obj is None or collection not in ROUTED:
            return list(self.drivers.values()), None
        if collection == "vpnservices":
            service: Mapping[str, Any] | None = obj
        else:
            service = get("vpnservices", obj["vpnservice_id"])
        if service is None:
            return list(self.drivers.values()), None
        provider = service.get("provider") or self.default
        if provider not in self.drivers:
            raise UnknownProvider(provider=provider, known=", ".join(sorted(self.drivers)))
        return [self.drivers[provider]], service.get("router_id")

    def validate(self, conn: Connection, ctx: RequestContext, collection: str, action: str,
                 request: Mapping[str, Any], current: Mapping[str, Any] | None) -> None:
        """Ask the service driver of the object's provider whether the change may happen."""
        def get(coll: str, id_: str) -> Mapping[str, Any] | None:
            return self._lookup(coll, id_, conn)

        basis = {**(current or {}), **request}
        drivers, router_id = self._route(collection, basis if basis else None, get)
        change = Change(ctx, collection, action, request, current, router_id,
                        lookup=lambda c, i: get(c, i) or {})
        for driver in drivers:
            driver.validate(change)

    def changed(self, ctx: RequestContext, collection: str, action: str,
                new: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> None:
        """Tell the service driver of the object's provider that a change was committed."""
        def get(coll: str, id_: str) -> Mapping[str, Any] | None:
            return self._lookup(coll, id_, None)

        obj = new or old
        # Ids only: the object itself may carry a secret (a connection's PSK).
        obj_id = (obj or {}).get("id", "-")
        try:
            drivers, router_id = self._route(collection, obj, get)
        except UnknownProvider as err:
            LOG.error("%s %s (%s) reached no driver: %s", collection, obj_id, action, err.msg)
            return
        change = Change(ctx, collection, action, new, old, router_id,
                        lookup=lambda c, i: get(c, i) or {})
        for driver in drivers:
            try:
                driver.changed(change)
            except Exception:  # committed already: a driver error must not turn into a 500
                LOG.exception("Provider %s failed to handle %s of %s %s", driver.name, action,
                              collection, obj_id)
