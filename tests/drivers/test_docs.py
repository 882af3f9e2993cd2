"""docs/drivers.md runs: its code is written, imported, executed and compared, in page order.

The scheme, block by block (fenced with a language tag; untagged blocks are prose):

- ```python whose first line is ``# some/path.py``: a file, written under a
  folder on ``sys.path`` (the page calls it ``/home/you/drivers``), so the page's
  drivers are importable by their dotted paths;
- any other ```python: a snippet, executed in one namespace shared by all
  snippets, in page order (they may use the files written above them);
- ```ini: a configuration file; loaded with Isthmus's own options, and every
  driver it names is loaded through the loader with the origin the server uses;
- ```toml: entry point tables; every driver entry point's target must load, every
  ``oslo.config.opts`` one must list options;
- ```console: ``$ [VAR=value ...] isthmus driver ...`` runs through
  :func:`isthmus.drivers.cli.main`; the lines after it are the expected output,
  compared exactly, with ``/home/you/drivers`` standing for the folder above.

Then the documented drivers sync a router built from a realistic
``get_vpn_services_on_host`` payload (checked against the RPC schema).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from oslo_config import cfg

from isthmus import config
from isthmus.drivers.cli import main
from isthmus.drivers.device import RouterState
from isthmus.drivers.loader import check_driver, register_options
from isthmus.drivers.service.providers import parse_providers
from isthmus.rpc import schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "drivers.md"
DOC_ROOT = "/home/you/drivers"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.S | re.M)
FILE_HEADER = re.compile(r"#\s*([\w./-]+\.py)\s*$")


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(DOC.read_text())]


@pytest.fixture
def drivers_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_modules: None) -> Path:
    root = tmp_path / "drivers"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(tmp_path)
    return root


def run_page(root: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Process every block in order; return what was done, by kind."""
    done: dict[str, Any] = {"files": [], "snippets": 0, "configs": [], "console": [],
                            "namespace": {"__name__": "drivers_md"}}
    for number, (lang, text) in enumerate(blocks(), start=1):
        where = f"docs/drivers.md block {number} ({lang})"
        first = text.splitlines()[0] if text.strip() else ""
        if lang == "python" and FILE_HEADER.fullmatch(first):
            path = root / FILE_HEADER.fullmatch(first).group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            importlib.invalidate_caches()
            done["files"].append(path.relative_to(root).as_posix())
        elif lang == "python":
            exec(compile(text, where, "exec"), done["namespace"])
            done["snippets"] += 1
        elif lang == "ini":
            check_config(root.parent / f"block{number}.conf", text)
            done["configs"].append(number)
        elif lang == "toml":
            for group, eps in tomllib.loads(text)["project"]["entry-points"].items():
                for target in eps.values():
                    check_entry_point(group, target)
        elif lang == "console":
            done["console"].append(run_console(root, text, capsys, where))
    return done


def check_entry_point(group: str, target: str) -> None:
    """A driver entry point's target loads; an oslo.config.opts one lists options."""
    if group == "oslo.config.opts":
        listed = pkgutil.resolve_name(target)()
        assert listed and all(isinstance(name, str) and opts
                              and all(isinstance(o, cfg.Opt) for o in opts)
                              for name, opts in listed), f"{target} lists no options"
        return
    kind = {"isthmus.vpn.service_drivers": "service", "isthmus.vpn.device_drivers": "device"}
    check_driver(target, kind[group])


def check_config(path: Path, text: str) -> None:
    """The documented configuration parses, and each driver it names loads."""
    path.write_text(text)
    conf = config.load([], [str(path)])
    origin = config.option_origin(conf, "service_providers", "service_provider")
    assert str(path) in origin
    providers = parse_providers(conf.service_providers.service_provider, origin)
    assert sum(p.default for p in providers) == 1
    for provider in providers:
        register_options(provider.driver, "service", conf, origin=origin)
    for spec in conf.vpnagent.vpn_device_driver:
        register_options(spec, "device", conf, origin=origin)  # and reads each value once


def run_console(root: Path, text: str, capsys: pytest.CaptureFixture[str], where: str) -> str:
    """Run ``$ isthmus driver ...``; compare its output with the lines below it."""
    command, *expected = text.rstrip("\n").splitlines()
    assert command.startswith("$ "), where
    words = shlex.split(command[2:])
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        assert (name, value) == ("PYTHONPATH", DOC_ROOT), f"{where}: only PYTHONPATH={DOC_ROOT}"
    assert words[:2] == ["isthmus", "driver"], where
    capsys.readouterr()
    code = main(words[1:])
    out = capsys.readouterr()
    output = (out.out + out.err).replace(str(root), DOC_ROOT).rstrip("\n")
    if expected:
        assert output == "\n".join(expected), f"{where}: the page shows another output"
        assert code == 1 and output.startswith("Cannot load"), where
    else:
        assert code == 0, f"{where} failed: {output}"
    return words[2]


def realistic_service(service_id: str, router_id: str, up: bool = True) -> dict[str, Any]:
    """One VPN service as ``get_vpn_services_on_host`` returns it, two connections."""
    def connection(conn_id: str, peer: str, conn_up: bool) -> dict[str, Any]:
        return {
            "id": conn_id, "name": f"to-{peer}", "admin_state_up": conn_up,
            "status": "PENDING_CREATE", "peer_address": peer, "peer_id": peer,
            "local_id": "", "mtu": 1500, "initiator": "bi-directional", "psk": "s3cret",
            "dpd": {"action": "hold", "interval": 30, "timeout": 120},
            "ikepolicy": {"id": "ike1", "auth_algorithm": "sha256",
                          "encryption_algorithm": "aes-256", "pfs": "group14",
                          "lifetime": {"units": "seconds", "value": 3600},
                          "ike_version": "v2", "phase1_negotiation_mode": "main"},
            "ipsecpolicy": {"id": "ipsec1", "auth_algorithm": "sha256",
                            "encryption_algorithm": "aes-256", "pfs": "group14",
                            "lifetime": {"units": "seconds", "value": 3600},
                            "transform_protocol": "esp", "encapsulation_mode": "tunnel"},
            "local_cidrs": ["10.1.0.0/24"], "peer_cidrs": ["10.2.0.0/24", "10.3.0.0/24"],
            "local_ip_version": 4, "external_ip": "198.51.100.1",
        }
    return {
        "id": service_id, "project_id": "p1", "name": "hq", "router_id": router_id,
        "namespace": f"qrouter-{router_id}", "provider": "mydriver", "admin_state_up": up,
        "status": "PENDING_CREATE", "subnet_id": None, "external_v4_ip": "198.51.100.1",
        "external_v6_ip": None,
        "ipsec_site_connections": [connection(f"{service_id}-c1", "203.0.113.9", True),
                                   connection(f"{service_id}-c2", "203.0.113.10", False)],
    }


def test_every_block_of_the_page_runs(drivers_root, capsys):
    done = run_page(drivers_root, capsys)
    assert done["files"] == ["mydriver/device.py", "mydriver/service.py", "typo/device.py"]
    assert done["snippets"] >= 1 and "device" in done["namespace"]  # "Try them" ran
    assert len(done["configs"]) == 1
    assert done["console"] == ["check", "check", "new"]
    assert (drivers_root.parent / "acme-vpn" / "src" / "acme_vpn" / "device.py").is_file()


def test_documented_drivers_sync_a_realistic_router(drivers_root, capsys):
    run_page(drivers_root, capsys)
    device = check_driver("mydriver.device:MyDeviceDriver", "device")
    service = check_driver("mydriver.service:MyServiceDriver", "service")

    services = [realistic_service("s1", "r1"), realistic_service("s2", "r1", up=False)]
    for payload in services:
        jsonschema.validate(payload, schema.SERVICE)
    router = RouterState(router_id="r1", namespace="qrouter-r1", services=services)
    assert device.sync(router) == {"s1": "ACTIVE", "s1-c1": "ACTIVE", "s1-c2": "DOWN",
                                   "s2": "DOWN", "s2-c1": "DOWN", "s2-c2": "DOWN"}
    assert device.tunnels["r1"] == {"s1-c1": {
        "local": "198.51.100.1", "peer": "203.0.113.9", "local_cidrs": ["10.1.0.0/24"],
        "peer_cidrs": ["10.2.0.0/24", "10.3.0.0/24"], "psk": "s3cret", "ike_version": "v2"}}
    assert device.sync(RouterState(router_id="r1", namespace=None)) == {}
    assert device.tunnels == {}

    from isthmus.context import RequestContext
    from isthmus.drivers.service import Change

    service.changed(Change(RequestContext.admin(), "ipsec_site_connections", "update",
                           new={"id": "s1-c1"}, old={"id": "s1-c1"}, router_id="r1"))
    assert service.server.notified == ["r1"]  # IPsecServiceDriver casts vpnservice_updated
