"""``isthmus demo --check`` as a newcomer runs it: exit 0, and nothing left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ISTHMUS = str(Path(sys.executable).with_name("isthmus"))


def test_demo_check_passes_and_cleans_up():
    if os.geteuid() != 0:
        pytest.skip("the demo needs root")
    before = set(subprocess.run(["ip", "netns", "list"], capture_output=True,
                                text=True).stdout.split())
    result = subprocess.run([ISTHMUS, "demo", "--check"], capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "traffic crossed the tunnel" in result.stdout
    assert "0% packet loss" in result.stdout
    after = set(subprocess.run(["ip", "netns", "list"], capture_output=True,
                               text=True).stdout.split())
    assert after <= before, f"namespaces left behind: {after - before}"
    demo_dirs = [p for p in Path("/tmp").glob("isthmus-demo-*")]
    assert not demo_dirs, f"files left behind: {demo_dirs}"
    alive = subprocess.run(["pgrep", "-f", "isthmus-demo-"], capture_output=True, text=True)
    assert not alive.stdout.strip(), f"processes left behind: {alive.stdout}"
