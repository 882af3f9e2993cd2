"""The dashboard: a small web page the API server serves at ``/dashboard/`` (docs/dashboard.md)."""

from isthmus.dashboard.files import PATH, with_dashboard

__all__ = ["PATH", "with_dashboard"]
