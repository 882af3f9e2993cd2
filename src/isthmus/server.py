"""Serving the API: build the app from configuration and run it under waitress."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from oslo_config import cfg

from isthmus import config
from isthmus.api import create_app, with_keystone
from isthmus.db import Database, upgrade
from isthmus.services import Services

LOG = logging.getLogger(__name__)


def setup_logging(debug: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def build(conf: cfg.ConfigOpts, migrate: bool = False) -> tuple[Any, Services]:
    """The WSGI app and its services for ``conf``."""
    url = config.database_url(conf)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    if migrate:
        upgrade(url)
    services = Services(Database(url))
    app = create_app(services, auth_strategy=conf.auth_strategy,
                     pagination_max_limit=conf.pagination_max_limit)
    if conf.auth_strategy == "keystone":
        return with_keystone(app, conf), services
    return app, services


def serve(app: Any, host: str, port: int, threads: int) -> None:
    import waitress

    LOG.info("Isthmus API listening on http://%s:%d/", host, port)
    waitress.serve(app, host=host, port=port, threads=threads, ident="isthmus",
                   clear_untrusted_proxy_headers=True, channel_timeout=120)
