"""The in-process namespace fast path, and its authorization through the daemon."""

from __future__ import annotations

import os
import subprocess

import pytest

from isthmus.privileged import Client, CommandFailed, NotAllowed
from isthmus.privileged.netns import NetnsError, create_namespace, delete_namespace, list_namespaces

from .conftest import RootwrapSetup, require_root, start_daemon


def ip_netns_list() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def test_create_list_delete_interoperate_with_iproute2(netns_names):
    name = netns_names[0]
    create_namespace(name)
    assert name in list_namespaces()
    assert name in ip_netns_list()
    # A real, empty namespace: only loopback inside.
    links = subprocess.run(["ip", "netns", "exec", name, "ip", "-o", "link"],
                           capture_output=True, text=True, check=True).stdout
    assert links.count("\n") == 1 and "lo:" in links
    delete_namespace(name)
    assert name not in list_namespaces() and name not in ip_netns_list()


def test_namespaces_made_by_ip_are_listed_and_deletable(netns_names):
    name = netns_names[1]
    subprocess.run(["ip", "netns", "add", name], check=True)
    assert name in list_namespaces()
    delete_namespace(name)
    assert name not in ip_netns_list()


def test_errors_are_specific(netns_names):
    name = netns_names[0]
    create_namespace(name)
    with pytest.raises(NetnsError, match="already exists"):
        create_namespace(name)
    delete_namespace(name)
    with pytest.raises(NetnsError, match="does not exist"):
        delete_namespace(name)
    for bad in ("", ".", "..", "a/b", "-x", "x" * 300):
        with pytest.raises(NetnsError, match="invalid network namespace name"):
            create_namespace(bad)


def test_calling_process_stays_in_its_own_namespace(netns_names):
    before = os.readlink("/proc/self/ns/net")
    create_namespace(netns_names[0])
    assert os.readlink("/proc/self/ns/net") == before
    assert os.readlink(f"/proc/self/task/{os.getpid()}/ns/net") == before


def test_fast_path_through_daemon(shared_daemon, netns_names):
    with Client(shared_daemon.socket_path, autostart=False) as client:
        name = netns_names[0]
        client.add_netns(name)
        assert name in client.list_netns()
        assert name in ip_netns_list()
        with pytest.raises(CommandFailed, match="already exists"):
            client.add_netns(name)
        client.delete_netns(name)
        assert name not in client.list_netns()
    lines = [line for line in shared_daemon.audit_lines() if name in line]
    assert any("cmd=ip netns add" in line and "(in-process)" in line for line in lines)


def test_fast_path_is_authorized_by_the_same_filters(rootwrap: RootwrapSetup, netns_names):
    require_root()
    for path in rootwrap.filters_dir.iterdir():
        path.unlink()
    # Only `ip netns list` allowed: adding must be refused like `ip netns add`.
    rootwrap.write_filters(r"""
        [Filters]
        ip_list: RegExpFilter, ip, root, ip, netns, list
        """)
    daemon = start_daemon(rootwrap)
    try:
        with Client(rootwrap.socket_path, autostart=False) as client:
            assert isinstance(client.list_netns(), list)
            with pytest.raises(NotAllowed):
                client.add_netns(netns_names[0])
            with pytest.raises(NotAllowed):
                client.delete_netns(netns_names[0])
        assert netns_names[0] not in ip_netns_list()
    finally:
        daemon.stop()
