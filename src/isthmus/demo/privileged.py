"""A private privileged-helper configuration for a demo or test run, under one directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

FILTERS = Path(__file__).resolve().parents[3] / "etc" / "isthmus" / "rootwrap.d"


def shipped_filters() -> str:
    """etc/isthmus/rootwrap.d/strongswan.filters of the checkout Isthmus runs from."""
    path = FILTERS / "strongswan.filters"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run Isthmus from its source checkout "
                                "(scripts/install), which ships the filter files")
    return path.read_text()


def write_config(state_path: Path) -> Path:
    """rootwrap.conf + the shipped strongswan.filters, the daemon's socket under ``state_path``."""
    filters = state_path / "rootwrap.d"
    filters.mkdir(parents=True, exist_ok=True)
    (filters / "strongswan.filters").write_text(shipped_filters())
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
