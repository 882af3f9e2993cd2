"""End-to-end fixtures: real namespaces, real charon, the real privileged helper."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import openstack
import pytest

from isthmus.demo import privileged
from isthmus.demo.run import strongswan_settings
from tests.agent.conftest import Embedded, running_embedded
from isthmus.demo.sites import Fabric, Sites, stop_charons_under

CHARON = "/usr/lib/ipsec/charon"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short state directory: the privileged daemon's UNIX socket path must fit 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ism-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def privileged_conf(short_tmp) -> Path:
    """rootwrap.conf + the shipped strongswan.filters, pointed at this test's state dir."""
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root (network namespaces, charon)")
    assert os.path.exists(CHARON), "strongSwan is missing: run scripts/install --test"
    return privileged.write_config(short_tmp)


@pytest.fixture
def sites() -> Iterator[Sites]:
    topology = Sites()
    try:
        topology.create()
        yield topology
    finally:
        topology.destroy()


@pytest.fixture
def fabric(privileged_conf) -> Iterator[Fabric]:
    """The demo's physical world (:class:`Fabric`, a random prefix), removed afterwards."""
    made = Fabric()
    try:
        made.create()
        yield made
    finally:
        made.destroy()


def running_isthmus(short_tmp: Path, privileged_conf: Path,
                    **settings: Any) -> Iterator[Embedded]:
    """Isthmus in this process on the strongSwan driver (plus ``settings``), then
    everything it started stopped: agent, API, privileged daemon, charons. ``settings``
may replace the driver's own (a site's, :func:`isthmus.demo.run.site_settings`)."""
    try:
        with running_embedded(short_tmp, **{**strongswan_settings(privileged_conf),
                                            **settings}) as env:
            yield env
    finally:
        privileged.stop_daemon(privileged_conf)
        stop_charons_under(short_tmp)


@pytest.fixture
def isthmus(short_tmp, privileged_conf, sites) -> Iterator[Embedded]:
    yield from running_isthmus(short_tmp, privileged_conf)


def sdk_for(url: str) -> Iterator[Any]:
    """openstacksdk on the API at ``url`` without authentication, closed afterwards."""
    conn = openstack.connect(auth_type="none", network_endpoint_override=f"{url}/",
                             load_yaml_config=False, load_envvars=False)
    yield conn
    conn.close()


@pytest.fixture
def sdk(isthmus):
    yield from sdk_for(isthmus.api.url)
