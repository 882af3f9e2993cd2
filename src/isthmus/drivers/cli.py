"""``isthmus driver check`` and ``isthmus driver new``: the driver author's two commands.

``check`` runs the loader's checks offline, exactly as the server and agent run them
at start; ``new`` writes a driver package that loads, installs and passes its tests
as written. Exit codes: 0 ok, 1 the driver does not load, 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib.util
import keyword
import sys
from pathlib import Path
from typing import Any, Sequence

from isthmus.drivers.loader import DriverLoadError, Kind, check_driver, driver_kinds

__all__ = ["add_subcommands", "main", "new_driver_package", "NewDriverError"]

CHECK_ORIGIN = "the command line (isthmus driver check)"


class NewDriverError(ValueError):
    """``driver new`` cannot write the package: a bad name or an occupied directory."""


def add_subcommands(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``driver check`` and ``driver new`` on an ``add_subparsers()`` object.

    Each leaf sets ``func(args) -> int`` (the exit code), as ``isthmus.cli`` expects.
    """
    driver = subparsers.add_parser(
        "driver", help="check or create VPN drivers",
        description="Check that a VPN driver loads, or write a new driver package.")
    sub = driver.add_subparsers(dest="driver_command", required=True)

    check = sub.add_parser(
        "check", help="load a driver and report exactly what is wrong with it",
        description="Run the loader's checks, as the server and the agent run them at "
                    "start, and build one instance with a stand-in server or agent.")
    check.add_argument("spec", help="dotted path (package.module:Class) or entry point name")
    check.add_argument("--kind", choices=["service", "device"],
                       help="which kind of driver (default: told by the class's base, or "
                            "by the entry point group)")
    check.set_defaults(func=_cmd_check)

    new = sub.add_parser(
        "new", help="write a minimal driver package (service + device driver, test)",
        description="Write DIR/NAME/: pyproject.toml with entry points, a service driver, "
                    "a device driver and a test, which load and pass as written.")
    new.add_argument("name", help="distribution name, e.g. acme-vpn (package acme_vpn)")
    new.add_argument("--dir", default=".", help="where to create NAME/ (default: .)")
    new.set_defaults(func=_cmd_new)
    return driver


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``driver ...`` standalone (for tests): ``main(["driver", "check", "noop"])``."""
    parser = argparse.ArgumentParser(prog="isthmus")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: 2 on usage errors, 0 after --help
        return int(exit_.code or 0)
    return args.func(args)


# --------------------------------------------------------------------------- check


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        kinds: list[Kind] = [args.kind] if args.kind else driver_kinds(args.spec,
                                                                       origin=CHECK_ORIGIN)
    except DriverLoadError as err:
        print(err, file=sys.stderr)
        return 1
    code = 0
    for kind in kinds:
        try:
            driver = check_driver(args.spec, kind, origin=CHECK_ORIGIN)
        except DriverLoadError as err:
            print(err, file=sys.stderr)
            code = 1
            continue
        cls = type(driver)
        detail = "builds with a stand-in server"
        if kind == "device":
            providers = getattr(cls, "providers", None)
            detail = ("builds with a stand-in agent; serves providers: "
                      + (", ".join(providers) if providers else "all"))
        path = f"{cls.__module__}:{cls.__qualname__}"
        same = args.spec in (path, path.replace(":", "."))
        named = f"{args.spec!r}" + ("" if same else f" ({path})")
        print(f"ok: {kind} driver {named} loads and {detail}")
    return code


# --------------------------------------------------------------------------- new


def _cmd_new(args: argparse.Namespace) -> int:
    try:
        files = new_driver_package(args.name, Path(args.dir))
    except NewDriverError as err:
        print(f"isthmus driver new: error: {err}", file=sys.stderr)
        return 2
    root = Path(args.dir) / args.name
    pkg = args.name.replace("-", "_")
    cls = _class_prefix(pkg)
    print(f"Created {root}/:")
    for path in files:
        print(f"  {path}")
    print(f"""
Service driver: {pkg}.service:{cls}ServiceDriver, device driver: {pkg}.device:{cls}DeviceDriver,
both registered as entry point {args.name!r}. Next:
  cd {root} && python -m pip install -e . && python -m pytest
  isthmus driver check {args.name}
Then configure the server and the agent:
  [service_providers]
  service_provider = VPN:{pkg}:{args.name}:default
  [vpnagent]
  vpn_device_driver = {args.name}""")
    return 0


def new_driver_package(name: str, directory: Path) -> list[Path]:
    """Write the skeleton of driver package ``name`` into ``directory/name``; return the files.

    ``name`` is a distribution name; its package is ``name`` with '-' replaced by '_',
    which must be a Python identifier not already importable (it would shadow, or be
    shadowed by, that module).
    """
    pkg = name.replace("-", "_")
    if not pkg.isidentifier() or keyword.iskeyword(pkg):
        raise NewDriverError(
            f"{name!r} is not a usable driver name: its package name {pkg!r} must be a "
            "Python identifier (letters, digits and '_', not starting with a digit, not a "
            "keyword), with '-' allowed in the name; e.g. acme-vpn (package acme_vpn)")
    taken = _existing_module(pkg)
    if taken:
        raise NewDriverError(
            f"a module named {pkg!r} already exists ({taken}); a driver package of the same "
            "name would shadow it or be shadowed by it: choose another name, e.g. "
            f"{name}-vpn")
    root = directory / name
    if root.exists() and not root.is_dir():
        raise NewDriverError(f"{root} exists and is not a directory: choose another "
                             "--dir or name")
    if root.is_dir() and any(root.iterdir()):
        raise NewDriverError(f"{root} already exists and is not empty: remove it, or "
                             "choose another --dir or name")
    if directory.exists() and not directory.is_dir():
        raise NewDriverError(f"--dir {directory} is not a directory")

    files = {
        Path("pyproject.toml"): _PYPROJECT,
        Path("README.md"): _README,
        Path("src", pkg, "__init__.py"): _INIT,
        Path("src", pkg, "service.py"): _SERVICE,
        Path("src", pkg, "device.py"): _DEVICE,
        Path("tests", f"test_{pkg}.py"): _TEST,
    }
    values = {"name": name, "pkg": pkg, "cls": _class_prefix(pkg)}
    written = []
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.lstrip("\n").format(**values), encoding="utf-8")
        written.append(path)
    return written


def _existing_module(pkg: str) -> str | None:
    """Where an importable module named ``pkg`` lives, if there is one."""
    if pkg in sys.stdlib_module_names or pkg in sys.builtin_module_names:
        return "the standard library"
    try:
        spec = importlib.util.find_spec(pkg)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin in (None, "namespace"):
        return None  # a bare folder (namespace package), e.g. an empty NAME/ in the cwd
    return spec.origin


def _class_prefix(pkg: str) -> str:
    """``acme_vpn`` -> ``AcmeVpn``, for AcmeVpnServiceDriver and AcmeVpnDeviceDriver."""
    return "".join(part[:1].upper() + part[1:] for part in pkg.split("_") if part) or "My"


# --------------------------------------------------------------------------- templates
# Formatted with str.format: {name}, {pkg}, {cls}; literal braces are doubled.

_PYPROJECT = '''
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1.0"
description = "{name}: an Isthmus VPN provider (service driver and device driver)"
requires-python = ">=3.11"
dependencies = ["isthmus"]

[project.optional-dependencies]
test = ["pytest>=8.0"]

# The names you write in the configuration:
#   [service_providers] service_provider = VPN:{pkg}:{name}:default
#   [vpnagent] vpn_device_driver = {name}
[project.entry-points."isthmus.vpn.service_drivers"]
{name} = "{pkg}.service:{cls}ServiceDriver"

[project.entry-points."isthmus.vpn.device_drivers"]
{name} = "{pkg}.device:{cls}DeviceDriver"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
pythonpath = ["src"]
testpaths = ["tests"]
'''

_README = '''
# {name}

An Isthmus VPN provider: `{pkg}.service:{cls}ServiceDriver` runs in the server,
`{pkg}.device:{cls}DeviceDriver` in each VPN agent. Both are registered as the
entry point `{name}`.

```
python -m pip install -e .
python -m pytest
isthmus driver check {name}
```

Configure the server and the agent (see Isthmus's docs/drivers.md):

```ini
[service_providers]
service_provider = VPN:{pkg}:{name}:default

[vpnagent]
vpn_device_driver = {name}
```
'''

_INIT = '''
"""{name}: an Isthmus VPN provider."""

from {pkg}.device import {cls}DeviceDriver
from {pkg}.service import {cls}ServiceDriver

__all__ = ["{cls}DeviceDriver", "{cls}ServiceDriver"]
'''

_SERVICE = '''
"""The server half of {name}: refuse what the device cannot do, then notify the agent."""

from __future__ import annotations

from isthmus.drivers.service import Change, IPsecServiceDriver
from isthmus.exceptions import BadRequest

MIN_MTU = 1280


class {cls}ServiceDriver(IPsecServiceDriver):
    """Validates site connections; IPsecServiceDriver.changed() casts vpnservice_updated."""

    def validate(self, change: Change) -> None:
        # An example to replace with your device's real limits: refuse site
        # connections whose MTU is below IPv6's minimum. Raising an Isthmus error
        # refuses the request before anything is written (BadRequest: a 400).
        if change.resource != "ipsec_site_connections" or not change.new:
            return
        mtu = change.new.get("mtu")
        if mtu is not None and mtu < MIN_MTU:
            raise BadRequest(resource="ipsec_site_connection",
                             msg=f"{name} needs an mtu of at least {{MIN_MTU}}, not {{mtu}}")
'''

_DEVICE = '''
"""The agent half of {name}: make the device match the desired state of one router."""

from __future__ import annotations

import logging

from isthmus.drivers.device import DeviceDriver, RouterState, Statuses

LOG = logging.getLogger(__name__)


class {cls}DeviceDriver(DeviceDriver):
    """Configures nothing yet: logs what it would do, and reports it ACTIVE (or DOWN)."""

    # Serve only the VPN services of these providers ([service_providers] names);
    # None, the default, serves them all.
    # providers = ("{pkg}",)

    def sync(self, router: RouterState) -> Statuses:
        statuses: dict[str, str] = {{}}
        if not router.services:
            LOG.info("router %s: no VPN services, remove its connections", router.router_id)
        for service in router.services:
            up = service["admin_state_up"]
            statuses[service["id"]] = "ACTIVE" if up else "DOWN"
            for conn in service["ipsec_site_connections"]:
                # Configure the tunnel here: conn["peer_address"], conn["peer_cidrs"],
                # conn["local_cidrs"], conn["psk"], conn["ikepolicy"], conn["ipsecpolicy"].
                # Log ids, never conn["psk"] nor the whole conn (docs/api.md).
                LOG.info("router %s: connection %s to %s", router.router_id, conn["id"],
                         conn["peer_address"])
                statuses[conn["id"]] = "ACTIVE" if up and conn["admin_state_up"] else "DOWN"
        return statuses
'''

_TEST = '''
"""{name} loads through Isthmus's driver loader, validates, notifies and syncs."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from isthmus.context import RequestContext
from isthmus.drivers.device import RouterState
from isthmus.drivers.loader import check_driver, load_driver
from isthmus.drivers.service import Change
from isthmus.exceptions import BadRequest

SERVICE = "{pkg}.service:{cls}ServiceDriver"
DEVICE = "{pkg}.device:{cls}DeviceDriver"
INSTALLED = bool(entry_points(group="isthmus.vpn.device_drivers", name="{name}"))


class FakeServer:
    """Records the routers the service driver asks to re-sync."""

    def __init__(self) -> None:
        self.notified: list[str] = []

    def notify_router(self, router_id: str) -> None:
        self.notified.append(router_id)


def connection(conn_id: str, up: bool = True) -> dict:
    return {{
        "id": conn_id, "admin_state_up": up, "peer_address": "203.0.113.9",
        "peer_cidrs": ["10.2.0.0/24"], "local_cidrs": ["10.1.0.0/24"], "psk": "secret",
        "ikepolicy": {{"ike_version": "v2", "encryption_algorithm": "aes-256",
                      "auth_algorithm": "sha256", "pfs": "group14"}},
        "ipsecpolicy": {{"transform_protocol": "esp", "encryption_algorithm": "aes-256",
                        "auth_algorithm": "sha256", "pfs": "group14"}},
    }}


def test_both_drivers_load_and_build():
    check_driver(SERVICE, "service")
    check_driver(DEVICE, "device")


@pytest.mark.skipif(not INSTALLED, reason="pip install -e . registers the entry points")
def test_entry_points_load():
    assert load_driver("{name}", "service").__name__ == "{cls}ServiceDriver"
    assert load_driver("{name}", "device").__name__ == "{cls}DeviceDriver"


def test_sync_reports_each_service_and_connection():
    driver = check_driver(DEVICE, "device")
    router = RouterState(router_id="r1", namespace="qrouter-r1", services=[{{
        "id": "s1", "router_id": "r1", "admin_state_up": True, "status": "PENDING_CREATE",
        "external_v4_ip": "198.51.100.1",
        "ipsec_site_connections": [connection("c1"), connection("c2", up=False)],
    }}])
    assert driver.sync(router) == {{"s1": "ACTIVE", "c1": "ACTIVE", "c2": "DOWN"}}
    assert driver.sync(RouterState(router_id="r1", namespace=None)) == {{}}


def test_validate_refuses_a_small_mtu():
    driver = load_driver(SERVICE, "service")(FakeServer())
    change = Change(context=RequestContext.admin(), resource="ipsec_site_connections",
                    action="create", new={{"mtu": 1000}}, old=None, router_id="r1")
    with pytest.raises(BadRequest, match="mtu"):
        driver.validate(change)
    driver.validate(Change(context=RequestContext.admin(), resource="ipsec_site_connections",
                           action="create", new={{"mtu": 1500}}, old=None, router_id="r1"))


def test_changes_notify_the_router():
    server = FakeServer()
    driver = load_driver(SERVICE, "service")(server)
    driver.changed(Change(context=RequestContext.admin(), resource="vpnservices",
                          action="update", new={{"id": "s1"}}, old={{"id": "s1"}},
                          router_id="r1"))
    assert server.notified == ["r1"]
'''
