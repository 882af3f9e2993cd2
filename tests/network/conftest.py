"""Fixtures of the networking tests."""

from tests.domain import domain  # noqa: F401  (a fixture)
