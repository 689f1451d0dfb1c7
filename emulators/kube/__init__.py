"""A Kubernetes API server emulator for the slice secret-origin uses.

It serves, over HTTP or HTTPS (trustme CA, `ca_pem_path`), with bearer-token authentication and a small
RBAC model:

- discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}`, `/apis/{group}/{version}`
  (APIVersions, APIGroupList, APIGroup, APIResourceList), plus the service-account issuer documents
  `/.well-known/openid-configuration` and `/openid/v1/jwks`;
- `external-secrets.io` ExternalSecret in the versions given by `eso_versions` (default `("v1",)`; an
  unserved version answers 404 "the server could not find the requested resource" with no
  `details.name`, as an apiserver does for a CRD version marked unserved) and PushSecret `v1alpha1`, both
  with the `status` subresource, as the ESO CRDs declare it [docs/design.md#external-secrets-operator];
- core `v1` ConfigMaps, Secrets (base64 `data`, `stringData` folded into `data`), ServiceAccounts and
  Namespaces; `events.k8s.io/v1` Events, created with the API server's validation (required eventTime
  as a MicroTime, reportingController, reportingInstance, action, reason, type; note at most 1 KiB;
  module `events`);
- verbs get, list (label and field selectors), create, update (PUT, optimistic concurrency), patch and
  delete. PATCH takes `application/merge-patch+json` (RFC 7386), `application/json-patch+json` (RFC 6902:
  add, remove, replace, move, copy, test; `~0`/`~1` escapes) and, for built-in kinds only,
  `application/strategic-merge-patch+json`; a custom resource answers strategic merge with 415
  UnsupportedMediaType [docs/design.md#kubernetes-api; docs/design.md#traps, trap 15];
- every write bumps `metadata.resourceVersion` from one cluster-global counter and a write that changes
  nothing does not; custom resources get `metadata.generation`, bumped only when something outside
  `metadata`/`status` changes; the main resource ignores `status`, `/status` ignores everything else
  (Kubernetes docs "Extend the Kubernetes API with CustomResourceDefinitions", status subresource);
- `authentication.k8s.io/v1` TokenReview and SelfSubjectReview, `authorization.k8s.io/v1`
  SelfSubjectAccessReview (`kubectl auth can-i`);
- errors as real `metav1.Status` objects (kind Status, apiVersion v1, status Failure, message, reason,
  details{name, group, kind}, code) with the apiserver's message formats (k8s.io/apimachinery
  `pkg/api/errors`, apiserver `responsewriters.forbiddenMessage`) [docs/design.md#kubernetes-api];
  injected faults (`fail_next`) also answer with a Status, and 429 carries `Retry-After` and
  `details.retryAfterSeconds`.

Tokens are real projected-style service-account JWTs (RS256, `iss`, `sub`, `aud`, `exp`/`iat`/`nbf`,
`jti` and the `kubernetes.io` claim with namespace, serviceaccount{name,uid}, pod and node), so Vault's
Kubernetes auth can parse them locally and then call TokenReview here. TokenReview follows what the Vault
plugin needs [docs/design.md#vault-kv-v2, #kubernetes-api; docs/design.md#traps, trap 14]: a body
without apiVersion/kind is accepted; the 201 response carries a `status` *object*; `status.audiences` is
the intersection of the requested audiences (default: the apiserver's) and the token's; a failed
review omits `authenticated` (Go `omitempty` on a false bool) and sets `error`.
A token stops working when it expires or its service account is deleted
or re-created with another uid, as bound tokens do.

RBAC: `grant()` is one Role (namespace given) or ClusterRole (namespace None) rule bound to one service
account. `resourceNames` restrict get/update/patch/delete to those names; such a rule never grants
create, and grants list/watch only with a matching `fieldSelector=metadata.name=X`, as documented in
https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-resources. Discovery paths
are open to every authenticated user (system:discovery); anonymous requests get 401 (as with
`--anonymous-auth=false`) unless `anonymous_auth=True`, which allows /version and health paths only.

Not covered: watch and chunked list (limit/continue), server-side apply, protobuf/CBOR/YAML bodies,
managedFields, finalizers and deletion timestamps, owner-reference garbage collection, admission, CRD
OpenAPI schema validation or defaulting, conversion between ESO versions (objects are stored once and
relabelled), aggregated discovery (v2), TokenRequest (`serviceaccounts/{name}/token`), groups as RBAC
subjects, and the other ESO kinds (SecretStore, ClusterSecretStore, ClusterExternalSecret). Exact wording
of a few messages is marked UNCONFIRMED where it is used.

ESO reconciler simulation (off by default; `enable_eso_reconciler(source, delay)`, module
`eso_reconciler`): a changed force-sync annotation copies the value `source` returns into the target
Secret and sets `status.refreshTime`, `syncedResourceVersion` and the Ready condition, with fault knobs
(never refresh, stale value, Ready=False) [docs/design.md#external-secrets-operator]. The standalone
server runs it with `--eso-vault URL`, reading KV v2 values from that Vault (module `vault_source`,
token in `ESO_VAULT_TOKEN`).

Standalone: `python -m emulators.kube --port 6443 --seed seed.yaml --out DIR [--tls]` writes an admin
kubeconfig and, per seeded service account, an in-cluster style directory (token, namespace, ca.crt)
plus a kubeconfig; the seed format is described in `load_seed`.

Modules: `server` (state, route table, authentication first), `discovery`, `resources` (the verbs),
`reviews`, `tokens`, `rbac`, `store` (the Python API), `validation`, `events`, `json_patch`,
`selectors`, `errors`, `types`, `seed`, `eso_reconciler`.
"""

from emulators.kube.seed import load_seed
from emulators.kube.server import KubeEmulator
from emulators.kube.types import DEFAULT_AUDIENCE, ESO_GROUP

__all__ = ["DEFAULT_AUDIENCE", "ESO_GROUP", "KubeEmulator", "load_seed"]
