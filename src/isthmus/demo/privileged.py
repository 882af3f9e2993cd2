"""A private privileged-helper configuration for a demo or test run, under one directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

FILTERS = Path(__file__).resolve().parents[3] / "etc" / "isthmus" / "rootwrap.d"


def shipped_filters() -> dict[str, str]:
    """Every filter file of etc/isthmus/rootwrap.d/ of the checkout Isthmus runs from
    (strongswan.filters for charon, agent.filters for routers), by file name."""
    files = {path.name: path.read_text() for path in sorted(FILTERS.glob("*.filters"))}
    if "strongswan.filters" not in files:
        raise FileNotFoundError(f"{FILTERS / 'strongswan.filters'} is missing: run Isthmus "
                                "from its source checkout (scripts/install), which ships the "
                                "filter files")
    return files


def write_config(state_path: Path) -> Path:
    """rootwrap.conf + the shipped filter files, the daemon's socket under ``state_path``."""
    filters = state_path / "rootwrap.d"
    filters.mkdir(parents=True, exist_ok=True)
    for name, text in shipped_filters().items():
        (filters / name).write_text(text)
        os.chmod(filters / name, 0o644)
    conf = state_path / "rootwrap.conf"
    conf.write_text(
        "[DEFAULT]\n"
        f"filters_path = {filters}\n"
        f"exec_dirs = {Path(sys.executable).parent},/usr/sbin,/usr/bin,/sbin,/bin\n"
        "use_syslog = False\n"
        f"daemon_socket = {state_path}/rootwrap.sock\n"
        "daemon_allowed_users = root\n"
        "daemon_timeout = 0\n")
    for path in (state_path, filters):   # the helper refuses files others could write
        os.chmod(path, 0o755)
    return conf


def stop_daemon(conf: Path) -> None:
    """Stop the rootwrap daemon a Client started for ``conf``."""
    found = subprocess.run(["pgrep", "-f", str(conf)], capture_output=True, text=True)
    for pid in found.stdout.split():
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass


def start_daemon(conf: Path, log: Path) -> None:
    """Start the rootwrap daemon for ``conf`` now, its log and audit lines going to
    ``log`` rather than to the terminal (Clients then find it listening)."""
    with open(log, "ab") as err:
        process = subprocess.Popen([sys.executable, "-m", "isthmus.privileged.daemon", str(conf)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                   close_fds=True, start_new_session=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    process.stdout.close()
    threading.Thread(target=process.wait, name="rootwrap-daemon-reaper", daemon=True).start()
    if not line.startswith(b"ready"):
        raise RuntimeError(f"the privileged helper did not start (see {log}): {line!r}")
