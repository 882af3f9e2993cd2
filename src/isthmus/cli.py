"""The ``isthmus`` command: ``up``, ``server``, ``agent``, ``db upgrade``, ``driver``, ``peer test``."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

from isthmus import __version__
from isthmus.lifecycle import (StartupError, StopRequested, StopSignals, run_bounded,
                               setup_logging)


# Stopping RPC and the database after the API drained; a broker gone away must not hang exit.
STOP_TIMEOUT_S = 10


def _cmd_up(args: argparse.Namespace) -> int:
    stop = StopSignals().install()
    from isthmus import config, server
    from isthmus.agent.service import build_agent
    from isthmus.drivers.device.noop import NoopDeviceDriver
    from isthmus.rpc.transport import EMBEDDED_URL, get_transport

    physical_networks = None
    if args.physical_network:   # real routers and strongSwan, as root (isthmus.embedded)
        from isthmus import embedded

        physical_networks = embedded.preflight(args.physical_network)
    data_dir = Path(args.data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = config.load([])
    conf.set_override("state_path", str(data_dir))
    conf.set_override("bind_host", args.host)
    conf.set_override("bind_port", args.port)
    setup_logging(args.debug)
    with contextlib.ExitStack() as stopping:
        real = None
        if physical_networks:
            real = embedded.enable(conf, data_dir, physical_networks, args.kernel_libipsec)
            stopping.callback(run_bounded, "routers", real.stop, STOP_TIMEOUT_S)
        # Server and agent share one in-memory transport: nothing else to run.
        transport = get_transport(conf, EMBEDDED_URL)
        runtime = server.build(conf, migrate=True, transport=transport)
        stopping.callback(run_bounded, "server", runtime.stop, STOP_TIMEOUT_S)
        agent = build_agent(conf, transport, runtime.registry)  # one /metrics
        stopping.callback(run_bounded, "agent", agent.stop, STOP_TIMEOUT_S)
        agent.start()
        simulated = "; noop device driver: statuses are simulated, no tunnels are built" \
            if all(isinstance(d, NoopDeviceDriver) for d in agent.drivers) else ""
        mode = real.describe() if real is not None else simulated
        print(f"Isthmus {__version__}: API on http://{args.host}:{args.port}/ "
              f"(SQLite in {data_dir}, agent '{conf.host}' in process{mode})", flush=True)
        server.serve(runtime.app, conf, stop, runtime.close_streams)
    return 0


def _cmd_server(args: argparse.Namespace) -> int:
    stop = StopSignals().install()
    from isthmus import config

    conf = config.load([], args.config_file)
    setup_logging(conf.debug)
    count = args.workers or conf.api_workers
    if count == 1:
        return _serve_api(conf, stop)
    from isthmus import workers

    with workers.shared_metrics():
        from isthmus import server  # noqa: F401  (imported once, before forking)

        listening = workers.bind(conf.bind_host, conf.bind_port, count)
        return workers.Supervisor(
            lambda sock, worker_stop, ready: _exit_status(
                lambda: _serve_api(conf, worker_stop, sock, ready)),
            listening, stop, conf.graceful_shutdown_timeout + STOP_TIMEOUT_S + 5).run()


def _serve_api(conf: Any, stop: StopSignals, listening: Any = None,
               ready: Callable[[], None] | None = None) -> int:
    """One API server process: alone, or a worker on the socket its parent bound."""
    from isthmus import server

    with contextlib.ExitStack() as stopping:
        runtime = server.build(conf, migrate=False)
        stopping.callback(run_bounded, "server", runtime.stop, STOP_TIMEOUT_S)
        if ready is not None:
            ready()
        server.serve(runtime.app, conf, stop, runtime.close_streams, listening)
    return 0


def _cmd_agent(args: argparse.Namespace) -> int:
    stop = StopSignals().install()
    from isthmus import config
    from isthmus.agent.service import build_agent
    from isthmus.rpc.transport import get_transport

    conf = config.load([], args.config_file)
    setup_logging(conf.debug)
    with contextlib.ExitStack() as stopping:
        agent = build_agent(conf, get_transport(conf))
        stopping.callback(run_bounded, "agent", agent.stop, STOP_TIMEOUT_S)
        agent.start()   # a stop signal interrupts it, even while the broker is unreachable
        stop.serving()
        stop.requested.wait()
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    stop = StopSignals().install()
    from isthmus.demo.run import demo

    return demo(check=args.check, stop=stop)


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from isthmus import config
    from isthmus.db import migrate

    conf = config.load([], args.config_file)
    url = config.database_url(conf)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    else:
        from isthmus.server import require_database

        require_database(conf, url)
    migrate.upgrade(url, args.revision)
    print(f"Database at revision {migrate.current(url)}")
    return 0


def _at_least_one(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {number}")
    return number


def parser() -> argparse.ArgumentParser:
    """The ``isthmus`` command line: ``up``, ``server``, ``agent``, ``db``, ``demo``, ``peer``."""
    top = argparse.ArgumentParser(prog="isthmus", description=(
        "Isthmus: a Neutron-VPNaaS-compatible VPN-as-a-Service control plane."))
    top.add_argument("--version", action="version", version=f"isthmus {__version__}")
    sub = top.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run everything in one process on SQLite (embedded default)")
    up.add_argument("--data-dir", default="./isthmus-data",
                    help="where the SQLite database lives (created if missing)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=9696)
    up.add_argument("--debug", action="store_true")
    up.add_argument("--physical-network", action="append", default=[], metavar="NAME:DEVICE",
                    help="build real routers (root): map physical network NAME to a Linux "
                         "bridge or a plain interface (eth0) of this host; repeatable. "
                         "Switches the agent to the strongSwan driver. Without it, statuses "
                         "are simulated (noop driver)")
    up.add_argument("--kernel-libipsec", action="store_true",
                    help="with --physical-network: ESP in userspace (strongSwan "
                         "kernel-libipsec) even if the kernel has ESP/XFRM (chosen by itself "
                         "when the kernel has none)")
    up.set_defaults(func=_cmd_up)

    agent = sub.add_parser("agent", help="run a VPN agent from a config file")
    agent.add_argument("--config-file", action="append", required=True)
    agent.set_defaults(func=_cmd_agent)

    srv = sub.add_parser("server", help="run the API server from a config file")
    srv.add_argument("--config-file", action="append", required=True)
    srv.add_argument("--workers", type=_at_least_one, metavar="N",
                     help="serve with N processes sharing the port (default: [DEFAULT] "
                          "api_workers, 1); background work runs in one of them")
    srv.set_defaults(func=_cmd_server)

    demo = sub.add_parser("demo", help="two sites in namespaces, a real tunnel, a ping (root)")
    demo.add_argument("--check", action="store_true",
                      help="run unattended; exit 0 only if traffic crossed the tunnel")
    demo.set_defaults(func=_cmd_demo)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upg = db_sub.add_parser("upgrade", help="apply Alembic migrations")
    upg.add_argument("--config-file", action="append", required=True)
    upg.add_argument("revision", nargs="?", default="head")
    upg.set_defaults(func=_cmd_db_upgrade)

    from isthmus.drivers.cli import add_subcommands
    add_subcommands(sub)
    from isthmus.peers import peertest
    peertest.add_subcommands(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    # oslo.service (pulled in by oslo.messaging) warns about eventlet at import; Isthmus
    # does not use eventlet, so the warning only confuses operators.
    """Run one ``isthmus`` command; returns its exit status."""
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    args = parser().parse_args(argv)
    return _exit_status(lambda: args.func(args))


def _exit_status(run: Callable[[], int]) -> int:
    """Run a command (or a server worker); its errors as one line and an exit status."""
    try:
        return run()
    except StopRequested as stopped:   # a stop signal during start-up: stopping is success
        print(f"isthmus: {stopped} received while starting; stopped", file=sys.stderr)
        return 0
    except KeyboardInterrupt:
        return 130
    except StartupError as err:
        print(f"isthmus: error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # a readable error, not a traceback, for operators
        from oslo_config import cfg

        from isthmus.api.policy import PolicyFileError
        from isthmus.drivers.loader import DriverLoadError
        from isthmus.drivers.service.providers import ProviderConfigError

        if isinstance(err, (DriverLoadError, ProviderConfigError, PolicyFileError)):
            print(f"isthmus: {err}", file=sys.stderr)
            return 1
        if isinstance(err, (cfg.Error, OSError)):
            print(f"isthmus: error: {err}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
