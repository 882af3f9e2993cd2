"""Configuration options (oslo.config), Neutron-style INI files.

``list_opts`` feeds oslo-config-generator, which writes ``etc/isthmus.conf.sample``.
"""

from __future__ import annotations

from oslo_config import cfg

DEFAULT_OPTS = [
    cfg.HostAddressOpt("bind_host", default="0.0.0.0",
                       help="Address the API server listens on."),
    cfg.PortOpt("bind_port", default=9696, help="Port the API server listens on."),
    cfg.StrOpt("auth_strategy", default="noauth", choices=[
        ("noauth", "identity from the X-Project-Id, X-User-Id and X-Roles headers; a request "
                   "without a project header acts as admin in the default project"),
        ("keystone", "tokens validated by keystonemiddleware ([keystone_authtoken]), then "
                     "the same headers")],
               help="How API callers are identified."),
    cfg.IntOpt("api_threads", default=8, min=1,
               help="Worker threads of the API server (one process)."),
    cfg.IntOpt("pagination_max_limit", default=-1,
               help="Largest page a list returns; -1 means no limit."),
    cfg.StrOpt("state_path", default="/var/lib/isthmus",
               help="Where Isthmus keeps its state (the embedded SQLite database)."),
    cfg.BoolOpt("debug", default=False, help="Log at DEBUG level."),
]

DATABASE_OPTS = [
    cfg.StrOpt("connection", secret=True,
               help="SQLAlchemy URL of the database, e.g. "
                    "postgresql+psycopg://isthmus@127.0.0.1/isthmus or "
                    "mysql+pymysql://root@127.0.0.1/isthmus. Default: SQLite in state_path."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(DEFAULT_OPTS)
    conf.register_opts(DATABASE_OPTS, group="database")


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    return [(None, DEFAULT_OPTS), ("database", DATABASE_OPTS)]


def database_url(conf: cfg.ConfigOpts) -> str:
    return conf.database.connection or f"sqlite:///{conf.state_path}/isthmus.db"


def load(args: list[str], config_files: list[str] | None = None) -> cfg.ConfigOpts:
    """A fresh ConfigOpts (not the global one), parsed from ``config_files``."""
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(args=args, project="isthmus", default_config_files=config_files or [])
    return conf
