"""The oslo.messaging transport: RabbitMQ at scale, in-memory for the embedded default."""

from __future__ import annotations

import importlib
from typing import Any

import oslo_messaging as messaging
from oslo_config import cfg

EMBEDDED_URL = "fake://"


def get_transport(conf: cfg.ConfigOpts, url: str | None = None) -> Any:
    """A transport for ``url``, or for ``[DEFAULT] transport_url`` of ``conf``.

    ``fake://`` is oslo.messaging's in-process transport: server and agent must
    share the one object returned here (``isthmus up`` does).
    """
    messaging.set_transport_defaults("isthmus")
    register_opts(conf)
    try:
        return messaging.get_rpc_transport(conf, url=url)
    except (messaging.InvalidTransportURL, messaging.DriverLoadFailure):
        from isthmus.config import option_origin
        from isthmus.lifecycle import StartupError

        # The URL itself is not shown: it holds the broker password.
        scheme = (url or conf.transport_url or "").partition(":")[0]
        raise StartupError(
            f"{option_origin(conf, 'DEFAULT', 'transport_url')}: no message bus driver for "
            f"the scheme '{scheme}' (expected rabbit://USER:PASSWORD@HOST:5672/ for RabbitMQ)"
        ) from None


def register_opts(conf: cfg.ConfigOpts) -> None:
    """All of oslo.messaging's options, on ``conf``.

    oslo.messaging registers some groups (tracing, metrics) on the global CONF only,
    yet reads them from the conf it is given; Isthmus uses its own ConfigOpts.
    """
    from oslo_messaging import opts

    groups = list(opts.list_opts())
    # Not in list_opts(): these register on the global CONF when imported.
    for module, name in (("oslo_messaging._tracing.client", "oslo_messaging_tracing"),
                         ("oslo_messaging._metrics.client", "oslo_messaging_metrics")):
        try:
            groups.append((name, getattr(importlib.import_module(module), name)))
        except (ImportError, AttributeError):
            pass
    for group, options in groups:
        for opt in options:
            try:
                conf.register_opt(opt, group=group)
            except cfg.DuplicateOptError:
                pass
