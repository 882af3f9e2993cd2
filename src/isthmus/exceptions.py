"""Errors that reach API clients, named and worded as Neutron names and words them.

Every exception carries its HTTP status; the API turns it into Neutron's
``{"NeutronError": {"type", "message", "detail"}}`` body, using the class
name as ``type`` (or ``error_type`` where Neutron reports a generic name).
"""

from __future__ import annotations

import reprlib
from typing import Any

SHOWN_MAX_CHARS = 300  # a value just over a 255-character limit is quoted whole, as Neutron
MESSAGE_ARG_MAX_CHARS = 1024
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel = 3


def shown(value: Any, max_chars: int = SHOWN_MAX_CHARS) -> str:
    """``value`` as an error message quotes it: ``str()`` for small values, bounded always.

    Messages echo what the client sent, as Neutron's do, but a client value can be
    a megabyte long or nest a thousand lists deep, where ``str()`` is huge or a
    RecursionError; this looks at most three levels in and returns at most
    ``max_chars`` characters.
    """
    text = value[:max_chars + 1] if isinstance(value, str) else _SHORT_REPR.repr(value)
    return text if len(text) <= max_chars else text[:max_chars - 3] + "..."


class IsthmusError(Exception):
    """Base of every client-visible error; ``message`` is a %-template of kwargs."""

    status: int = 500
    message: str = "An unknown exception occurred."
    error_type: str | None = None

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.msg = message if message is not None else self.message % {
            # Arguments may be client values (an id from the URL): bounded, generously.
            key: shown(value, MESSAGE_ARG_MAX_CHARS) if isinstance(value, str) else value
            for key, value in kwargs.items()}
        super().__init__(self.msg)

    @property
    def type_name(self) -> str:
        """The ``type`` in Neutron's error body: the Neutron exception this error stands for."""
        return self.error_type or type(self).__name__


class BadRequest(IsthmusError):
    status = 400
    message = "Bad %(resource)s request: %(msg)s."


class NotFound(IsthmusError):
    status = 404
    message = "The resource could not be found."


class Conflict(IsthmusError):
    status = 409
    message = "Conflict: %(msg)s"


class InUse(Conflict):
    message = "The resource is in use."


class NotAuthorized(IsthmusError):
    status = 403
    message = "Not authorized."


class ServiceUnavailable(IsthmusError):
    status = 503
    message = "The service is unavailable."


class HTTPBadRequest(BadRequest):
    """What Neutron's attribute layer raises: free text, generic type name."""

    message = "%(msg)s"


class InvalidAttribute(HTTPBadRequest):
    """A value failed its validator: ``Invalid input for X. Reason: Y.``"""

    error_type = "HTTPBadRequest"

    def __init__(self, attr: str, reason: str) -> None:
        super().__init__(f"Invalid input for {attr}. Reason: {reason}.")
        self.attr = attr
        self.reason = reason


class InvalidInput(BadRequest):
    message = "Invalid input for operation: %(error_message)s."


class MalformedRequestBody(BadRequest):
    message = "Malformed request body: %(reason)s."


class HTTPNotFound(NotFound):
    message = "The resource could not be found."


class HTTPMethodNotAllowed(IsthmusError):
    status = 405
    message = ("The server could not comply with the request since it is either "
               "malformed or otherwise incorrect.")


class PolicyNotAuthorized(NotAuthorized):
    message = "rule:%(action)s is disallowed by policy"


class NotImplementedByServer(IsthmusError):
    status = 501
    error_type = "NotImplementedError"
    message = "%(what)s is not implemented."


class InternalServerError(IsthmusError):
    error_type = "HTTPInternalServerError"
    message = "Request Failed: internal server error while processing your request."
