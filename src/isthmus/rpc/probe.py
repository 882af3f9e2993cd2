"""Is the message bus reachable? A fresh AMQP login to each RabbitMQ host of the URL."""

from __future__ import annotations

from typing import Any

CONNECT_TIMEOUT_S = 3


def probe(conf: Any) -> str | None:
    """None if some host of ``[DEFAULT] transport_url`` accepts a login.

    Otherwise why not, in one line naming host and port but never the user's
    password. ``fake://`` (the in-process bus of ``isthmus up``) is always reachable.
    """
    import kombu
    import oslo_messaging as messaging

    parsed = messaging.TransportURL.parse(conf)
    if parsed.transport in (None, "fake"):
        return None
    reasons = []
    # No host in the URL: oslo.messaging connects to localhost:5672, and so does this.
    for host in parsed.hosts or [messaging.TransportHost()]:
        connection = kombu.Connection(
            hostname=host.hostname or "localhost", port=host.port or 5672,
            userid=host.username or "guest", password=host.password or "guest",
            virtual_host=parsed.virtual_host or "/", connect_timeout=CONNECT_TIMEOUT_S,
            ssl=bool(getattr(conf.oslo_messaging_rabbit, "ssl", False)))
        try:
            connection.connect()
            return None
        except Exception as err:   # refused, timed out, login denied: each is a reason
            text = str(err).replace(host.password, "***") if host.password else str(err)
            reasons.append(f"{host.hostname or 'localhost'}:{host.port or 5672}: {text}")
        finally:
            connection.release()
    return "; ".join(reasons)
