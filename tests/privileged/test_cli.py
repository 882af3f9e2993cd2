"""`isthmus-rootwrap`: oslo.rootwrap's exit codes, pass-through, start-up footprint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from .conftest import RootwrapSetup

SCRIPT = os.path.join(os.path.dirname(sys.executable), "isthmus-rootwrap")


def cli_command() -> list[str]:
    if os.path.exists(SCRIPT):
        return [SCRIPT]
    return [sys.executable, "-m", "isthmus.privileged.cli"]


def run_cli(*args: str, stdin: bytes | None = None, sudo: bool = False) -> subprocess.CompletedProcess:
    prefix = ["sudo", "-n"] if sudo else []
    return subprocess.run(prefix + cli_command() + list(args), input=stdin, capture_output=True, timeout=30)


def test_runs_allowed_command_with_its_output_and_exit_code(rootwrap: RootwrapSetup):
    result = run_cli(rootwrap.config_path, "sh", "-c", "echo out; echo err >&2; exit 5")
    assert (result.returncode, result.stdout, result.stderr) == (5, b"out\n", b"err\n")


def test_stdin_passes_through(rootwrap: RootwrapSetup):
    assert run_cli(rootwrap.config_path, "cat", stdin=b"piped").stdout == b"piped"


def test_no_command_exits_98(rootwrap: RootwrapSetup):
    for args in ((), (rootwrap.config_path,)):
        result = run_cli(*args)
        assert result.returncode == 98 and b"No command specified" in result.stderr


def test_unauthorized_exits_99(rootwrap: RootwrapSetup):
    result = run_cli(rootwrap.config_path, "rm", "-rf", "/")
    assert result.returncode == 99
    assert b"Unauthorized command: rm -rf / (no filter matched)" in result.stderr


def test_executable_not_found_exits_96(rootwrap: RootwrapSetup):
    rootwrap.write_filters("[Filters]\nghost: CommandFilter, ghost-tool, root\n", name="ghost.filters")
    result = run_cli(rootwrap.config_path, "ghost-tool")
    assert result.returncode == 96 and b"Executable not found: ghost-tool (filter match = ghost)" in result.stderr


@pytest.mark.parametrize("body, message", [
    (None, b"Incorrect configuration file"),
    ("[DEFAULT]\nexec_dirs = /bin\n", b"missing filters_path"),
    ("[DEFAULT]\nfilters_path = /a\nuse_syslog = oui\n", b"Incorrect value in"),
])
def test_config_errors_exit_97(rootwrap: RootwrapSetup, body, message):
    if body is None:
        path = os.path.join(rootwrap.root, "missing.conf")
    else:
        path = os.path.join(rootwrap.root, "bad.conf")
        with open(path, "w") as handle:
            handle.write(body)
    result = run_cli(path, "true")
    assert result.returncode == 97 and message in result.stderr


def test_signal_killed_command_exits_128_plus_n(rootwrap: RootwrapSetup):
    assert run_cli(rootwrap.config_path, "sh", "-c", "kill -9 $$").returncode == 137


def test_bad_filter_entries_are_warned_about_and_the_rest_works(rootwrap: RootwrapSetup):
    rootwrap.write_filters("[Filters]\ntypo: CommandFiltr, true, root\n", name="broken.filters")
    result = run_cli(rootwrap.config_path, "echo", "ok")
    assert result.returncode == 0 and result.stdout == b"ok\n"
    assert b"broken.filters:2: typo: unknown filter class 'CommandFiltr'" in result.stderr


def test_environment_is_clean(rootwrap: RootwrapSetup):
    result = subprocess.run(cli_command() + [rootwrap.config_path, "env"], capture_output=True,
                            env={**os.environ, "LD_PRELOAD": "", "SECRET": "x", "PYTHONPATH": "/tmp"})
    names = {line.split("=", 1)[0] for line in result.stdout.decode().splitlines()}
    assert names == {"PATH", "LANG"}


def test_bypass_attempts_exit_99(rootwrap: RootwrapSetup):
    for argv in (["ip", "-force", "-batch", "-"], ["ip", "netns", "exec", "x", "/tmp/ip"],
                 ["/tmp/true"], ["sleep", "1;id"]):
        assert run_cli(rootwrap.config_path, *argv).returncode == 99, argv


def test_import_footprint_is_small(rootwrap: RootwrapSetup):
    code = (
        "import sys; before = set(sys.modules)\n"
        "from isthmus.privileged.cli import main\n"
        f"rc = main(['isthmus-rootwrap', {rootwrap.config_path!r}, 'true'])\n"
        "heavy = {'logging', 'subprocess', 're', 'dataclasses', 'typing', 'inspect', 'enum', 'configparser',"
        " 'pyroute2', 'oslo_config', 'oslo_rootwrap', 'isthmus.privileged.client', 'isthmus.privileged.daemon'}\n"
        "print(rc, sorted((set(sys.modules) - before) & heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0 []"


@pytest.mark.skipif(shutil.which("sudo") is None, reason="sudo is not installed (apt-get install sudo)")
def test_through_sudo(rootwrap: RootwrapSetup):
    result = run_cli(rootwrap.config_path, "id", "-u", sudo=True)
    assert result.returncode == 0 and result.stdout == b"0\n"
    assert run_cli(rootwrap.config_path, "rm", "x", sudo=True).returncode == 99


def test_fast_launcher_without_site_packages(rootwrap: RootwrapSetup):
    import isthmus.privileged.cli as cli_module

    launcher = [sys.executable, "-I", "-S", cli_module.__file__]
    ok = subprocess.run(launcher + [rootwrap.config_path, "echo", "fast"], capture_output=True)
    assert ok.returncode == 0 and ok.stdout == b"fast\n"
    refused = subprocess.run(launcher + [rootwrap.config_path, "rm", "x"], capture_output=True)
    assert refused.returncode == 99 and refused.stderr.startswith(b"isthmus-rootwrap: Unauthorized command")


def test_rlimit_nofile_is_lowered_for_the_command(rootwrap: RootwrapSetup):
    rootwrap.write_config(rlimit_nofile="100")
    assert run_cli(rootwrap.config_path, "sh", "-c", "ulimit -n").stdout == b"100\n"
