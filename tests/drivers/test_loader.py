"""Every way a driver can fail to load gives one message: origin, dotted path, cause, fix."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tomllib

import pytest

from isthmus.drivers import AgentContext, IPsecServiceDriver, NoopDeviceDriver, RouterState
from isthmus.drivers.cli import new_driver_package
from isthmus.drivers.loader import DriverLoadError, check_driver, driver_kinds, load_driver
from tests.drivers.conftest import ORIGIN, SERVICE_ORIGIN, line_of

GOOD_DEVICE = """
    from isthmus.drivers.device import DeviceDriver, RouterState, Statuses


    class AcmeDeviceDriver(DeviceDriver):
        def sync(self, router: RouterState) -> Statuses:
            return {}
"""
GOOD_SERVICE = """
    from isthmus.drivers.service import ServiceDriver


    class AcmeServiceDriver(ServiceDriver):
        pass
"""


def load_error(spec: str, kind: str = "device", origin: str = ORIGIN) -> str:
    with pytest.raises(DriverLoadError) as info:
        load_driver(spec, kind, origin=origin)  # type: ignore[arg-type]
    return str(info.value)


def assert_names(message: str, spec: str, origin: str = ORIGIN) -> None:
    assert message.startswith("Cannot load ")
    assert repr(spec) in message.splitlines()[0]
    assert f"from:  {origin}" in message
    assert "\n  cause: " in message and "\n  fix:   " in message


# ----------------------------------------------------------------------- module not found


def test_module_not_found_suggests_the_sibling_module(write_modules):
    write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": GOOD_DEVICE,
                   "acmedrv/service.py": GOOD_SERVICE})
    message = load_error("acmedrv.devise:AcmeDeviceDriver")
    assert_names(message, "acmedrv.devise:AcmeDeviceDriver")
    assert "cause: no module named 'acmedrv.devise'" in message
    assert "did you mean 'acmedrv.device:AcmeDeviceDriver'?" in message
    assert "has the modules: device, service" in message
    assert "isthmus.vpn.device_drivers: noop, strongswan" in message


def test_top_level_module_not_found_suggests_top_level_names(write_modules):
    write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": GOOD_DEVICE})
    message = load_error("acmedrvv.device.AcmeDeviceDriver")
    assert_names(message, "acmedrvv.device.AcmeDeviceDriver")
    assert "cause: no module named 'acmedrvv'" in message
    assert "did you mean 'acmedrv.device.AcmeDeviceDriver'?" in message
    assert "pip install -e" in message and sys.prefix in message
    assert "isthmus.vpn.device_drivers: noop, strongswan" in message


# ----------------------------------------------------------------------- import raises


def test_exception_while_importing_names_the_drivers_file_and_line(write_modules):
    paths = write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": """
        import os


        def read_socket_path():
            raise RuntimeError("vici socket path not configured")


        SOCKET = read_socket_path()
    """})
    path = paths["acmedrv/device.py"]
    message = load_error("acmedrv.device:AcmeDeviceDriver")
    assert_names(message, "acmedrv.device:AcmeDeviceDriver")
    line = line_of(path, "raise RuntimeError")
    assert "raised RuntimeError: vici socket path not configured" in message
    assert f"at {path}:{line}, in read_socket_path" in message
    assert f"fix:   fix the code at {path}:{line}" in message


def test_exception_raised_in_a_library_points_at_the_drivers_line(write_modules):
    paths = write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": """
        import json

        SETTINGS = json.loads("{not json")
    """})
    path = paths["acmedrv/device.py"]
    message = load_error("acmedrv.device:AcmeDeviceDriver")
    assert_names(message, "acmedrv.device:AcmeDeviceDriver")
    assert "raised JSONDecodeError" in message
    assert f"at {path}:3, in <module>: SETTINGS = json.loads" in message
    assert "(raised in " in message and "json" in message.split("(raised in ")[1]
    assert f"fix:   fix the code at {path}:3" in message


def test_missing_dependency_is_told_apart_from_a_missing_driver(write_modules):
    paths = write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": """
        import json
        import vici_not_installed_anywhere
    """})
    path = paths["acmedrv/device.py"]
    message = load_error("acmedrv.device:AcmeDeviceDriver")
    assert_names(message, "acmedrv.device:AcmeDeviceDriver")
    assert "No module named 'vici_not_installed_anywhere'" in message
    assert f"{path}:2" in message
    assert "install the package that provides 'vici_not_installed_anywhere'" in message
    assert "no module named 'acmedrv.device'" not in message


def test_syntax_error_names_file_and_line(write_modules):
    paths = write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": """
        from isthmus.drivers.device import DeviceDriver

        class AcmeDeviceDriver(DeviceDriver)
            pass
    """})
    path = paths["acmedrv/device.py"]
    message = load_error("acmedrv.device:AcmeDeviceDriver")
    assert_names(message, "acmedrv.device:AcmeDeviceDriver")
    assert "raised SyntaxError" in message
    assert f"{path}:3" in message and "correct the syntax" in message


# ----------------------------------------------------------------------- the class


def test_missing_class_suggests_the_closest_class_in_the_module(write_modules):
    paths = write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": GOOD_DEVICE})
    message = load_error("acmedrv.device:AcmeDevicedriver")
    assert_names(message, "acmedrv.device:AcmeDevicedriver")
    assert (f"module 'acmedrv.device' ({paths['acmedrv/device.py']}) has no class "
            "'AcmeDevicedriver'") in message
    assert "did you mean 'acmedrv.device:AcmeDeviceDriver'?" in message


def test_a_module_instead_of_a_class_lists_its_driver_classes(write_modules):
    write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": GOOD_DEVICE})
    message = load_error("acmedrv.device")
    assert_names(message, "acmedrv.device")
    assert "'acmedrv.device' is a module" in message
    assert "name the class: 'acmedrv.device:AcmeDeviceDriver'" in message


def test_not_a_class(write_modules):
    write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": """
        def make_driver(agent):
            return None
    """})
    message = load_error("acmedrv.device:make_driver")
    assert_names(message, "acmedrv.device:make_driver")
    assert "function acmedrv.device.make_driver" in message and "is not a class" in message
    assert "from isthmus.drivers.device import DeviceDriver" in message


@pytest.mark.parametrize("kind, base, import_line, origin", [
    ("device", "DeviceDriver", "from isthmus.drivers.device import DeviceDriver", ORIGIN),
    ("service", "ServiceDriver", "from isthmus.drivers.service import Change, ServiceDriver",
     SERVICE_ORIGIN),
])
def test_not_a_subclass_says_which_base_with_the_import(write_modules, kind, base,
                                                        import_line, origin):
    paths = write_modules({"acmedrv/__init__.py": "", "acmedrv/plain.py": """
        class Plain:
            def sync(self, router):
                return {}
    """})
    message = load_error("acmedrv.plain:Plain", kind, origin)
    assert_names(message, "acmedrv.plain:Plain", origin)
    assert f"({paths['acmedrv/plain.py']}:1) does not subclass {base}" in message
    assert import_line in message and f"class Plain({base}): ..." in message


def test_a_service_driver_configured_as_device_driver(write_modules):
    write_modules({"acmedrv/__init__.py": "", "acmedrv/service.py": GOOD_SERVICE})
    message = load_error("acmedrv.service:AcmeServiceDriver", "device")
    assert_names(message, "acmedrv.service:AcmeServiceDriver")
    assert "is a service driver (it subclasses ServiceDriver)" in message
    assert "configure it with [service_providers] service_provider" in message


def test_abstract_method_missing_shows_the_signature_to_write(write_modules):
    paths = write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": """
        from isthmus.drivers.device import DeviceDriver


        class AcmeDeviceDriver(DeviceDriver):
            def synch(self, router):
                return {}
    """})
    message = load_error("acmedrv.device:AcmeDeviceDriver")
    assert_names(message, "acmedrv.device:AcmeDeviceDriver")
    assert "does not implement the abstract method sync" in message
    assert "'synch' (a misspelling of 'sync'?)" in message
    assert f"add to class AcmeDeviceDriver ({paths['acmedrv/device.py']}:4)" in message
    assert "def sync(self, router: RouterState) -> Statuses:" in message


@pytest.mark.parametrize("kind, source, found, write", [
    ("device", """
        from isthmus.drivers.device import DeviceDriver


        class AcmeDriver(DeviceDriver):
            def __init__(self, conf, agent):
                super().__init__(agent)

            def sync(self, router):
                return {}
     """, "def __init__(self, conf, agent)", "def __init__(self, agent: AgentContext) -> None:"),
    ("service", """
        from isthmus.drivers.service import ServiceDriver


        class AcmeDriver(ServiceDriver):
            def __init__(self):
                super().__init__(None)
     """, "def __init__(self)", "def __init__(self, server: DriverServer) -> None:"),
])
def test_constructor_signature_wrong(write_modules, kind, source, found, write):
    paths = write_modules({"acmedrv/__init__.py": "", "acmedrv/driver.py": source})
    path = paths["acmedrv/driver.py"]
    message = load_error("acmedrv.driver:AcmeDriver", kind)
    assert_names(message, "acmedrv.driver:AcmeDriver")
    param = "agent" if kind == "device" else "server"
    assert f"built as AcmeDriver({param}), one positional argument" in message
    assert f"{found} ({path}:{line_of(path, 'def __init__')})" in message
    assert write in message and f"super().__init__({param})" in message


def test_constructor_raising_is_reported_by_check_driver(write_modules):
    paths = write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": """
        from isthmus.drivers.device import DeviceDriver


        class AcmeDeviceDriver(DeviceDriver):
            def __init__(self, agent):
                super().__init__(agent)
                self.socket = open("/nonexistent/charon.vici")

            def sync(self, router):
                return {}
    """})
    path = paths["acmedrv/device.py"]
    load_driver("acmedrv.device:AcmeDeviceDriver", "device")  # the class itself is fine
    with pytest.raises(DriverLoadError) as info:
        check_driver("acmedrv.device:AcmeDeviceDriver", "device", origin=ORIGIN)
    message = str(info.value)
    assert_names(message, "acmedrv.device:AcmeDeviceDriver")
    assert "AcmeDeviceDriver(agent) raised FileNotFoundError" in message
    assert f"at {path}:{line_of(path, 'open(')}, in __init__" in message
    assert "do device work in start() or sync()" in message


def test_hook_with_the_wrong_signature(write_modules):
    paths = write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": """
        from isthmus.drivers.device import DeviceDriver


        class AcmeDeviceDriver(DeviceDriver):
            def sync(self, context, router):
                return {}
    """})
    message = load_error("acmedrv.device:AcmeDeviceDriver")
    assert_names(message, "acmedrv.device:AcmeDeviceDriver")
    assert f"AcmeDeviceDriver.sync ({paths['acmedrv/device.py']}:5)" in message
    assert "def sync(self, context, router), which cannot be called as sync(router)" in message
    assert "def sync(self, router: RouterState) -> Statuses:" in message


def test_async_hook_is_refused(write_modules):
    write_modules({"acmedrv/__init__.py": "", "acmedrv/service.py": """
        from isthmus.drivers.service import ServiceDriver


        class AcmeServiceDriver(ServiceDriver):
            async def validate(self, change):
                pass
    """})
    message = load_error("acmedrv.service:AcmeServiceDriver", "service", SERVICE_ORIGIN)
    assert_names(message, "acmedrv.service:AcmeServiceDriver", SERVICE_ORIGIN)
    assert "AcmeServiceDriver.validate" in message and "is async" in message
    assert "def validate(self, change: Change) -> None:" in message


def test_providers_must_be_a_tuple(write_modules):
    write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": GOOD_DEVICE + """
    class OneProvider(AcmeDeviceDriver):
        providers = "acme"
    """})
    message = load_error("acmedrv.device:OneProvider")
    assert_names(message, "acmedrv.device:OneProvider")
    assert "OneProvider.providers is 'acme'" in message
    assert "providers = ('acme',)" in message


# ----------------------------------------------------------------------- names


def test_bare_name_that_is_no_entry_point_lists_the_entry_points():
    message = load_error("noopp")
    assert_names(message, "noopp")
    assert "'noopp' is neither an entry point in isthmus.vpn.device_drivers" in message
    assert "did you mean 'noop'?" in message
    assert "Installed entry points: isthmus.vpn.device_drivers: noop, strongswan" in message


def test_entry_point_of_the_other_kind():
    message = load_error("ipsec", "device")
    assert_names(message, "ipsec")
    assert "it is a service driver (an entry point in isthmus.vpn.service_drivers)" in message
    assert "configure 'ipsec' with [service_providers] service_provider" in message


def test_whole_service_provider_value_is_recognised():
    message = load_error("VPN:acme:acmedrv.service:AcmeServiceDriver:default", "service",
                         SERVICE_ORIGIN)
    assert "this is a whole service_provider value" in message
    assert "the driver is mydriver.service:MyServiceDriver" in message


def test_hyphenated_distribution_name_in_a_dotted_path():
    message = load_error("acme-vpn.device:AcmeDeviceDriver")
    assert "is not a dotted path" in message and "'acme_vpn.device:AcmeDeviceDriver'" in message


def test_error_carries_its_parts_and_pickles():
    with pytest.raises(DriverLoadError) as info:
        load_driver("noopp", "device", origin=ORIGIN)
    err = info.value
    assert (err.spec, err.kind, err.origin) == ("noopp", "device", ORIGIN)
    assert "noopp" in err.cause and "noop" in err.fix
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err)


def test_without_origin_the_message_has_no_from_line():
    with pytest.raises(DriverLoadError) as info:
        load_driver("noopp", "device")
    assert "from:" not in str(info.value)


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="kind must be 'service' or 'device'"):
        load_driver("noop", "agent")  # type: ignore[arg-type]


# ----------------------------------------------------------------------- what loads


def test_entry_points_ipsec_and_noop_load():
    assert load_driver("ipsec", "service") is IPsecServiceDriver
    assert load_driver("noop", "device") is NoopDeviceDriver
    assert isinstance(check_driver("noop", "device"), NoopDeviceDriver)
    assert isinstance(check_driver("ipsec", "service"), IPsecServiceDriver)


@pytest.mark.parametrize("spec", ["isthmus.drivers.device.noop:NoopDeviceDriver",
                                  "isthmus.drivers.device.noop.NoopDeviceDriver",
                                  "isthmus.drivers:NoopDeviceDriver"])
def test_dotted_paths_load(spec):
    assert load_driver(spec, "device") is NoopDeviceDriver


def test_entry_point_error_names_the_dotted_path(write_modules):
    message = str(DriverLoadError("acme", "device", "c", "f", ORIGIN, "acmedrv.device:Acme"))
    assert "'acme' (entry point in isthmus.vpn.device_drivers: acmedrv.device:Acme)" in message


def test_driver_kinds_from_base_and_entry_points(write_modules):
    write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": GOOD_DEVICE,
                   "acmedrv/service.py": GOOD_SERVICE, "acmedrv/plain.py": "class Plain: pass\n"})
    assert driver_kinds("noop") == ["device"]
    assert driver_kinds("ipsec") == ["service"]
    assert driver_kinds("acmedrv.device:AcmeDeviceDriver") == ["device"]
    assert driver_kinds("acmedrv.service.AcmeServiceDriver") == ["service"]
    with pytest.raises(DriverLoadError, match="neither a service driver nor a device driver"):
        driver_kinds("acmedrv.plain:Plain")


# ----------------------------------------------------------------------- driver new


def test_driver_new_package_loads_and_its_tests_pass(tmp_path, monkeypatch, clean_modules):
    files = new_driver_package("acme-vpn", tmp_path)
    root = tmp_path / "acme-vpn"
    assert root / "src" / "acme_vpn" / "device.py" in files
    monkeypatch.syspath_prepend(str(root / "src"))

    service = check_driver("acme_vpn.service:AcmeVpnServiceDriver", "service", origin=ORIGIN)
    device = check_driver("acme_vpn.device:AcmeVpnDeviceDriver", "device", origin=ORIGIN)
    assert isinstance(service, IPsecServiceDriver)  # so changes reach the agent
    statuses = device.sync(RouterState(router_id="r1", namespace=None, services=[{
        "id": "s1", "router_id": "r1", "admin_state_up": True, "status": "ACTIVE",
        "external_v4_ip": "198.51.100.1", "ipsec_site_connections": [
            {"id": "c1", "admin_state_up": True, "peer_address": "203.0.113.9"}]}]))
    assert statuses == {"s1": "ACTIVE", "c1": "ACTIVE"}

    # The entry points the pyproject declares name these same classes, in both groups.
    project = tomllib.loads((root / "pyproject.toml").read_text())
    groups = project["project"]["entry-points"]
    assert groups["isthmus.vpn.service_drivers"] == {
        "acme-vpn": "acme_vpn.service:AcmeVpnServiceDriver"}
    assert groups["isthmus.vpn.device_drivers"] == {
        "acme-vpn": "acme_vpn.device:AcmeVpnDeviceDriver"}
    assert groups["oslo.config.opts"] == {"acme_vpn": "acme_vpn.device:list_opts"}
    assert device.agent.conf.acme_vpn.device_address == "127.0.0.1"  # registered on load

    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/test_acme_vpn.py"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "5 passed" in run.stdout  # the entry point test skips: the package is not installed


def test_check_driver_builds_device_drivers_with_a_stand_in_agent():
    driver = check_driver("noop", "device")
    assert isinstance(driver.agent, AgentContext) and driver.agent.host == "check"


def test_only_the_clearly_closest_module_is_suggested(write_modules):
    write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": GOOD_DEVICE,
                   "acmedrv/service.py": GOOD_SERVICE})
    message = load_error("acmedrv.servise:AcmeServiceDriver", "service", SERVICE_ORIGIN)
    assert "did you mean 'acmedrv.service:AcmeServiceDriver'?" in message
    assert "'acmedrv.device:AcmeServiceDriver'" not in message


def test_build_driver_passes_the_real_argument_and_wraps_constructor_errors(write_modules):
    from isthmus.drivers.loader import build_driver

    paths = write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": """
        from isthmus.drivers.device import DeviceDriver


        class AcmeDeviceDriver(DeviceDriver):
            def __init__(self, agent):
                super().__init__(agent)
                self.socket = agent.conf["vici_socket"]

            def sync(self, router):
                return {}
    """})
    agent = AgentContext(host="h1", conf={"vici_socket": "/run/charon.vici"})
    driver = build_driver("acmedrv.device:AcmeDeviceDriver", "device", agent, origin=ORIGIN)
    assert driver.agent is agent and driver.socket == "/run/charon.vici"
    with pytest.raises(DriverLoadError) as info:
        build_driver("acmedrv.device:AcmeDeviceDriver", "device", AgentContext(host="h1", conf={}),
                     origin=ORIGIN)
    message = str(info.value)
    assert_names(message, "acmedrv.device:AcmeDeviceDriver")
    assert "AcmeDeviceDriver(agent) raised KeyError: 'vici_socket'" in message
    assert f"{paths['acmedrv/device.py']}:7, in __init__" in message


def write_entry_point(write_modules, group: str, name: str, value: str) -> None:
    """Register an entry point the way an installed distribution does (a dist-info)."""
    write_modules({"acme_dist-0.1.dist-info/METADATA": "Name: acme-dist\nVersion: 0.1\n",
                   "acme_dist-0.1.dist-info/entry_points.txt": f"[{group}]\n{name} = {value}\n"})


def test_installed_entry_point_with_a_broken_target_names_both(write_modules):
    write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": GOOD_DEVICE})
    write_entry_point(write_modules, "isthmus.vpn.device_drivers", "acme",
                      "acmedrv.device:AcmeDevicDriver")
    message = load_error("acme")
    assert message.splitlines()[0] == (
        "Cannot load device driver 'acme' "
        "(entry point in isthmus.vpn.device_drivers: acmedrv.device:AcmeDevicDriver)")
    assert "did you mean 'acmedrv.device:AcmeDeviceDriver'?" in message
    assert f"from:  {ORIGIN}" in message


def test_installed_entry_point_loads_and_its_kind_is_inferred(write_modules):
    write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": GOOD_DEVICE})
    write_entry_point(write_modules, "isthmus.vpn.device_drivers", "acme",
                      "acmedrv.device:AcmeDeviceDriver")
    assert load_driver("acme", "device").__name__ == "AcmeDeviceDriver"
    assert driver_kinds("acme") == ["device"]


def test_entry_point_naming_a_module(write_modules):
    write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": GOOD_DEVICE})
    write_entry_point(write_modules, "isthmus.vpn.device_drivers", "acme", "acmedrv.device")
    message = load_error("acme")
    assert "'acmedrv.device' is a module" in message
    assert "name the class: 'acmedrv.device:AcmeDeviceDriver'" in message


# ----------------------------------------------------------------------- driver options

OPTIONS_DEVICE = """
    from oslo_config import cfg

    from isthmus.drivers.device import DeviceDriver


    class AcmeDeviceDriver(DeviceDriver):
        options = [({group!r}, [cfg.IntOpt({name!r}, default=7, help="An option.")])]

        def sync(self, router):
            return {{}}
"""


def agent_with_config(tmp_path, text: str = "") -> AgentContext:
    from isthmus import config

    path = tmp_path / "agent.conf"
    path.write_text(text)
    return AgentContext(host="h1", conf=config.load([], [str(path)]))


def test_build_driver_registers_the_driver_options_before_building_it(write_modules, tmp_path):
    from isthmus.drivers.loader import build_driver

    write_modules({"acmedrv/__init__.py": "",
                   "acmedrv/device.py": OPTIONS_DEVICE.format(group="acme", name="tunnels")})
    agent = agent_with_config(tmp_path, "[acme]\ntunnels = 9\n")
    build_driver("acmedrv.device:AcmeDeviceDriver", "device", agent, origin=ORIGIN)
    assert agent.conf.acme.tunnels == 9
    assert check_driver("acmedrv.device:AcmeDeviceDriver", "device").agent.conf.acme.tunnels == 7


def test_a_bad_option_value_names_file_and_line(write_modules, tmp_path):
    from isthmus.config import BadOptionValue
    from isthmus.drivers.loader import build_driver

    write_modules({"acmedrv/__init__.py": "",
                   "acmedrv/device.py": OPTIONS_DEVICE.format(group="acme", name="tunnels")})
    agent = agent_with_config(tmp_path, "[acme]\n\ntunnels = many\n")
    with pytest.raises(BadOptionValue) as info:
        build_driver("acmedrv.device:AcmeDeviceDriver", "device", agent, origin=ORIGIN)
    assert f"{tmp_path / 'agent.conf'}:3: option [acme] tunnels" in str(info.value)
    assert "(expected: integer value)" in str(info.value)


def test_an_option_that_clashes_with_isthmus_own_is_refused(write_modules):
    paths = write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py":
                           OPTIONS_DEVICE.format(group="vpnagent", name="workers")})
    with pytest.raises(DriverLoadError) as info:
        check_driver("acmedrv.device:AcmeDeviceDriver", "device", origin=ORIGIN)
    message = str(info.value)
    assert_names(message, "acmedrv.device:AcmeDeviceDriver")
    assert (f"AcmeDeviceDriver.options ({paths['acmedrv/device.py']}:6) declares "
            "[vpnagent] workers, which another definition") in message
    assert "give your driver a group of its own, e.g. [acmedrv]" in message


def test_options_of_the_wrong_shape_are_refused_at_load(write_modules):
    write_modules({"acmedrv/__init__.py": "", "acmedrv/device.py": """
        from oslo_config import cfg

        from isthmus.drivers.device import DeviceDriver


        class AcmeDeviceDriver(DeviceDriver):
            options = [cfg.IntOpt("tunnels")]

            def sync(self, router):
                return {}
    """})
    message = load_error("acmedrv.device:AcmeDeviceDriver")
    assert "AcmeDeviceDriver.options is [<oslo_config.cfg.IntOpt" in message
    assert "it must be a list of (group name, list of oslo.config options) pairs" in message
    assert 'options = [("mydriver", [cfg.StrOpt("endpoint", help="...")])]' in message
