"""Fixtures for the peer tests: root, two sites in namespaces, and whether pluto can run."""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest

from isthmus.demo.sites import Sites
from tests.peers import libreswan
from isthmus.peers.trial import CHARON


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/peers/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def sites() -> Iterator[Sites]:
    """Routers ra/rb and hosts ha/hb (see :class:`Sites`), removed whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("peer tests need root (network namespaces, charon, pluto)")
    assert os.path.exists(CHARON), "strongSwan is missing: run scripts/install --test"
    topology = Sites(prefix="ipt" + uuid.uuid4().hex[:5])
    try:
        topology.create()
        yield topology
    finally:
        topology.destroy()


@pytest.fixture
def pluto_available() -> None:
    """Skip when libreswan is not unpacked; in CI (ISTHMUS_TEST_REQUIRE_PLUTO=1) fail."""
    reason = libreswan.missing()
    if reason:
        if os.environ.get("ISTHMUS_TEST_REQUIRE_PLUTO") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


# Isthmus itself, as the end-to-end tests run it (on these tests' own ``sites``), with a
# short one-way window so that the one-way case needs no long wait.
from tests.e2e.conftest import (  # noqa: E402,F401
    fabric, privileged_conf, running_isthmus, sdk, short_tmp)

ONE_WAY_AFTER_S = 3


@pytest.fixture
def isthmus(short_tmp, privileged_conf, sites):
    yield from running_isthmus(short_tmp, privileged_conf,
                               **{"strongswan.one_way_after": ONE_WAY_AFTER_S})
