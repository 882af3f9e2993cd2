"""The WSGI entry point for uWSGI, gunicorn or mod_wsgi: ``isthmus.wsgi:application``.

The configuration files come from the environment variable ``ISTHMUS_CONFIG_FILE``
(several separated by commas, read in order like repeated ``--config-file``)::

    ISTHMUS_CONFIG_FILE=/etc/isthmus/isthmus.conf \\
        gunicorn --workers 4 --threads 8 --bind 0.0.0.0:9696 isthmus.wsgi:application
    uwsgi --http-socket :9696 --processes 4 --threads 8 --lazy-apps \\
        --env ISTHMUS_CONFIG_FILE=/etc/isthmus/isthmus.conf --module isthmus.wsgi:application

The server is built on first access to ``application`` (the WSGI server's import),
in each worker process: its threads (RPC server, leader lease, casts to agents)
do not survive a fork, so build it after forking: no ``--preload`` for gunicorn,
``--lazy-apps`` for uWSGI. The background work of the deployment runs in one
process of all, whichever holds the leader lease (:mod:`isthmus.leader`), as with
``isthmus server --workers``. The parts are stopped when the process exits.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

CONFIG_ENV = "ISTHMUS_CONFIG_FILE"

_built: list[Any] = []
_building = threading.Lock()


def config_files() -> list[str]:
    """The configuration files named by ``ISTHMUS_CONFIG_FILE``; an error says what to set."""
    from isthmus.lifecycle import StartupError

    files = [f.strip() for f in os.environ.get(CONFIG_ENV, "").split(",") if f.strip()]
    if not files:
        raise StartupError(f"{CONFIG_ENV} is not set: set it to the path of isthmus.conf "
                           "(several files separated by commas)")
    return files


def build_application() -> Any:
    """Build the server from ``ISTHMUS_CONFIG_FILE`` once per process; its WSGI app."""
    with _building:
        if not _built:
            from isthmus import config, server
            from isthmus.lifecycle import setup_logging

            conf = config.load([], config_files())
            setup_logging(conf.debug)
            runtime = server.build(conf, migrate=False)
            atexit.register(runtime.stop)
            _built.append(runtime.app)
        return _built[0]


def __getattr__(name: str) -> Any:
    """``application`` is built when the WSGI server first asks for it."""
    if name == "application":
        return build_application()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
