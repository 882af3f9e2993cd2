"""Fixtures of the VPN domain tests."""

from tests.domain import domain  # noqa: F401  (a fixture)
