"""An agent process loads no server code: no database layer, API, domain or SQLAlchemy.

The agent runs on every network node; importing the server there costs start-up
time and memory and puts the database layer where it has no business (STYLE.md,
"Process boundaries in imports"). Each check runs in a fresh interpreter, so
nothing the test process already imported can hide an import.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

SERVER_ONLY = ("isthmus.db", "isthmus.api", "isthmus.vpn", "isthmus.network",
               "isthmus.services", "isthmus.server", "isthmus.dashboard", "sqlalchemy", "alembic",
               "falcon")

AGENT_MODULES = ["isthmus.agent", "isthmus.agent.service", "isthmus.drivers.device.noop",
                 "isthmus.drivers.device.strongswan.driver", "isthmus.drivers.loader",
                 "isthmus.agent.routers", "isthmus.agent.routers.builder"]

HANG_GUARD_S = 60


def server_only(modules: list[str]) -> list[str]:
    return sorted(m for m in modules
                  if any(m == top or m.startswith(top + ".") for top in SERVER_ONLY))


@pytest.mark.parametrize("module", AGENT_MODULES)
def test_agent_module_imports_no_server_module(module):
    script = f"import sys, {module}; print('\\n'.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, timeout=HANG_GUARD_S).stdout.split()
    assert module in loaded
    assert server_only(loaded) == [], f"importing {module} loaded server-side modules"


def test_isthmus_agent_command_imports_no_server_module(tmp_path):
    """The real ``isthmus agent``, up to a started agent; ``-X importtime`` lists what it loaded."""
    conf = tmp_path / "agent.conf"
    conf.write_text("[DEFAULT]\nhost = agent-imports\ntransport_url = fake://\n"
                    f"state_path = {tmp_path}\n")
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "isthmus.cli", "agent",
                             "--config-file", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "VPN agent on host agent-imports started" in line:
                started.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(HANG_GUARD_S), "".join(lines[-20:])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(HANG_GUARD_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    reader.join(HANG_GUARD_S)
    # "import time: self [us] | cumulative | imported package", the name indented by depth.
    imported = [line.rpartition("|")[2].strip() for line in lines
                if line.startswith("import time:")]
    assert "isthmus.agent.agent" in imported
    assert server_only(imported) == []
