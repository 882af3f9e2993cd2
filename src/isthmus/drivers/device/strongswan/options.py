"""The ``[strongswan]`` options, read by the strongSwan device driver and service driver.

Both drivers declare them (``options = list_opts()``), so the loader registers
them on the agent's or the server's configuration when it loads either; the
``isthmus.strongswan`` entry point in ``oslo.config.opts`` lists them for
oslo-config-generator. The defaults are stated here only.
"""

from __future__ import annotations

from oslo_config import cfg

__all__ = ["GROUP", "OPTS", "list_opts"]

GROUP = "strongswan"

OPTS = [
    cfg.BoolOpt("kernel_libipsec", default=False,
                help="Load strongSwan's kernel-libipsec plugin: ESP in userspace over a TUN "
                     "device (always UDP-encapsulated), for kernels without ESP/XFRM. Only "
                     "ESP in tunnel mode is possible then; the strongswan service driver "
                     "refuses AH and transport mode."),
    cfg.FloatOpt("one_way_after", default=10.0, min=1.0,
                 help="Seconds without an inbound packet, while packets go out through an "
                      "established tunnel, after which the connection shows the "
                      "one_way_traffic warning in isthmus:status_detail "
                      "(docs/diagnosis.md)."),
    cfg.StrOpt("rootwrap_config", default="/etc/isthmus/rootwrap.conf",
               help="rootwrap.conf of the privileged helper that starts and stops charon "
                    "(filters in etc/isthmus/rootwrap.d/strongswan.filters)."),
]


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """``[(group, options)]``, the shape drivers' ``options`` and oslo-config-generator take."""
    return [(GROUP, OPTS)]
