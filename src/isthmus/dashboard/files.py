"""``GET /dashboard/``: the dashboard's static files, answered in front of authentication.

The files (``static/``: one HTML page, one script, one style sheet; no build
step) hold no data: the page asks the ordinary API for everything it shows,
with the credentials its user enters, so they need no token, like
``/healthcheck``. Only the exact paths of the shipped files are answered here;
every other path, ``/dashboard/anything-else`` included, goes on to the API and
its authentication. The files are read once, at start.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Callable, Iterable

from isthmus.api.health import only_get_and_head

PATH = "/dashboard/"

_CONTENT_TYPES = {".html": "text/html; charset=utf-8",
                  ".js": "text/javascript; charset=utf-8",
                  ".css": "text/css; charset=utf-8",
                  ".svg": "image/svg+xml"}

# The page runs only its own script and talks only to its own origin (the API); no
# inline script, no frame may embed it (clickjacking), no referrer leaves it.
_HEADERS = [
    ("Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-cache"),   # revalidated: an upgrade's page is seen at once
]


def static_files() -> dict[str, tuple[str, bytes]]:
    """The shipped files by URL path (``/dashboard/dashboard.js``): content type and bytes;
    ``/dashboard/`` is ``index.html``."""
    files: dict[str, tuple[str, bytes]] = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _CONTENT_TYPES:
            files[PATH + entry.name] = (_CONTENT_TYPES[suffix], entry.read_bytes())
    files[PATH] = files[PATH + "index.html"]
    return files


def with_dashboard(app: Any) -> Any:
    """``app`` with the dashboard's files answered in front of it (before authentication).

    ``/dashboard`` redirects to ``/dashboard/``, so that the page's relative links
    (its script, and the API at ``../v2.0``) resolve; GET and HEAD only.
    """
    files = static_files()

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == PATH.rstrip("/"):
            location = environ.get("SCRIPT_NAME", "") + PATH
            start_response("308 Permanent Redirect", [("Location", location),
                                                      ("Content-Length", "0")])
            return []
        if path not in files:
            return app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return only_get_and_head(start_response)
        content_type, body = files[path]
        start_response("200 OK", [("Content-Type", content_type),
                                  ("Content-Length", str(len(body))), *_HEADERS])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]
    return dispatch
