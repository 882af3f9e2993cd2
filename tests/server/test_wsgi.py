"""``isthmus.wsgi:application``: the server an external WSGI server (uWSGI, gunicorn) runs.

Here waitress stands in for them, in a process of its own, the way they import it:
the configuration comes from ``ISTHMUS_CONFIG_FILE`` and the server is built when
``application`` is first looked up.
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.cli.test_commands import ISTHMUS, free_port, wait_for

SERVE = ("import sys, waitress, isthmus.wsgi as entry; "
         "waitress.serve(entry.application, host='127.0.0.1', port=int(sys.argv[1]))")


def test_the_entry_point_serves_the_api_from_the_config_in_the_environment(tmp_path):
    conf = tmp_path / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\ntransport_url = fake://\n")
    subprocess.run([ISTHMUS, "db", "upgrade", "--config-file", str(conf)], check=True,
                   capture_output=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(port)],
                            env=dict(os.environ, ISTHMUS_CONFIG_FILE=f"{conf}"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/", proc)
        created = httpx.post(f"http://127.0.0.1:{port}/v2.0/vpn/ikepolicies",
                             json={"ikepolicy": {"name": "via-wsgi"}})
        assert created.status_code == 201, created.text
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "Lease 'background' taken" in output, output


def test_without_the_variable_the_error_says_what_to_set(monkeypatch):
    from isthmus import wsgi
    from isthmus.lifecycle import StartupError

    monkeypatch.delenv("ISTHMUS_CONFIG_FILE", raising=False)
    with pytest.raises(StartupError, match="ISTHMUS_CONFIG_FILE is not set"):
        wsgi.application
