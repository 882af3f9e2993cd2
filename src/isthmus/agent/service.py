"""Building an agent from configuration (``isthmus agent`` and ``isthmus up``)."""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from isthmus import config
from isthmus.agent.agent import VPNAgent
from isthmus.drivers.device.base import AgentContext


def build_agent(conf: cfg.ConfigOpts, transport: Any) -> VPNAgent:
    """An agent with the device drivers of ``[vpnagent] vpn_device_driver`` (loaded, checked)."""
    from isthmus.drivers.loader import build_driver

    origin = config.option_origin(conf, "vpnagent", "vpn_device_driver")
    drivers = [build_driver(spec, "device", AgentContext(host=conf.host, conf=conf),
                            origin=origin)
               for spec in conf.vpnagent.vpn_device_driver]
    opts = conf.vpnagent
    return VPNAgent(conf.host, transport, drivers, workers=opts.workers,
                    resync_interval_s=opts.resync_interval,
                    status_interval_s=opts.status_check_interval,
                    report_interval_s=opts.report_interval, rpc_timeout_s=opts.rpc_timeout)
