"""Who is asking: the request context built from Keystone-style identity headers."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_PROJECT_ID = "default"


@dataclass(frozen=True)
class RequestContext:
    """Identity of one API caller.

    ``is_admin`` sees and acts on every project; everyone else is scoped to
    ``project_id``. Roles follow Keystone's admin ⊃ member ⊃ reader; what each
    role may do is the API policy's to say (:mod:`isthmus.api.policy`), which
    also sets ``is_admin`` from its ``context_is_admin`` rule, as Neutron does.
    """

    project_id: str
    user_id: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
    request_id: str = ""

    @classmethod
    def admin(cls, project_id: str = DEFAULT_PROJECT_ID) -> "RequestContext":
        """An admin context, for work not done on behalf of an API caller."""
        return cls(project_id=project_id, user_id=None,
                   roles=frozenset({"admin", "member", "reader"}), is_admin=True)

    @classmethod
    def from_headers(cls, get_header, request_id: str = "") -> "RequestContext":
        """Build the context the way Keystone's middleware leaves the headers.

        No project header (what openstacksdk sends with ``auth_type='none'``)
        means an admin in the default project, as Neutron's noauth does. A
        request without ``X-Roles`` is a member of its project.
        """
        project = get_header("X-Project-Id") or get_header("X-Tenant-Id")
        user = get_header("X-User-Id")
        roles_header = get_header("X-Roles")
        if not project:
            ctx = cls.admin()
            return cls(project_id=ctx.project_id, user_id=user, roles=ctx.roles,
                       is_admin=True, request_id=request_id)
        if roles_header is None:
            roles = frozenset({"member", "reader"})
        else:
            roles = frozenset(r.strip().lower() for r in roles_header.split(",") if r.strip())
        return cls(project_id=project, user_id=user, roles=roles, request_id=request_id)
