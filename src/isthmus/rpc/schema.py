"""JSON schemas of every RPC payload (version 1.3); docs/rpc.md shows the same schemas.

Tests validate real payloads against these, so the documentation and the wire
cannot drift apart. The desired state's schemas are derived from the resources'
attribute tables (:mod:`isthmus.vpn.desired_state`), so this module is
server-side: agents never load it.
"""

from __future__ import annotations

from typing import Any

from isthmus import diagnosis
from isthmus.network.router_state import ROUTER_REPORT_SCHEMA, ROUTER_SCHEMA
from isthmus.rpc.payloads import TRAFFIC_COUNTERS
from isthmus.vpn.desired_state import CONNECTION_SCHEMA, SERVICE_SCHEMA
from isthmus.vpn.status import REPORTED

CONNECTION = CONNECTION_SCHEMA
SERVICE = SERVICE_SCHEMA
_ID = {"type": "string", "minLength": 1}

_REPORTED = {"type": "string", "enum": list(REPORTED)}
_TEXT = {"type": "string", "maxLength": 1024}
_NULLABLE_TEXT = {"type": ["string", "null"], "maxLength": 1024}
_SA_INFO = {"type": ["object", "null"], "additionalProperties": False, "properties": {
    **{key: {"type": "string", "maxLength": 128} for key in (
        "state", "encryption", "integrity", "prf", "dh_group", "protocol", "mode",
        "local_spi", "remote_spi", "established_at", "rekey_at")},
    "version": {"type": "integer", "enum": [1, 2]}}}
_FAILURE = {"type": "object", "additionalProperties": False,
            "required": ["reason", "message", "at"],
            "properties": {"reason": {"type": "string", "enum": sorted(diagnosis.REASONS)},
                           "message": _TEXT, "at": {"type": "string", "maxLength": 64}}}
STATUS_DETAIL_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"reason": {"type": ["string", "null"],
                              "enum": [None, *sorted(diagnosis.REASONS)]},
                   "message": _NULLABLE_TEXT, "ike": _SA_INFO, "child": _SA_INFO,
                   "last_failure": {"oneOf": [{"type": "null"}, _FAILURE]},
                   "warnings": {"type": "array", "maxItems": 8, "items": _FAILURE},
                   "simulated": {"type": "boolean"}}}
"""A connection's status detail (RPC 1.3; :class:`isthmus.diagnosis.StatusDetail`)."""

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
                                   # 1.3: an object; before, a sentence.
                                   "status_detail": {"oneOf": [
                                       {"type": "null"}, STATUS_DETAIL_SCHEMA,
                                       {"type": "string", "maxLength": 255}]},
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
