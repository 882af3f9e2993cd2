"""Integers in requests and configuration are ASCII decimal, and a bad one is a clean refusal.

`"²".isdigit()` is true and `int("²")` raises ValueError: a KillFilter pid
`²` used to drop the daemon connection with a traceback and crash the CLI.
"""

from __future__ import annotations

import pytest

from isthmus.privileged import Client, NotAllowed
from isthmus.privileged.config import load_config
from isthmus.privileged.exceptions import EXIT_NOT_ALLOWED, ConfigError
from isthmus.privileged.filters import KillFilter
from isthmus.privileged.ini import ascii_int
from tests.privileged.filter_checks import allows

from .conftest import DaemonProcess, RootwrapSetup
from .test_cli import run_cli

NOT_ASCII_INTEGERS = ["²", "١٢٣", "１２", "1_000", "+5", " 5", "5\n", "", "-", "--1", "0x10", "٣"]


@pytest.mark.parametrize("text", NOT_ASCII_INTEGERS)
def test_ascii_int_refuses_what_int_alone_would_take_or_choke_on(text):
    assert ascii_int(text) is None


def test_ascii_int_reads_plain_decimals():
    assert [ascii_int(text) for text in ("0", "42", "-1", "007")] == [0, 42, -1, 7]


@pytest.mark.parametrize("pid", ["²", "١٢٣", "1_0", "+1", "-1", "0"])
def test_kill_filter_refuses_a_pid_that_is_not_an_ascii_positive_integer(pid):
    kill = KillFilter("root", "/usr/bin/sleep", "-9")
    assert not allows(kill, ["kill", "-9", pid])


def test_kill_with_unicode_digit_pid_through_daemon_is_not_allowed(daemon: DaemonProcess):
    with Client(daemon.socket_path, autostart=False) as client:
        with pytest.raises(NotAllowed):
            client.execute(["kill", "-9", "²"])
        assert client.execute(["echo", "still", "here"]).stdout == b"still here\n"
    assert "Traceback" not in daemon.log()


def test_kill_with_unicode_digit_pid_through_cli_exits_99(rootwrap: RootwrapSetup):
    result = run_cli(rootwrap.config_path, "kill", "-9", "²")
    assert result.returncode == EXIT_NOT_ALLOWED, result.stderr
    assert b"Traceback" not in result.stderr and b"Unauthorized command" in result.stderr


def test_config_integers_must_be_ascii(rootwrap: RootwrapSetup):
    rootwrap.write_config(daemon_timeout="٣")
    with pytest.raises(ConfigError, match="daemon_timeout: expected an integer"):
        load_config(rootwrap.config_path)


def test_config_unicode_digit_user_id_is_a_warning_not_a_crash(rootwrap: RootwrapSetup):
    rootwrap.write_config(daemon_allowed_users="²", daemon_allowed_groups="0")
    config = load_config(rootwrap.config_path)
    assert any("no such user '²'" in warning for warning in config.warnings)
    assert 0 in config.daemon_allowed_gids
