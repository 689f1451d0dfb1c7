"""The served resource types, the API's constants and the apiserver's names for things."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

ESO_GROUP = "external-secrets.io"


ESO_KNOWN_VERSIONS = ("v1", "v1beta1", "v1alpha1")


DEFAULT_AUDIENCE = "https://kubernetes.default.svc"


ADMIN_USERNAME = "kubernetes-admin"


SA_PREFIX = "system:serviceaccount:"


POD_NAME_KEY = "authentication.kubernetes.io/pod-name"


POD_UID_KEY = "authentication.kubernetes.io/pod-uid"


NODE_NAME_KEY = "authentication.kubernetes.io/node-name"


NODE_UID_KEY = "authentication.kubernetes.io/node-uid"


CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"


MERGE_PATCH = "application/merge-patch+json"


JSON_PATCH = "application/json-patch+json"


STRATEGIC_PATCH = "application/strategic-merge-patch+json"


APPLY_PATCH = "application/apply-patch+yaml"


NOT_FOUND_GENERIC = "the server could not find the requested resource"


CONFLICT_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


QUALIFIED_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


QUALIFIED_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
    "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


ANNOTATIONS_MAX_BYTES = 256 * 1024


PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz")


# system:basic-user lets every authenticated user ask about itself.
SELF_REVIEWS = {
    ("authentication.k8s.io", "selfsubjectreviews", "create"),
    ("authorization.k8s.io", "selfsubjectaccessreviews", "create"),
}


@dataclass(frozen=True)
class ResourceType:
    group: str
    versions: tuple[str, ...]  # served versions; the first one is the preferred/storage version
    plural: str
    singular: str
    kind: str
    namespaced: bool = True
    custom: bool = False  # a CRD: no strategic merge, generation tracked, update needs resourceVersion
    status_subresource: bool = False
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update")

    @property
    def group_resource(self) -> str:
        """`plural.group` as the apiserver prints a GroupResource (`configmaps` for the core group)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version


CONFIGMAPS = ResourceType("", ("v1",), "configmaps", "configmap", "ConfigMap", short_names=("cm",))


SECRETS = ResourceType("", ("v1",), "secrets", "secret", "Secret")


SERVICEACCOUNTS = ResourceType(
    "", ("v1",), "serviceaccounts", "serviceaccount", "ServiceAccount", short_names=("sa",)
)


NAMESPACES = ResourceType(
    "",
    ("v1",),
    "namespaces",
    "namespace",
    "Namespace",
    namespaced=False,
    short_names=("ns",),
    verbs=("create", "delete", "get", "list", "patch", "update"),
)


PUSHSECRETS = ResourceType(
    ESO_GROUP,
    ("v1alpha1",),
    "pushsecrets",
    "pushsecret",
    "PushSecret",
    custom=True,
    status_subresource=True,
    short_names=("ps",),
    categories=("external-secrets", "external-secrets-pushsecrets"),
)


EVENTS = ResourceType(
    "events.k8s.io",
    ("v1",),
    "events",
    "event",
    "Event",
    short_names=("ev",),
    verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
)


def external_secrets_type(versions: Iterable[str]) -> ResourceType:
    return ResourceType(
        ESO_GROUP,
        tuple(versions),
        "externalsecrets",
        "externalsecret",
        "ExternalSecret",
        custom=True,
        status_subresource=True,
        short_names=("es",),
        categories=("external-secrets",),
    )


# Review APIs: create-only, never stored.
REVIEW_RESOURCES: dict[tuple[str, str], tuple[str, str]] = {
    ("authentication.k8s.io", "tokenreviews"): ("TokenReview", "v1"),
    ("authentication.k8s.io", "selfsubjectreviews"): ("SelfSubjectReview", "v1"),
    ("authorization.k8s.io", "selfsubjectaccessreviews"): ("SelfSubjectAccessReview", "v1"),
}


def kube_version_key(version: str) -> tuple[int, int, int]:
    """Kubernetes version priority: GA > beta > alpha, higher numbers first (sort ascending)."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0))


@dataclass
class RequestInfo:
    verb: str
    group: str
    version: str
    namespace: str
    resource: str
    name: str
    subresource: str
    field_name: str  # metadata.name from a fieldSelector, for list/watch resourceNames checks


def sa_username(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def now_rfc3339(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()
