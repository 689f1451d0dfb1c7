"""Projected service-account tokens: issued as RS256 JWTs, verified as the apiserver's authenticator does."""

from __future__ import annotations

import json
import secrets
import ssl
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from emulators.base import Request
from emulators.kube.errors import (
    err_unauthorized,
)
from emulators.kube.rbac import Identity
from emulators.kube.types import (
    CREDENTIAL_ID_KEY,
    DEFAULT_AUDIENCE,
    NODE_NAME_KEY,
    NODE_UID_KEY,
    POD_NAME_KEY,
    POD_UID_KEY,
    sa_username,
)


class AuthnError(Exception):
    """A token that does not authenticate; the message is what TokenReview puts in `status.error`."""


class ServiceAccountTokens:
    """The signing key, its JWKS, `issue_token` and the bearer-token authenticator."""

    def _make_tls(self, host: str) -> ssl.SSLContext:
        import trustme

        ca = trustme.CA()
        names = {"127.0.0.1", "localhost", "::1", "kubernetes.default.svc", host}
        cert = ca.issue_cert(*sorted(names))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.ca_pem_path = self._workdir / "ca.crt"
        ca.cert_pem.write_to_path(str(self.ca_pem_path))
        return context

    @property
    def public_key_pem(self) -> str:
        return (
            self._signing_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._signing_key.public_key()))
        jwk.update({"use": "sig", "kid": self.key_id, "alg": "RS256"})
        return {"keys": [jwk]}

    def issue_token(
        self,
        namespace: str,
        name: str,
        *,
        audiences: Iterable[str] = (DEFAULT_AUDIENCE,),
        lifetime: int = 3600,
        issued_at: float | None = None,
        pod_name: str | None = None,
    ) -> str:
        """A projected service-account token (RS256 JWT) bound to a pod, as the kubelet mounts it."""
        with self._lock:
            sa = self._objects.get(("", "serviceaccounts", namespace, name))
            if sa is None:
                raise LookupError(
                    f"service account {namespace}/{name} does not exist; add_service_account first"
                )
            sa_uid = sa["metadata"]["uid"]
        iat = int(issued_at if issued_at is not None else self.clock())
        pod = pod_name or f"{name}-{secrets.token_hex(3)}-{secrets.token_hex(3)[:5]}"
        claims = {
            "aud": list(audiences),
            "exp": iat + int(lifetime),
            "iat": iat,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": namespace,
                "node": {
                    "name": "emulator-node",
                    "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, "emulator-node")),
                },
                "pod": {"name": pod, "uid": str(uuid.uuid4())},
                "serviceaccount": {"name": name, "uid": sa_uid},
                "warnafter": iat + min(int(lifetime), 3607),
            },
            "nbf": iat,
            "sub": sa_username(namespace, name),
        }
        return jwt.encode(claims, self._signing_key, algorithm="RS256", headers={"kid": self.key_id})

    def _verify_token(self, token: str, audiences: tuple[str, ...]) -> Identity:
        """Authenticate a bearer token against `audiences`; raise AuthnError with the reason."""
        static = self._static_tokens.get(token)
        if static is not None:
            return Identity(
                static.username,
                static.uid,
                static.groups,
                static.extra,
                audiences=tuple(a for a in audiences if a in self.api_audiences),
                admin=static.admin,
            )
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self._signing_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise AuthnError(
                "[invalid bearer token, square/go-jose: error in cryptographic primitive]"
            ) from exc
        if header.get("kid") != self.key_id or claims.get("iss") != self.issuer:
            raise AuthnError("[invalid bearer token, token lookup failed]")
        now = self.clock()
        if now >= float(claims.get("exp", 0)):
            raise AuthnError("[invalid bearer token, service account token has expired]")
        if now + 60 < float(claims.get("nbf", 0)):  # apiserver allows 60 s of clock skew
            raise AuthnError("[invalid bearer token, service account token is not valid yet]")
        token_auds = claims.get("aud")
        token_auds = [token_auds] if isinstance(token_auds, str) else list(token_auds or [])
        matched = tuple(a for a in audiences if a in token_auds)
        if not matched:
            raise AuthnError(
                f"[invalid bearer token, token audiences {json.dumps(token_auds)} is invalid for the "
                f"target audiences {json.dumps(list(audiences))}]"
            )
        return self._bound_identity(claims, matched)

    def _bound_identity(self, claims: Mapping[str, Any], audiences: tuple[str, ...]) -> Identity:
        """The user a token's `kubernetes.io` claim names, while its service account (same uid) lives."""
        k8s = claims.get("kubernetes.io") or {}
        namespace = str(k8s.get("namespace", ""))
        sa_claim = k8s.get("serviceaccount") or {}
        with self._lock:
            sa = self._objects.get(("", "serviceaccounts", namespace, str(sa_claim.get("name", ""))))
        if sa is None or sa["metadata"]["uid"] != sa_claim.get("uid"):
            raise AuthnError(
                f"[invalid bearer token, service account {namespace}/{sa_claim.get('name')} has been deleted]"
            )
        extra: dict[str, list[str]] = {}
        pod = k8s.get("pod") or {}
        node = k8s.get("node") or {}
        if claims.get("jti"):
            extra[CREDENTIAL_ID_KEY] = [f"JTI={claims['jti']}"]
        if node:
            extra[NODE_NAME_KEY] = [str(node.get("name"))]
            extra[NODE_UID_KEY] = [str(node.get("uid"))]
        if pod:
            extra[POD_NAME_KEY] = [str(pod.get("name"))]
            extra[POD_UID_KEY] = [str(pod.get("uid"))]
        return Identity(
            username=sa_username(namespace, str(sa_claim.get("name"))),
            uid=str(sa_claim.get("uid")),
            groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
            extra=extra,
            audiences=audiences,
        )

    def _authenticate(self, request: Request) -> Identity | None:
        token = request.bearer
        if token is None:
            if "authorization" in request.headers:
                raise err_unauthorized()
            return None
        try:
            return self._verify_token(token, self.api_audiences)
        except AuthnError:
            raise err_unauthorized() from None
