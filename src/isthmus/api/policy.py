"""Authorization: Neutron's policy rules, registered in code, enforced with oslo.policy.

Every decision the API makes about *who may do what* is a rule here, under
Neutron's (and neutron-vpnaas's) name and with its default check string, so an
operator's ``policy.yaml`` written for Neutron works unchanged. Three kinds:

* action rules, ``<action>_<resource>`` (``create_ikepolicy``, ``get_router``);
* attribute rules, ``<action>_<resource>:<attribute>[:<sub-key>]``: setting
  (``create_``/``update_``) or seeing (``get_``) one attribute; those for
  attributes the table marks ``admin_only``/``member_visible=False`` are derived
  from :mod:`isthmus.attributes`, so a new admin-only attribute gets its rule;
* base rules (``context_is_admin``, ``admin_only``, ``owner``...) the others use.

An attribute rule counts only if it exists (registered, or added by the policy
file), as in Neutron: ``get_ipsec_site_connection:psk: rule:admin_only`` in a
policy file hides the PSK without any code change.

Rows of other projects are also kept out by the SQL queries (``visible()``);
policy decides within what those return, as Neutron's API layer does.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import Any, Mapping

import yaml
from oslo_config import cfg
from oslo_policy import _checks  # the check classes; oslo.policy re-exports only some
from oslo_policy import policy as oslo

from isthmus import attributes as a
from isthmus import events
from isthmus.context import RequestContext
from isthmus.exceptions import HTTPNotFound, PolicyNotAuthorized
from isthmus.network.networks import NETWORK_RESOURCE, SUBNET_RESOURCE
from isthmus.network.ports import PORT_RESOURCE
from isthmus.network.routers import ROUTER_RESOURCE
from isthmus.vpn import agents, endpoint_groups, site_connections, vpnservices
from isthmus.vpn.policies import IKE_RESOURCE, IPSEC_RESOURCE

LOG = logging.getLogger(__name__)

# neutron-lib's check strings (neutron_lib/policy/rules.py), roles admin ⊃ member ⊃ reader.
ADMIN = "rule:admin_only"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
ADMIN_OR_PROJECT_MEMBER = f"({ADMIN}) or ({PROJECT_MEMBER})"
ADMIN_OR_PROJECT_READER = f"({ADMIN}) or ({PROJECT_READER})"
NET_OWNER_MEMBER = "role:member and rule:network_owner"
NET_OWNER_READER = "role:reader and rule:network_owner"
ADMIN_OR_NET_OWNER_MEMBER = f"({ADMIN}) or ({NET_OWNER_MEMBER})"
ADMIN_OR_NET_OWNER_READER = f"({ADMIN}) or ({NET_OWNER_READER})"

RESOURCES: tuple[a.Resource, ...] = (
    NETWORK_RESOURCE, SUBNET_RESOURCE, PORT_RESOURCE, ROUTER_RESOURCE, IKE_RESOURCE,
    IPSEC_RESOURCE, vpnservices.RESOURCE, endpoint_groups.RESOURCE, site_connections.RESOURCE,
    agents.RESOURCE, events.RESOURCE)

BASE_RULES = [
    oslo.RuleDefault("context_is_admin", "role:admin",
                     description="Who is a cloud admin: sees and acts on every project."),
    oslo.RuleDefault("admin_only", "rule:context_is_admin",
                     description="Rule for admin-only access."),
    oslo.RuleDefault("owner", "project_id:%(project_id)s",
                     description="The object belongs to the caller's project."),
    oslo.RuleDefault("admin_or_owner", "rule:context_is_admin or rule:owner",
                     description="Rule for admin or owner access."),
    oslo.RuleDefault("regular_user", "", description="Any authenticated caller."),
    oslo.RuleDefault("network_owner", "project_id:%(network:project_id)s",
                     description="The caller's project owns the object's network."),
    # Neutron writes these as field:networks:shared=True, a check of its own; this is the
    # same test in oslo.policy's generic syntax (the value of the target's key is True).
    oslo.RuleDefault("shared", "True:%(shared)s",
                     description="The network (of a subnet: its network) is shared."),
    oslo.RuleDefault("external", "True:%(router:external)s",
                     description="The network is external (router:external)."),
    oslo.RuleDefault("external_network", "True:%(router:external)s",
                     description="The subnet is on an external network."),
    oslo.RuleDefault("default", "rule:admin_or_owner",
                     description="Rule for any action without a rule of its own."),
]

_METHODS = {"create": ("POST", False), "get": ("GET", None), "update": ("PUT", True),
            "delete": ("DELETE", True)}

# Each resource's action rules, as in neutron/conf/policies/*.py and
# neutron_vpnaas/policies/*.py (Neutron 2025.2+ secure-RBAC defaults).
_ACTIONS: dict[str, dict[str, str]] = {
    "network": {
        "create": ADMIN_OR_PROJECT_MEMBER,
        "get": f"{ADMIN_OR_PROJECT_READER} or rule:shared or rule:external",
        "update": ADMIN_OR_PROJECT_MEMBER, "delete": ADMIN_OR_PROJECT_MEMBER},
    "subnet": {
        "create": ADMIN_OR_NET_OWNER_MEMBER,
        "get": f"({PROJECT_READER}) or rule:shared or rule:external_network or "
               f"{ADMIN_OR_NET_OWNER_READER}",
        "update": f"({PROJECT_MEMBER}) or {ADMIN_OR_NET_OWNER_MEMBER}",
        "delete": f"({PROJECT_MEMBER}) or {ADMIN_OR_NET_OWNER_MEMBER}"},
    "port": {"get": f"({ADMIN}) or ({NET_OWNER_READER}) or ({PROJECT_READER})"},
    "router": {action: (ADMIN_OR_PROJECT_READER if action == "get" else ADMIN_OR_PROJECT_MEMBER)
               for action in _METHODS},
    "agent": {"get": ADMIN},
    # The history of a project's objects is read as the objects are.
    "event": {"get": ADMIN_OR_PROJECT_READER},
    # Readers of a project read its VPN objects, the PSK included (as Neutron's 2023-2025
    # defaults did; neutron-vpnaas 2025.2 narrowed gets to members — one override restores
    # that: "get_ipsec_site_connection": "(rule:admin_only) or (role:member and ...)").
    **{singular: {action: (ADMIN_OR_PROJECT_READER if action == "get"
                           else ADMIN_OR_PROJECT_MEMBER) for action in _METHODS}
       for singular in ("ikepolicy", "ipsecpolicy", "vpnservice", "endpoint_group",
                        "ipsec_site_connection")},
}

# Field rules with defaults of their own, so that a policy file can tighten them.
_FIELD_RULES = {"ipsec_site_connection": {"psk": ADMIN_OR_PROJECT_READER}}

# Attribute rules the attribute table cannot say: keys inside a router's gateway.
_GATEWAY_RULES = {"external_gateway_info": ADMIN_OR_PROJECT_MEMBER,
                  "external_gateway_info:network_id": ADMIN_OR_PROJECT_MEMBER,
                  "external_gateway_info:enable_snat": ADMIN,
                  "external_gateway_info:external_fixed_ips": ADMIN}

_EXTRA_ACTIONS = [
    *(oslo.DocumentedRuleDefault(
        name=f"{action}_router_interface", check_str=ADMIN_OR_PROJECT_MEMBER,
        description=f"{action.capitalize()} an interface {'to' if action == 'add' else 'from'} "
                    "a router",
        operations=[{"method": "PUT", "path": f"/routers/{{id}}/{action}_router_interface"}],
        scope_types=["project"])
      for action in ("add", "remove")),
    *(oslo.DocumentedRuleDefault(
        name=f"{action}_extraroutes", check_str=ADMIN_OR_PROJECT_MEMBER,
        description=f"{action.capitalize()} extra routes {'to' if action == 'add' else 'from'} "
                    "a router",
        operations=[{"method": "PUT", "path": f"/routers/{{id}}/{action}_extraroutes"}],
        scope_types=["project"])
      for action in ("add", "remove")),
]

# Tag rules (neutron/conf/policies/{network,subnet,router}.py, 2025.1+ names
# ``<action>_<resource>:tags``): reading tags as reading the object, changing them as
# updating it.
_TAG_OPERATIONS = {"get": ("GET", ("/tags", "/tags/{tag}")),
                   "create": ("POST", ("/tags",)),
                   "update": ("PUT", ("/tags", "/tags/{tag}")),
                   "delete": ("DELETE", ("/tags", "/tags/{tag}"))}


def _tag_rules(resource: a.Resource) -> list[oslo.RuleDefault]:
    collection = resource.path.removeprefix("/v2.0")
    label = resource.singular.replace("_", " ")
    rules: list[oslo.RuleDefault] = []
    for action, (method, suffixes) in _TAG_OPERATIONS.items():
        check = _ACTIONS[resource.singular]["get" if action == "get" else "update"]
        rules.append(oslo.DocumentedRuleDefault(
            name=f"{action}_{resource.singular}:tags", check_str=check,
            description=f"{action.capitalize()} the tags of a {label}",
            operations=[{"method": method, "path": f"{collection}/{{id}}{suffix}"}
                        for suffix in suffixes],
            scope_types=["project"]))
    return rules


def _operations(resource: a.Resource, action: str) -> list[dict[str, str]]:
    method, member = _METHODS[action]
    collection = resource.path.removeprefix("/v2.0")
    paths = [collection, f"{collection}/{{id}}"] if member is None else \
        [f"{collection}/{{id}}" if member else collection]
    return [{"method": method, "path": path} for path in paths]


def _resource_rules(resource: a.Resource) -> list[oslo.RuleDefault]:
    label = resource.singular.replace("_", " ")
    rules: list[oslo.RuleDefault] = []
    for action, check in _ACTIONS[resource.singular].items():
        rules.append(oslo.DocumentedRuleDefault(
            name=f"{action}_{resource.singular}", check_str=check,
            description=f"{action.capitalize()} {'an' if label[0] in 'aeiou' else 'a'} {label}",
            operations=_operations(resource, action), scope_types=["project"]))
    for attr in resource.attrs:
        if attr.admin_only:
            for action in ("create", "update"):
                if (attr.post if action == "create" else attr.put):
                    rules.append(oslo.DocumentedRuleDefault(
                        name=f"{action}_{resource.singular}:{attr.name}", check_str=ADMIN,
                        description=f"Specify ``{attr.name}`` when you {action} a {label}",
                        operations=_operations(resource, action), scope_types=["project"]))
        if not attr.member_visible:
            rules.append(oslo.DocumentedRuleDefault(
                name=f"get_{resource.singular}:{attr.name}", check_str=ADMIN,
                description=f"See ``{attr.name}`` of a {label}",
                operations=_operations(resource, "get"), scope_types=["project"]))
    for name, check in _FIELD_RULES.get(resource.singular, {}).items():
        rules.append(oslo.DocumentedRuleDefault(
            name=f"get_{resource.singular}:{name}", check_str=check,
            description=f"See ``{name}`` of a {label}",
            operations=_operations(resource, "get"), scope_types=["project"]))
    if "tags" in resource.by_name:
        rules += _tag_rules(resource)
    if resource is ROUTER_RESOURCE:
        for action in ("create", "update"):
            for key, check in _GATEWAY_RULES.items():
                rules.append(oslo.DocumentedRuleDefault(
                    name=f"{action}_router:{key}", check_str=check,
                    description=f"Specify ``{key}`` when you {action} a router",
                    operations=_operations(resource, action), scope_types=["project"]))
    return rules


def list_rules() -> list[oslo.RuleDefault]:
    """Every default rule; the ``oslo.policy.policies`` entry point for the generators."""
    rules = list(BASE_RULES)
    for resource in RESOURCES:
        rules += _resource_rules(resource)
        if resource is ROUTER_RESOURCE:
            rules += _EXTRA_ACTIONS
    return rules


def _drop(record: logging.LogRecord) -> bool:
    return False


_DECISIONS_KEPT = 4096
# oslo.policy logs every target at DEBUG: a secret's value never goes in (no rule reads it).
_SECRETS = frozenset(name for resource in RESOURCES for name in resource.secrets)


def _policy_target(target: Mapping[str, Any]) -> dict[str, Any]:
    return {key: a.REDACTED if key in _SECRETS else value for key, value in target.items()}


_ABSENT = object()
_TARGET_KEY = re.compile(r"%\(([^)]*)\)")


def _keys_read(check: Any, rules: Mapping[str, Any], seen: set[str]) -> frozenset[str] | None:
    """The target keys a check tree reads, or ``None`` if that cannot be known (a
    check kind of unknown behaviour, a loop): then its decisions are not remembered."""
    if check is None:   # a missing rule falls back to "default": not worth following
        return None
    if isinstance(check, (_checks.TrueCheck, _checks.FalseCheck)):
        return frozenset()
    if isinstance(check, _checks.RuleCheck):
        if check.match in seen:
            return None
        return _keys_read(rules.get(check.match), rules, seen | {check.match})
    if isinstance(check, (_checks.RoleCheck, _checks.GenericCheck)):
        return frozenset(_TARGET_KEY.findall(check.match))
    if isinstance(check, (_checks.AndCheck, _checks.OrCheck)):
        parts = [_keys_read(c, rules, seen) for c in check.rules]
        return None if any(p is None for p in parts) else frozenset().union(*parts)
    if isinstance(check, _checks.NotCheck):
        return _keys_read(check.rule, rules, seen)
    return None


def _read_policy_file(path: str) -> dict[str, str]:
    """The file's rules, or a :class:`PolicyFileError` saying what is wrong where."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise PolicyFileError(f"policy file {path}: cannot be read as YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PolicyFileError(f"policy file {path}: expected a mapping of rule name to "
                              f"check string, found a {type(data).__name__}")
    for rule, check in data.items():
        if not isinstance(check, str):
            raise PolicyFileError(f"policy file {path}: rule {rule!r} must be a check "
                                  f"string, found {check!r}")
    return data


class PolicyFileError(Exception):
    """The policy file cannot be used; the message names the file and the fault."""


class Policy:
    """The API's one authorizer: an oslo.policy Enforcer loaded with :func:`list_rules`.

    Built when the server starts, so a broken policy file stops the start with
    a :class:`PolicyFileError` instead of denying (or allowing) at random later.
    """

    def __init__(self, conf: cfg.ConfigOpts | None = None) -> None:
        if conf is None:
            conf = cfg.ConfigOpts()
            conf([], project="isthmus", default_config_files=[])
        self.enforcer = oslo.Enforcer(conf)
        self.enforcer.register_defaults(list_rules())
        self._check_file(conf)
        # oslo.policy searches for and rereads its files on every check; refresh() does
        # it once per request, for the files there were at the start.
        self.enforcer.use_conf = False
        self._watched_paths = [p for p in [self.enforcer.policy_path, *(
            conf.find_file(d) for d in conf.oslo_policy.policy_dirs)] if p]
        self._stamps = self._watched()
        self._decisions: dict[tuple[Any, ...], bool] = {}
        self._target_keys: dict[str, frozenset[str] | None] = {}
        self._decided_with: Any = self.enforcer.rules

    def _check_file(self, conf: cfg.ConfigOpts) -> None:
        name = conf.oslo_policy.policy_file
        try:
            path = conf.find_file(name)
        except cfg.Error:
            path = None
        if path is None:
            location = conf.get_location("policy_file", "oslo_policy")
            if location is not None and location.location != cfg.Locations.opt_default:
                raise PolicyFileError(
                    f"[oslo_policy] policy_file {name!r} was not found (relative paths are "
                    f"looked up next to the configuration files); create it or fix the path")
            self.enforcer.load_rules()   # the default file may be absent: defaults apply
            return
        data = _read_policy_file(path)
        # oslo.policy logs a traceback for a check string it cannot parse, and
        # warnings for undefined rules; the errors raised below say it in one line.
        loggers = [logging.getLogger(f"oslo_policy.{module}") for module in ("_parser",
                                                                            "policy")]
        for logger in loggers:
            logger.addFilter(_drop)
        try:
            self.enforcer.load_rules()
            self.enforcer.check_rules(raise_on_violation=True)
        except ValueError as err:
            raise PolicyFileError(f"policy file {path}: {err}") from None
        except oslo.InvalidDefinitionError:
            missing = sorted({ref for check in data.values()
                              for ref in re.findall(r"rule:([^\s()]+)", check)
                              if ref not in self.enforcer.rules})
            raise PolicyFileError(
                f"policy file {path}: refers to rules that are not defined: "
                f"{', '.join(missing) or 'see the log'}; define them or fix the names") from None
        finally:
            for logger in loggers:
                logger.removeFilter(_drop)
        for rule, check in data.items():
            # oslo.policy turns a check string it cannot parse into "!" (deny) and logs.
            if str(self.enforcer.rules[rule]) == "!" and check.strip() != "!":
                raise PolicyFileError(f"policy file {path}: rule {rule!r}: cannot parse "
                                      f"{check!r}; see oslo.policy's check string syntax")
        unknown = sorted(r for r in data if not self._known(r))
        if unknown:
            LOG.warning("Policy file %s names rules Isthmus never checks: %s", path,
                        ", ".join(unknown))

    def _known(self, rule: str) -> bool:
        action = rule.split(":", 1)[0]
        return rule in self.enforcer.registered_rules or \
            action in self.enforcer.registered_rules

    # -- checks ------------------------------------------------------------
    @staticmethod
    def credentials(ctx: RequestContext) -> dict[str, Any]:
        """The caller as oslo.policy rules see it (``project_id``, ``roles``, ``is_admin`` ...)."""
        return {"project_id": ctx.project_id, "tenant_id": ctx.project_id,
                "user_id": ctx.user_id, "roles": sorted(ctx.roles), "is_admin": ctx.is_admin}

    def _watched(self) -> tuple[float, ...]:
        """Modification times of the policy file and policy.d directories found at the
        start (a few stat calls; oslo.policy's own check searches every config dir)."""
        stamps = []
        for path in self._watched_paths:
            try:
                stamps.append(os.stat(path).st_mtime)
                if os.path.isdir(path):
                    stamps += [entry.stat().st_mtime for entry in os.scandir(path)]
            except OSError:
                stamps.append(-1.0)
        return tuple(stamps)

    def refresh(self) -> None:
        """Reread the policy files if they changed, as oslo.policy does; called once per
        request. A file broken since the start leaves the rules loaded before in force."""
        stamps = self._watched()
        if stamps == self._stamps:
            return
        self._stamps = stamps
        self.enforcer.use_conf = True
        try:
            self.enforcer.load_rules()
        except (ValueError, OSError) as err:
            LOG.error("Policy file %s is malformed or unreadable, the rules loaded before "
                      "stay in force until it is fixed: %s", self.enforcer.policy_path, err)
        finally:
            self.enforcer.use_conf = False

    def is_admin(self, ctx: RequestContext) -> bool:
        """Neutron's ``context.is_admin``: the ``context_is_admin`` rule on the caller."""
        return self.check(ctx, "context_is_admin", {})

    def exists(self, rule: str) -> bool:
        """Whether a rule of that name is defined (by default or by the operator)."""
        return rule in self.enforcer.rules

    def check(self, ctx: RequestContext, rule: str, target: Mapping[str, Any]) -> bool:
        """``rule`` for ``ctx`` on ``target``, remembered per caller and per values of
        the target keys the rule reads: a list of 1000 objects of one project is
        decided once, not 1000 times (oslo.policy takes ~0.1 ms per check)."""
        creds = self.credentials(ctx)
        key = self._decision_key(rule, creds, target)
        if key is None:
            return bool(self.enforcer.enforce(rule, _policy_target(target), creds))
        decided = self._decisions.get(key)
        if decided is None:
            if len(self._decisions) >= _DECISIONS_KEPT:
                self._decisions.clear()
            decided = self._decisions[key] = bool(
                self.enforcer.enforce(rule, _policy_target(target), creds))
        return decided

    def _decision_key(self, rule: str, creds: Mapping[str, Any],
                      target: Mapping[str, Any]) -> tuple[Any, ...] | None:
        if self.enforcer.rules is not self._decided_with:   # reloaded: forget
            self._decisions.clear()
            self._target_keys.clear()
            self._decided_with = self.enforcer.rules
        if rule not in self._target_keys:
            self._target_keys[rule] = _keys_read(self.enforcer.rules.get(rule),
                                                 self.enforcer.rules, {rule})
        keys = self._target_keys[rule]
        if keys is None:
            return None
        key = (rule, creds["project_id"], creds["user_id"], tuple(creds["roles"]),
               creds["is_admin"], tuple((k, target.get(k, _ABSENT)) for k in sorted(keys)))
        try:
            hash(key)
        except TypeError:   # a list or dict value: decide without remembering
            return None
        return key

    def authorize(self, ctx: RequestContext, rule: str, target: Mapping[str, Any]) -> None:
        """Raise Neutron's 403 ``PolicyNotAuthorized`` naming ``rule`` if it fails."""
        if not self.check(ctx, rule, target):
            raise PolicyNotAuthorized(action=rule)

    def authorize_write(self, ctx: RequestContext, action: str, resource: a.Resource,
                        target: Mapping[str, Any], body: Mapping[str, Any]) -> None:
        """The action rule, then the rule of each attribute (and sub-key) the body sets.

        On create an attribute counts only when it differs from its default, on
        update whenever it is present: Neutron's "explicitly set" test.
        """
        self.authorize(ctx, f"{action}_{resource.singular}", target)
        for name, value in body.items():
            attr = resource.by_name.get(name)
            if attr is None or (action == "create" and value == attr.default):
                continue
            rule = f"{action}_{resource.singular}:{name}"
            if self.exists(rule):
                self.authorize(ctx, rule, target)
            if isinstance(value, dict):
                for key in value:
                    if self.exists(f"{rule}:{key}"):
                        self.authorize(ctx, f"{rule}:{key}", target)

    def authorize_change(self, ctx: RequestContext, rule: str, resource: a.Resource,
                         target: Mapping[str, Any]) -> None:
        """For update, delete and member actions on an existing object: Neutron answers
        404 when the caller may not even see the object, 403 when it may see it."""
        if not self.check(ctx, f"get_{resource.singular}", target):
            raise HTTPNotFound()
        self.authorize(ctx, rule, target)

    def hidden_fields(self, ctx: RequestContext, resource: a.Resource,
                      target: Mapping[str, Any]) -> set[str]:
        """Attributes of ``target`` whose ``get_<resource>:<attr>`` rule fails for ``ctx``."""
        hidden = {attr.name for attr in resource.attrs
                  if f"get_{resource.singular}:{attr.name}" in self.enforcer.rules
                  and not self.check(ctx, f"get_{resource.singular}:{attr.name}", target)}
        if "project_id" in hidden:     # Neutron treats the two as one
            hidden.add("tenant_id")
        return hidden

    def keys_read(self, resource: a.Resource) -> frozenset[str] | None:
        """The target keys that reading ``resource`` objects depends on: its ``get_``
        rule and the ``get_`` rule of each attribute; ``None`` if a rule's keys cannot
        be known (then every attribute must be read)."""
        rules = [f"get_{resource.singular}", *(
            f"get_{resource.singular}:{attr.name}" for attr in resource.attrs)]
        keys: set[str] = set()
        for rule in rules:
            if rule not in self.enforcer.rules:
                continue
            found = _keys_read(self.enforcer.rules[rule], self.enforcer.rules, {rule})
            if found is None:
                return None
            keys |= found
        return frozenset(keys)

    def guarded_fields(self, resource: a.Resource) -> set[str]:
        """Attributes with a ``get_`` rule of their own: hidden from someone, maybe."""
        return {attr.name for attr in resource.attrs
                if f"get_{resource.singular}:{attr.name}" in self.enforcer.rules}


def get_enforcer() -> oslo.Enforcer:
    """The ``oslo.policy.enforcer`` entry point: the enforcer as ``isthmus server`` builds it.

    ``oslopolicy-policy-generator --namespace isthmus --config-file isthmus.conf``
    shows the effective rules; the generator's own options are not ours, so
    only ``--config-file``/``--config-dir`` are taken from its command line.
    """
    from isthmus import config

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--config-file", action="append", default=[])
    parser.add_argument("--config-dir")
    known, _ = parser.parse_known_args(sys.argv[1:])
    args = ["--config-dir", known.config_dir] if known.config_dir else []
    return Policy(config.load(args, known.config_file)).enforcer
