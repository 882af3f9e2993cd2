"""Every error leaves as Neutron's ``{"NeutronError": {...}}`` body.

Isthmus errors carry their own status and type; Falcon's routing errors
(unknown path, wrong method) are mapped to Neutron's generic names; anything
unexpected is logged with its traceback and answered with Neutron's generic
500, never with a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

import falcon
import orjson

from isthmus.exceptions import (HTTPMethodNotAllowed, HTTPNotFound, InternalServerError,
                                IsthmusError)

LOG = logging.getLogger(__name__)


def neutron_error(err: IsthmusError) -> bytes:
    """The body Neutron gives errors: ``{"NeutronError": {"type", "message", "detail"}}``."""
    return orjson.dumps({"NeutronError": {"type": err.type_name, "message": err.msg,
                                          "detail": ""}})


def _respond(resp: falcon.Response, err: IsthmusError) -> None:
    resp.status = falcon.code_to_http_status(err.status)
    resp.content_type = falcon.MEDIA_JSON
    resp.data = neutron_error(err)


def handle_isthmus_error(req: falcon.Request, resp: falcon.Response, err: IsthmusError,
                         params: Any) -> None:
    """An Isthmus error as Neutron's error body and status; 5xx are logged."""
    if err.status >= 500:
        LOG.error("%s %s failed: %s", req.method, req.path, err.msg)
    _respond(resp, err)


def handle_http_error(req: falcon.Request, resp: falcon.Response, err: falcon.HTTPError,
                      params: Any) -> None:
    """A Falcon error (404 route, 405 method, bad media) as Neutron words it."""
    if isinstance(err, falcon.HTTPMethodNotAllowed):
        _respond(resp, HTTPMethodNotAllowed())
        resp.set_header("Allow", ", ".join(err.headers.get("Allow", "").split(",")).strip())
        return
    if err.status_code == 404:
        _respond(resp, HTTPNotFound())
        return
    generic = IsthmusError(message=err.title or "Request failed")
    generic.status = err.status_code
    generic.error_type = f"HTTP{(err.title or 'Error').replace(' ', '')}"
    _respond(resp, generic)


def handle_unexpected(req: falcon.Request, resp: falcon.Response, err: Exception,
                      params: Any) -> None:
    """Anything else: logged with its traceback, answered with a bare 500 that leaks nothing."""
    if isinstance(err, falcon.HTTPError):
        handle_http_error(req, resp, err, params)
        return
    LOG.exception("Unexpected error in %s %s", req.method, req.path)
    _respond(resp, InternalServerError())


def install(app: falcon.App) -> None:
    """Register the handlers on ``app``: Isthmus errors, Falcon's HTTP errors, anything else."""
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(IsthmusError, handle_isthmus_error)
