"""The oslo.messaging transport: RabbitMQ at scale, in-memory for the embedded default."""

from __future__ import annotations

import copy
import importlib
import re
from typing import Any

import oslo_messaging as messaging
from oslo_config import cfg

EMBEDDED_URL = "fake://"
RECONNECT_MAX_S = 2   # Isthmus's default for [oslo_messaging_rabbit] rabbit_interval_max


def get_transport(conf: cfg.ConfigOpts, url: str | None = None) -> Any:
    """A transport for ``url``, or for ``[DEFAULT] transport_url`` of ``conf``.

    ``fake://`` is oslo.messaging's in-process transport: server and agent must
    share the one object returned here (``isthmus up`` does).
    """
    messaging.set_transport_defaults("isthmus")
    set_defaults()
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


def set_defaults() -> None:
    """Isthmus's defaults for oslo.messaging options; oslo-config-generator calls it too.

    oslo.messaging waits up to 30 s between reconnection attempts, which leaves a
    server or agent deaf for up to 30 s after the broker is back. 2 s costs one
    refused connect per connection every 2 s while the broker is down.
    """
    from oslo_messaging._drivers import impl_rabbit  # the options have no public home

    cfg.set_defaults(impl_rabbit.rabbit_opts, rabbit_interval_max=RECONNECT_MAX_S)


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
                conf.register_opt(_marked_secret(opt), group=group)
            except cfg.DuplicateOptError:
                pass


_PASSWORD_NAME = re.compile(r"password|secret", re.IGNORECASE)


def _marked_secret(opt: cfg.Opt) -> cfg.Opt:
    """``opt``, marked ``secret`` if its name says it holds a password.

    ``log_opt_values`` masks secret options only, and oslo.messaging leaves some
    unmarked (``[oslo_messaging_kafka] ssl_client_key_password``). Today only the
    Kafka driver has one, and Isthmus never loads it (it carries no RPC), so no
    driver re-registers the unmarked original (oslo.config would refuse it).
    """
    if opt.secret or not _PASSWORD_NAME.search(opt.name):
        return opt
    marked = copy.copy(opt)
    marked.secret = True
    return marked
