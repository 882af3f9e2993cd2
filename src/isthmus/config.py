"""Configuration options (oslo.config), Neutron-style INI files.

``list_opts`` feeds oslo-config-generator, which writes ``etc/isthmus.conf.sample``.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Sequence

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
               help="Requests each API server process runs the application for at "
                    "once (each client connection has a thread of its own; writing an "
                    "answer, an event stream's included, does not count)."),
    cfg.IntOpt("api_workers", default=1, min=1,
               help="Processes of ``isthmus server`` sharing its listening socket (the "
                    "command line's --workers overrides this). Each has api_threads "
                    "threads and its own database pool; a worker that dies is started "
                    "again (docs/deployment.md)."),
    cfg.IntOpt("api_connection_limit", default=4096, min=1,
               help="Client connections the API server holds open at once (idle, reading a "
                    "request or being answered); beyond it new connections wait in the "
                    "listen backlog. Slow or idle clients only cost a socket each, so this "
                    "is high: a few hundred clients sending headers slowly must not lock "
                    "everyone else out. The server raises its open-files soft limit "
                    "(RLIMIT_NOFILE) to this plus 256 when the hard limit allows, and "
                    "lowers this to fit otherwise. In production also limit connections "
                    "per client in a reverse proxy (docs/api.md, Defences)."),
    cfg.IntOpt("api_idle_timeout", default=60, min=1,
               help="Seconds a client connection may stay silent (between requests, or "
                    "part way through one) before the API server closes it. Checked every "
                    "half of this, at most every 30 seconds. A client that trickles a byte "
                    "now and then is not silent: a reverse proxy's header timeout ends "
                    "those (docs/api.md, Defences)."),
    cfg.IntOpt("api_max_header_bytes", default=65536, min=4096,
               help="Largest request line plus headers, in bytes; a larger request is "
                    "refused (431) before it reaches the API. Keystone (Fernet) tokens "
                    "are a few hundred bytes."),
    cfg.IntOpt("graceful_shutdown_timeout", default=30, min=0,
               help="Seconds the API server (and ``isthmus up``) gives requests in flight to "
                    "finish after SIGTERM or SIGINT; it stops accepting connections at once. "
                    "Then RPC and the database are closed (at most 10 seconds more) and the "
                    "process exits 0."),
    cfg.IntOpt("pagination_max_limit", default=-1,
               help="Largest page a list returns; -1 means no limit."),
    cfg.StrOpt("state_path", default="/var/lib/isthmus",
               help="Where Isthmus keeps its state (the embedded SQLite database)."),
    cfg.BoolOpt("debug", default=False, help="Log at DEBUG level."),
    cfg.StrOpt("host", default=socket.gethostname(), sample_default="<hostname>",
               help="Name of this host: agents are addressed by it over RPC."),
    cfg.IntOpt("event_retention_days", default=30, min=0,
               help="Days the event history (GET /v2.0/vpn/events) keeps an event; older "
                    "ones are purged once an hour (the newest event is always kept). 0 "
                    "keeps every event forever."),
    cfg.IntOpt("event_stream_limit", default=4, min=0,
               help="Event streams (GET /v2.0/vpn/events?stream=true) served at once; "
                    "more are refused with 503. Each open stream reads the event "
                    "table once a second and keeps its connection's thread, but takes "
                    "none of the api_threads from other requests. 0 turns streams off."),
    cfg.BoolOpt("metrics_enabled", default=True,
                help="Serve Prometheus metrics at GET /metrics on the API's address "
                     "(docs/metrics.md). Like /healthcheck it needs no token (scrapers do "
                     "not speak Keystone) and carries counts, durations, statuses and "
                     "object ids, never names, addresses or secrets; set false, or block "
                     "/metrics in the reverse proxy, where even that is too much."),
    cfg.BoolOpt("dashboard_enabled", default=True,
                help="Serve the dashboard, a web page of VPN services, connections, "
                     "statuses, traffic and live events, at /dashboard/ on the API's "
                     "address (docs/dashboard.md). Its files hold no data and need no "
                     "token; the page reads the API with the credentials its user enters, "
                     "and holds one event stream (event_stream_limit) while open."),
    cfg.IntOpt("agent_down_time", default=75, min=2,
               help="Seconds without a heartbeat after which an agent is dead and the VPN "
                    "services and connections of its routers are shown DOWN (and, with "
                    "allow_automatic_router_failover, its routers move to live agents). "
                    "Keep it above twice [vpnagent] report_interval: one late heartbeat "
                    "must not declare an agent dead."),
    cfg.BoolOpt("allow_automatic_router_failover", default=True,
                help="Move the routers of an agent declared dead (no heartbeat for "
                     "agent_down_time) to live agents, as Neutron's option of the same "
                     "name does for L3 agents: the live agent with the fewest routers "
                     "among those whose physical_networks include every physical network "
                     "of the router's ports builds the router (namespace, ports, NAT, "
                     "strongSwan, tunnels). The dead agent, when it returns, removes what "
                     "it no longer serves after asking the server. Set false to keep "
                     "routers on their agent: their VPN services stay DOWN until it is back."),
    cfg.IntOpt("leader_lease_time", default=30, min=3,
               help="Seconds one server process holds the lease (a row in the database) "
                    "that makes it run the deployment's background work (dead-agent "
                    "watch, event purge) for every worker and server; renewed every "
                    "third of it. If that process dies, another takes over within this "
                    "time."),
]

SERVICE_PROVIDER_OPTS = [
    cfg.MultiStrOpt("service_provider", default=["VPN:ipsec:ipsec:default"],
                    help="VPN:<name>:<driver>[:default], repeated for several providers, one "
                         "of them the default. <driver> is a dotted path to a ServiceDriver "
                         "subclass or an entry point name in isthmus.vpn.service_drivers."),
]

AGENT_OPTS = [
    cfg.MultiStrOpt("vpn_device_driver", default=["noop"],
                    help="Device driver: a dotted path to a DeviceDriver subclass or an entry "
                         "point name in isthmus.vpn.device_drivers; repeat for several."),
    cfg.IntOpt("workers", default=8, min=1,
               help="Routers synced in parallel (work for one router is serialized)."),
    cfg.IntOpt("resync_interval", default=60, min=1,
               help="Seconds between full resyncs of every router of this agent."),
    cfg.IntOpt("status_check_interval", default=10, min=1,
               help="Seconds between status polls of the device drivers."),
    cfg.IntOpt("report_interval", default=10, min=1,
               help="Seconds between heartbeats (must be well below agent_down_time)."),
    cfg.IntOpt("rpc_timeout", default=20, min=1,
               help="Seconds an agent waits for an answer from the server."),
    # Routers (docs/routers.md): with physical networks the agent builds its routers.
    cfg.ListOpt("physical_networks", default=[], sample_default="public:br-ex,lan:br-lan",
                help="Physical network name to the host device that reaches it, as "
                     "NAME:DEVICE pairs. With at least one, the agent builds each router it "
                     "serves (namespace, gateway and interfaces plugged into the device of "
                     "their network's provider:physical_network, routes, SNAT); without, "
                     "routers are the host's own stack (host mode), or the namespace named "
                     "by isthmus:namespace (external). A Linux bridge gets a veth per port "
                     "(flat and vlan networks); a plain interface such as eth0 gets a "
                     "macvlan per port (mode bridge; flat networks only). A name not "
                     "listed here, or a missing device, puts the port and its router in "
                     "ERROR with the reason."),
    cfg.StrOpt("router_namespace_prefix", default="isthmus-",
               help="Prefix of the namespaces of built routers (<prefix><router id>). Every "
                    "namespace with this prefix is the agent's: one whose router is no "
                    "longer wanted is deleted. Give each agent on one host its own prefix."),
    cfg.StrOpt("metrics_bind", default="", sample_default="127.0.0.1:9697",
               help="HOST:PORT (IPv6: [::1]:9697) where the agent serves its Prometheus "
                    "metrics over HTTP at /metrics (docs/metrics.md): syncs, its work "
                    "queue, and each connection's status and traffic, by connection id. "
                    "Empty (the default): not served. No authentication: bind to a "
                    "management address. Ignored by ``isthmus up``, whose agent's metrics "
                    "are in the API's /metrics."),
    cfg.StrOpt("rootwrap_config", default="/etc/isthmus/rootwrap.conf",
               help="rootwrap.conf of the privileged helper that builds routers (filters in "
                    "etc/isthmus/rootwrap.d/agent.filters)."),
]

DATABASE_OPTS = [
    cfg.StrOpt("connection", secret=True,
               help="SQLAlchemy URL of the database, e.g. "
                    "postgresql+psycopg://isthmus@127.0.0.1/isthmus or "
                    "mysql+mysqldb://root@127.0.0.1/isthmus (mysqlclient; mysql+pymysql:// "
                    "works too, slower). Default: SQLite in state_path."),
    cfg.IntOpt("db_max_retries", default=10, min=0,
               help="How often a write transaction that lost a race to a concurrent one "
                    "(a deadlock, a serialization failure, an IP address it picked taken "
                    "meanwhile) is run again, after a short random pause, before the request "
                    "fails with 409 Conflict. 0 turns retrying off."),
    cfg.IntOpt("startup_timeout", default=30, min=0,
               help="Seconds ``isthmus server`` and ``isthmus db upgrade`` keep retrying "
                    "(every second) to reach the database at start-up before they exit 1 "
                    "with the reason; covers a database that starts after Isthmus."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the server's options (``[DEFAULT]``, ``[database]``, ``[service_providers]``)."""
    conf.register_opts(DEFAULT_OPTS)
    conf.register_opts(DATABASE_OPTS, group="database")
    conf.register_opts(SERVICE_PROVIDER_OPTS, group="service_providers")
    conf.register_opts(AGENT_OPTS, group="vpnagent")


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    """Every option by group, for oslo-config-generator (the sample in etc/ is generated)."""
    return [(None, DEFAULT_OPTS), ("database", DATABASE_OPTS),
            ("service_providers", SERVICE_PROVIDER_OPTS), ("vpnagent", AGENT_OPTS)]


def option_origin(conf: cfg.ConfigOpts, group: str, name: str) -> str:
    """``option [group] name in FILE`` for error messages (FILE: where it was set)."""
    try:
        location = conf.get_location(name, None if group == "DEFAULT" else group)
        where = location.detail if location and location.detail else "the defaults"
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError, AttributeError):
        where = "the defaults"
    return f"option [{group}] {name} in {where}"


def database_url(conf: cfg.ConfigOpts) -> str:
    """``[database] connection``, or SQLite in ``state_path`` when it is empty."""
    return conf.database.connection or f"sqlite:///{conf.state_path}/isthmus.db"


def load(args: list[str], config_files: list[str] | None = None) -> cfg.ConfigOpts:
    """A fresh ConfigOpts (not the global one), parsed from ``config_files``."""
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(args=args, project="isthmus", default_config_files=config_files or [])
    check_values(conf, list_opts())
    return conf


class BadOptionValue(cfg.Error):
    """A value in a config file that its option's type refuses, with file and line."""


def check_values(conf: cfg.ConfigOpts, opts: Sequence[tuple[str | None, Sequence[cfg.Opt]]]
                 ) -> None:
    """Read each of ``opts`` once, so a bad value fails at start naming file, line and cause.

    oslo.config converts values when they are first read, which may be long
    after start-up, and its message names neither the line nor the expected type.
    """
    for group, group_opts in opts:
        section = conf[group] if group else conf
        for opt in group_opts:
            try:
                section[opt.dest]
            except cfg.ConfigSourceValueError as err:
                group_name = group or "DEFAULT"
                found = [(path, line) for path in conf.config_file or []
                         if (line := _line_of(path, group_name, opt.name))]
                where = "{}:{}".format(*found[-1]) if found else "a config file"
                cause = str(err).rpartition("is not valid: ")[2]
                raise BadOptionValue(
                    f"{where}: option [{group_name}] {opt.name}: {cause} "
                    f"(expected: {opt.type.type_name})") from None


def _line_of(path: str, group: str, name: str) -> int | None:
    """The line number of the last ``name = ...`` in section ``[group]`` of ``path``."""
    section, found = None, None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for number, text in enumerate(lines, start=1):
        stripped = text.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
        elif section == group and stripped.partition("=")[0].strip() == name:
            found = number
    return found
