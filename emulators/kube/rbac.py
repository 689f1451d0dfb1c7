"""Identities and a small RBAC model: one rule per `grant()`, bound to one service account."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulators.kube.types import (
    SELF_REVIEWS,
    sa_username,
)


@dataclass(frozen=True)
class Identity:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, list[str]] = field(default_factory=dict)
    audiences: tuple[str, ...] = ()
    admin: bool = False

    def user_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"username": self.username}
        if self.uid:
            info["uid"] = self.uid
        info["groups"] = list(self.groups)
        if self.extra:
            info["extra"] = {k: list(v) for k, v in self.extra.items()}
        return info


@dataclass(frozen=True)
class Rule:
    namespace: str | None  # None: a ClusterRole bound with a ClusterRoleBinding
    subject: str  # username, e.g. system:serviceaccount:ns:sa
    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    resource_names: frozenset[str]

    def allows(self, username: str, verb: str, group: str, resource: str, namespace: str, name: str) -> bool:
        if self.subject != username:
            return False
        if self.namespace is not None and self.namespace != namespace:
            return False
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        if "*" not in self.groups and group not in self.groups:
            return False
        if "*" not in self.resources and resource not in self.resources:
            return False
        if self.resource_names:
            # resourceNames cannot restrict create/deletecollection, and list/watch only through a
            # metadata.name field selector (passed in as `name` by the caller).
            if verb in ("create", "deletecollection") or not name:
                return False
            return name in self.resource_names
        return True


class RbacRules:
    """Role/ClusterRole rules and the authorizer that reads them (https://kubernetes.io/docs/reference/
    access-authn-authz/rbac/#referring-to-resources for `resourceNames`)."""

    def grant(
        self,
        namespace: str | None,
        sa_namespace: str,
        sa_name: str,
        *,
        verbs: Iterable[str],
        group: str,
        resource: str,
        resource_names: Iterable[str] | None = None,
    ) -> None:
        """One Role rule (namespace given) or ClusterRole rule (None) bound to the service account.
        `resource` may name a subresource (`externalsecrets/status`) or be `*`; `group` `""` is core."""
        rule = Rule(
            namespace=namespace,
            subject=sa_username(sa_namespace, sa_name),
            verbs=frozenset(verbs),
            groups=frozenset([group]),
            resources=frozenset([resource]),
            resource_names=frozenset(resource_names or ()),
        )
        with self._lock:
            self._rules.append(rule)

    def allow_token_review(self, sa_namespace: str, sa_name: str) -> None:
        """The `system:auth-delegator` ClusterRoleBinding: create tokenreviews (and subjectaccessreviews)."""
        self.grant(
            None,
            sa_namespace,
            sa_name,
            verbs=["create"],
            group="authentication.k8s.io",
            resource="tokenreviews",
        )
        self.grant(
            None,
            sa_namespace,
            sa_name,
            verbs=["create"],
            group="authorization.k8s.io",
            resource="subjectaccessreviews",
        )

    def revoke_all(self, sa_namespace: str, sa_name: str) -> None:
        subject = sa_username(sa_namespace, sa_name)
        with self._lock:
            self._rules = [r for r in self._rules if r.subject != subject]

    def is_allowed(
        self, user: Identity, verb: str, group: str, resource: str, namespace: str, name: str
    ) -> bool:
        if user.admin or (group, resource, verb) in SELF_REVIEWS:
            return True
        with self._lock:
            return any(r.allows(user.username, verb, group, resource, namespace, name) for r in self._rules)
