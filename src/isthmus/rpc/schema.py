"""JSON schemas of every RPC payload (version 1.1); docs/rpc.md shows the same schemas.

Tests validate real payloads against these, so the documentation and the wire
cannot drift apart. The desired state's schemas are derived from the resources'
attribute tables (:mod:`isthmus.vpn.desired_state`), so this module is
server-side: agents never load it.
"""

from __future__ import annotations

from typing import Any

from isthmus.network.router_state import ROUTER_REPORT_SCHEMA, ROUTER_SCHEMA
from isthmus.rpc.payloads import TRAFFIC_COUNTERS
from isthmus.vpn.desired_state import CONNECTION_SCHEMA, SERVICE_SCHEMA
from isthmus.vpn.site_connections import RESOURCE as CONNECTION_RESOURCE
from isthmus.vpn.site_connections import STATUS_DETAIL
from isthmus.vpn.status import REPORTED

CONNECTION = CONNECTION_SCHEMA
SERVICE = SERVICE_SCHEMA
_ID = {"type": "string", "minLength": 1}

_REPORTED = {"type": "string", "enum": list(REPORTED)}
_DETAIL_LENGTH = CONNECTION_RESOURCE.attr(STATUS_DETAIL).store.type.length  # type: ignore[union-attr]

SCHEMAS: dict[str, Any] = {
    "vpnservice_updated": {
        "type": "object", "required": ["router_id"], "additionalProperties": False,
        "properties": {"router_id": _ID}},
    "get_vpn_services_on_host": {
        "type": "object", "required": ["host"], "additionalProperties": False,
        "properties": {"host": {"type": "string"},
                       "router_ids": {"type": "array", "items": _ID}}},
    "get_vpn_services_on_host.result": {"type": "array", "items": SERVICE},
    "update_status": {
        "type": "object", "required": ["statuses"], "additionalProperties": False,
        "properties": {"statuses": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "status", "updated_pending_status", "ipsec_site_connections"],
            "properties": {
                "id": _ID, "status": _REPORTED, "updated_pending_status": {"type": "boolean"},
                "ipsec_site_connections": {"type": "object", "additionalProperties": {
                    "type": "object", "additionalProperties": False,
                    "required": ["status", "updated_pending_status"],
                    "properties": {"status": _REPORTED,
                                   "updated_pending_status": {"type": "boolean"},
                                   "status_detail": {"type": ["string", "null"],
                                                     "maxLength": _DETAIL_LENGTH},
                                   "traffic": {
                                       "type": "object", "additionalProperties": False,
                                       "properties": {k: {"type": "integer", "minimum": 0}
                                                      for k in TRAFFIC_COUNTERS}}}}}}}}}},
    "update_status.result": {"type": "integer", "minimum": 0},
    "get_routers_on_host": {
        "type": "object", "required": ["host"], "additionalProperties": False,
        "properties": {"host": {"type": "string"},
                       "router_ids": {"type": "array", "items": _ID}}},
    "get_routers_on_host.result": {"type": "array", "items": ROUTER_SCHEMA},
    "update_router_status": {
        "type": "object", "required": ["host", "routers"], "additionalProperties": False,
        "properties": {"host": {"type": "string"},
                       "routers": {"type": "array", "items": ROUTER_REPORT_SCHEMA}}},
    "update_router_status.result": {"type": "integer", "minimum": 0},
    "report_state": {
        "type": "object", "required": ["agent_state"], "additionalProperties": False,
        "properties": {"agent_state": {
            "type": "object", "required": ["host", "binary", "topic", "start_flag",
                                           "configurations"],
            "properties": {"host": {"type": "string"}, "binary": {"type": "string"},
                           "topic": {"type": "string"}, "start_flag": {"type": "boolean"},
                           "configurations": {"type": "object"}}}}},
}
