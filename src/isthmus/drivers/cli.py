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
from importlib import resources
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
  vpn_device_driver = {args.name}
  [{pkg}]
  device_address = 127.0.0.1""")
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
        Path("pyproject.toml"): "pyproject.toml.tmpl",
        Path("README.md"): "README.md.tmpl",
        Path("src", pkg, "__init__.py"): "__init__.py.tmpl",
        Path("src", pkg, "service.py"): "service.py.tmpl",
        Path("src", pkg, "device.py"): "device.py.tmpl",
        Path("tests", f"test_{pkg}.py"): "test.py.tmpl",
    }
    values = {"name": name, "pkg": pkg, "cls": _class_prefix(pkg)}
    written = []
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_template(template).format(**values), encoding="utf-8")
        written.append(path)
    return written


def _template(name: str) -> str:
    """A skeleton file from ``templates/``: str.format fields {name}, {pkg}, {cls}; literal
    braces doubled."""
    return (resources.files("isthmus.drivers") / "templates" / name).read_text(encoding="utf-8")


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

