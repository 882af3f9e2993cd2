"""``isthmus demo --check`` as a newcomer runs it: exit 0, and nothing left behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ISTHMUS = str(Path(sys.executable).with_name("isthmus"))


def test_demo_check_passes_and_cleans_up():
    if os.geteuid() != 0:
        pytest.skip("the demo needs root")
    charons_before = _charons()
    result = subprocess.run([ISTHMUS, "demo", "--check"], capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "traffic crossed the tunnel" in result.stdout
    assert "0% packet loss" in result.stdout
    # Only this run's names: other tests may build namespaces on the same host meanwhile.
    prefix = re.search(r"network namespaces (ism[0-9a-f]+)-\*", result.stdout).group(1)
    state = re.search(r"charon processes and (/\S+)", result.stdout).group(1)
    left = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                      text=True).stdout.split() if n.startswith(prefix)]
    assert not left, f"namespaces left behind: {left}"
    links = [line for line in subprocess.run(["ip", "-o", "link"], capture_output=True,
                                             text=True).stdout.splitlines()
             if f": {prefix}" in line]
    assert not links, f"bridges or veths left behind: {links}"
    assert not Path(state).exists(), f"files left behind: {state}"
    alive = subprocess.run(["pgrep", "-f", state], capture_output=True, text=True)
    assert not alive.stdout.strip(), f"processes left behind: {alive.stdout}"
    orphans = [pid for pid in _charons() - charons_before if _netns_inode(pid) not in _named_netns()]
    assert not orphans, f"charon processes left behind in deleted namespaces: {orphans}"


def _charons() -> set[int]:
    out = subprocess.run(["pgrep", "-x", "charon"], capture_output=True, text=True).stdout
    return {int(pid) for pid in out.split()}


def _netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None  # gone meanwhile


def _named_netns() -> set[int | None]:
    named: set[int | None] = {None, os.stat("/proc/self/ns/net").st_ino}
    for entry in Path("/run/netns").glob("*"):
        try:
            named.add(entry.stat().st_ino)
        except OSError:
            pass
    return named


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_stopped_after_a_successful_run_exits_0_and_cleans_up(signum):
    if os.geteuid() != 0:
        pytest.skip("the demo needs root")
    proc = subprocess.Popen([ISTHMUS, "demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        output = []
        for line in proc.stdout:   # the demo waits for Ctrl-C after this line
            output.append(line)
            if "Ctrl-C cleans up" in line:
                break
        assert "traffic crossed the tunnel" in "".join(output), "".join(output)
        proc.send_signal(signum)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output.append(rest)
    assert proc.returncode == 0, "".join(output)
    assert "removed namespaces" in rest
    prefix = re.search(r"network namespaces (ism[0-9a-f]+)-\*", "".join(output)).group(1)
    left = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                      text=True).stdout.split() if n.startswith(prefix)]
    assert not left, f"namespaces left behind: {left}"
