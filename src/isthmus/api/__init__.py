"""The HTTP API: Neutron-compatible routes, bodies, errors and discovery."""

from isthmus.api.app import create_app, with_keystone

__all__ = ["create_app", "with_keystone"]
