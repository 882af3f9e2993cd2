"""Start-up errors as an operator sees them: one line naming the option, the cause, the fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.test_commands import ISTHMUS, free_port

HANG_GUARD_S = 90


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ISTHMUS, *args], capture_output=True, text=True,
                          timeout=HANG_GUARD_S)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("isthmus: ")]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def write_conf(tmp_path: Path, text: str) -> Path:
    conf = tmp_path / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {free_port()}\n"
                    f"state_path = {tmp_path}\n{text}")
    return conf


@pytest.mark.parametrize("command", [["server"], ["db", "upgrade"]])
def test_unknown_database_dialect(tmp_path, command):
    conf = write_conf(tmp_path, "[database]\nconnection = nosuchdb://x/y\n")
    result = run(*command, "--config-file", str(conf))
    assert result.returncode == 1
    line = one_error_line(result)
    assert f"option [database] connection in {conf}" in line
    assert "unknown database dialect 'nosuchdb'" in line
    assert "postgresql+psycopg://" in line   # the fix: what to write instead


@pytest.mark.parametrize("command", [["server"], ["db", "upgrade"]])
def test_unreachable_database_exits_1_after_startup_timeout(tmp_path, command):
    conf = write_conf(tmp_path, "[database]\nstartup_timeout = 2\nconnection = "
                      f"postgresql+psycopg://isthmus:s3cret@127.0.0.1:{free_port()}/isthmus\n")
    result = run(*command, "--config-file", str(conf))
    assert result.returncode == 1
    line = one_error_line(result)
    assert f"option [database] connection in {conf}" in line
    assert "did not answer within startup_timeout (2 s)" in line
    assert "Connection refused" in line
    assert "s3cret" not in result.stderr + result.stdout


@pytest.mark.parametrize("command", [["server"], ["agent"]])
def test_unknown_transport_url_scheme(tmp_path, command):
    conf = write_conf(tmp_path, "transport_url = nosuchbus://user:s3cret@127.0.0.1:5672/\n")
    result = run(*command, "--config-file", str(conf))
    assert result.returncode == 1
    line = one_error_line(result)
    assert f"option [DEFAULT] transport_url in {conf}" in line
    assert "no message bus driver for the scheme 'nosuchbus'" in line
    assert "rabbit://" in line
    assert "s3cret" not in result.stderr + result.stdout


def test_malformed_ini_line_names_file_and_line(tmp_path):
    conf = tmp_path / "isthmus.conf"
    conf.write_text("[DEFAULT]\nbind_host = 127.0.0.1\nthis is not ini\n")
    result = run("server", "--config-file", str(conf))
    assert result.returncode == 2
    line = one_error_line(result)
    assert f"{conf}:3" in line and "No ':' or '=' found" in line


def test_value_of_the_wrong_type_names_file_line_option_and_type(tmp_path):
    conf = tmp_path / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\n\n[vpnagent]\nworkers = many\n")
    result = run("agent", "--config-file", str(conf))
    assert result.returncode == 2
    line = one_error_line(result)
    assert f"{conf}:5: option [vpnagent] workers" in line
    assert "'many'" in line and "expected: integer value" in line
