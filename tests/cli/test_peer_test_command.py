"""``isthmus peer test`` as a command: its usage errors (exit 2) before anything is built."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from isthmus.peers.peertest import EXIT_USAGE

NOBODY = 65534


def peer_test(*args: str, as_nobody: bool = False) -> subprocess.CompletedProcess:
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] \
        if as_nobody else []
    return subprocess.run([*prefix, sys.executable, "-m", "isthmus.cli", "peer", "test", *args],
                          capture_output=True, text=True, timeout=60)


def test_not_root_is_a_usage_error():
    result = peer_test("some-id", "--url", "http://127.0.0.1:9", as_nobody=os.geteuid() == 0)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "needs root" in result.stderr and "sudo" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="past the root check only as root")
def test_an_unreachable_api_is_a_usage_error():
    result = peer_test("some-id", "--url", "http://127.0.0.1:9")   # port 9: discard, closed
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "cannot reach the Isthmus API at http://127.0.0.1:9" in result.stderr


def test_bridge_and_config_file_are_exclusive():
    result = peer_test("some-id", "--bridge", "br-ex", "--config-file", "/etc/isthmus.conf")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr
