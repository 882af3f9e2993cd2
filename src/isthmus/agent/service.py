"""Building an agent from configuration (``isthmus agent`` and ``isthmus up``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oslo_config import cfg
from prometheus_client import CollectorRegistry

from isthmus import config
from isthmus.agent.agent import VPNAgent
from isthmus.agent.metrics import BadMetricsBind, parse_bind
from isthmus.drivers.device.base import AgentContext
from isthmus.lifecycle import StartupError

if TYPE_CHECKING:
    from isthmus.agent.routers import RouterBuilder


def build_agent(conf: cfg.ConfigOpts, transport: Any,
                registry: CollectorRegistry | None = None) -> VPNAgent:
    """An agent with the device drivers of ``[vpnagent] vpn_device_driver`` (loaded, checked).

    With a ``registry`` (``isthmus up``: the server's) its metrics join it and
    ``[vpnagent] metrics_bind`` is ignored; without, it serves its own there, if set.
    """
    from isthmus.drivers.loader import build_driver

    origin = config.option_origin(conf, "vpnagent", "vpn_device_driver")
    drivers = [build_driver(spec, "device", AgentContext(host=conf.host, conf=conf),
                            origin=origin)
               for spec in conf.vpnagent.vpn_device_driver]
    opts = conf.vpnagent
    try:
        metrics_bind = None if registry is not None else parse_bind(opts.metrics_bind)
    except BadMetricsBind as err:
        where = config.option_origin(conf, "vpnagent", "metrics_bind")
        raise StartupError(f"{where}: {err}") from None
    return VPNAgent(conf.host, transport, drivers, workers=opts.workers,
                    resync_interval_s=opts.resync_interval,
                    status_interval_s=opts.status_check_interval,
                    report_interval_s=opts.report_interval, rpc_timeout_s=opts.rpc_timeout,
                    routers=build_router_builder(conf), registry=registry,
                    metrics_bind=metrics_bind)


def build_router_builder(conf: cfg.ConfigOpts) -> RouterBuilder | None:
    """The builder of this agent's routers, or None without ``[vpnagent] physical_networks``
    (then routers are the host's own stack or an existing namespace: docs/routers.md)."""
    from isthmus.agent.routers import BadPhysicalNetworks, RouterBuilder, parse_physical_networks
    from isthmus.privileged import Client

    try:
        physical_networks = parse_physical_networks(conf.vpnagent.physical_networks)
    except BadPhysicalNetworks as err:
        where = config.option_origin(conf, "vpnagent", "physical_networks")
        raise StartupError(f"{where}: {err}") from None
    if not physical_networks:
        return None
    return RouterBuilder(Client(config_path=conf.vpnagent.rootwrap_config), physical_networks,
                         namespace_prefix=conf.vpnagent.router_namespace_prefix)
