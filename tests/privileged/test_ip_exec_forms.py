"""`ip` forms that execute programs, attacked end to end through the CLI and the daemon.

`ip vrf exec default /bin/sh -c ...` ran a shell as root through IpFilter
(oslo.rootwrap 7.10's IpFilter too), also abbreviated, after `-n NS`,
nested inside an allowed `ip netns exec NS ip ...` and behind a
ChainingRegExpFilter. Each attempt here must be refused (NotAllowed, CLI
exit 99) and the payload must not have run: its marker file stays absent.
`ip vrf exec` itself may or may not work on the test kernel; what is
checked is the refusal, not the command's failure.

Two filter sets are attacked: Neutron's `ip` lines (IpFilter +
IpNetnsExecFilter, as in tests/privileged/fixtures) and the shipped
etc/isthmus/rootwrap.d/agent.filters allow-list.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from isthmus.privileged import Client, NotAllowed
from isthmus.privileged.exceptions import EXIT_NOT_ALLOWED

from .conftest import DaemonProcess, RootwrapSetup, make_world_readable_dir, require_root, start_daemon
from .test_cli import run_cli

REPO = Path(__file__).resolve().parents[2]
NS = "NS"  # placeholder in the forms below, replaced by the test namespace's name
NEUTRON_FILTERS = """
[Filters]
ip: IpFilter, ip, root
ip_exec: IpNetnsExecFilter, ip, root
"""
# Present in both sets: a chaining filter to hide behind, and a harmless command.
COMMON_FILTERS = """
[Filters]
nice: ChainingRegExpFilter, nice, root, nice, -n, -?[0-9]+
echo: CommandFilter, echo, root
"""

# Argument lists after `ip`, ending just before the program ip would run.
VRF_EXEC_FORMS = [
    ["vrf", "exec", "default"],
    ["vr", "e", "default"],
    ["v", "exe", "default"],
    ["-n", NS, "vrf", "exec", "default"],
    ["-netns", NS, "vr", "e", "default"],
    ["--netns", NS, "vrf", "exec", "default"],
    ["-o", "-d", "vrf", "exec", "default"],
    ["--", "vrf", "exec", "default"],
    ["-c", "vrf", "exec", "default"],
    ["-l", "1", "vrf", "exec", "default"],
    ["-rc", "65536", "vrf", "exec", "default"],
    ["-f", "inet", "vrf", "exec", "default"],
]
NESTED_FORMS = [
    ["netns", "exec", NS, "ip", "vrf", "exec", "default"],
    ["net", "e", NS, "ip", "vr", "e", "default"],
    ["-n", NS, "netns", "exec", NS, "ip", "-n", NS, "vrf", "exec", "default"],
    ["netns", "exec", NS, "ip", "netns", "exec", NS],
    ["netns", "exec", NS, "ip", "net", "e", NS],
    ["-all", "netns", "exec"],
    ["netns", "exec", NS],
    ["net", "e", NS],
]
BATCH_FORMS = [["-b", "-"], ["-bat", "-"], ["--b", "-"], ["-force", "-batch", "-"], ["-o", "--batch", "-"]]


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    require_root()
    name = f"isth-ipx-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def _setup(filter_files: dict[str, str]) -> RootwrapSetup:
    setup = RootwrapSetup(make_world_readable_dir("isthmus-ipx-"))
    for name, text in filter_files.items():
        setup.write_filters(text, name=name)
    setup.write_config()
    return setup


@pytest.fixture(scope="module", params=["neutron", "shipped"])
def setup(request, namespace) -> Iterator[RootwrapSetup]:
    files = {"common.filters": COMMON_FILTERS}
    if request.param == "neutron":
        files["ip.filters"] = NEUTRON_FILTERS
    else:
        files["agent.filters"] = (REPO / "etc" / "isthmus" / "rootwrap.d" / "agent.filters").read_text()
    built = _setup(files)
    try:
        yield built
    finally:
        shutil.rmtree(built.root, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon(setup: RootwrapSetup) -> Iterator[DaemonProcess]:
    process = start_daemon(setup)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def marker(setup: RootwrapSetup) -> Iterator[Path]:
    path = setup.root / f"pwned-{uuid.uuid4().hex[:6]}"
    yield path
    path.unlink(missing_ok=True)


def payload(marker: Path) -> list[str]:
    return ["/bin/sh", "-c", f"id > {marker}"]


def attack_argvs(marker: Path, namespace: str) -> list[list[str]]:
    forms = [["ip", *form, *payload(marker)] for form in VRF_EXEC_FORMS + NESTED_FORMS]
    forms.append(["nice", "-n", "5", "ip", "vrf", "exec", "default", *payload(marker)])
    forms.append(["nice", "-n", "5", "ip", "-n", NS, "vr", "e", "default", *payload(marker)])
    return [[namespace if word == NS else word for word in form] for form in forms]


ATTACK_IDS = [" ".join(form) for form in VRF_EXEC_FORMS + NESTED_FORMS] + ["nice vrf exec", "nice -n vr e"]


@pytest.mark.parametrize("index", range(len(ATTACK_IDS)), ids=ATTACK_IDS)
def test_exec_form_through_daemon_is_refused_and_runs_nothing(
    daemon: DaemonProcess, namespace: str, marker: Path, index: int
):
    argv = attack_argvs(marker, namespace)[index]
    with Client(daemon.socket_path, autostart=False) as client:
        with pytest.raises(NotAllowed):
            client.execute(argv, timeout=30)
        assert not marker.exists(), f"{argv} ran: {marker.read_text()}"
        assert client.execute(["echo", "still", "here"]).stdout == b"still here\n"


@pytest.mark.parametrize("index", range(len(ATTACK_IDS)), ids=ATTACK_IDS)
def test_exec_form_through_cli_is_refused_and_runs_nothing(
    setup: RootwrapSetup, namespace: str, marker: Path, index: int
):
    argv = attack_argvs(marker, namespace)[index]
    result = run_cli(setup.config_path, *argv)
    assert result.returncode == EXIT_NOT_ALLOWED, result.stderr
    assert b"Unauthorized command" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("form", BATCH_FORMS, ids=" ".join)
def test_batch_on_stdin_is_refused_through_daemon_and_cli(
    daemon: DaemonProcess, namespace: str, marker: Path, form
):
    commands = f"vrf exec default /bin/sh -c 'id > {marker}'\nnetns exec {namespace} /bin/sh -c 'id > {marker}'\n"
    with Client(daemon.socket_path, autostart=False) as client:
        with pytest.raises(NotAllowed):
            client.execute(["ip", *form], stdin=commands.encode(), timeout=30)
    result = run_cli(daemon.setup.config_path, "ip", *form, stdin=commands.encode())
    assert result.returncode == EXIT_NOT_ALLOWED
    assert not marker.exists()


def test_the_forms_the_agent_uses_still_run(daemon: DaemonProcess, namespace: str):
    with Client(daemon.socket_path, autostart=False) as client:
        assert b"lo:" in client.execute(["ip", "-n", namespace, "-o", "link"]).stdout
        assert b"lo:" in client.execute(["ip", "net", "e", namespace, "ip", "-o", "link", "show"]).stdout
        assert namespace.encode() in client.execute(["ip", "netns", "list"]).stdout
    assert b"lo:" in run_cli(daemon.setup.config_path, "ip", "-n", namespace, "-o", "link").stdout
