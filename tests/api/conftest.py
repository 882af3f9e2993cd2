from __future__ import annotations

from typing import Iterator

import httpx
import pytest

from tests.api.topology import Topology, build


@pytest.fixture
def admin(api) -> Iterator[httpx.Client]:
    with api.client("adminproj", roles="admin,member,reader", user="admin") as client:
        yield client


@pytest.fixture
def member(api) -> Iterator[httpx.Client]:
    with api.client("demoproj") as client:
        yield client


@pytest.fixture
def other(api) -> Iterator[httpx.Client]:
    with api.client("otherproj") as client:
        yield client


@pytest.fixture
def reader(api) -> Iterator[httpx.Client]:
    with api.client("demoproj", roles="reader", user="reader") as client:
        yield client


@pytest.fixture
def topo(admin, member) -> Topology:
    return build(admin, member)
