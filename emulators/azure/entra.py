"""Entra ID's token endpoint for workload identity: the client-assertion grant and its AADSTS errors."""

from __future__ import annotations

import secrets as _secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import jwt

from emulators.azure.model import (
    FIC_DOCS,
    JSON_UTF8,
    JWT_BEARER_ASSERTION_TYPE,
    KEY_VAULT_RESOURCE,
    TENANT_PATTERN,
    AadError,
    AppRegistration,
    b64url,
    iso7,
    required_field,
)
from emulators.base import Request, Response


class EntraTokenEndpoint:
    """`POST /{tenant}/oauth2/v2.0/token`, every method routed here (a GET gets AADSTS900561)."""

    def token(self, request: Request) -> Response:
        return self._token_endpoint(request, request.params["tenant"])

    def _aad_response(self, err: AadError) -> Response:
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": err.error,
            "error_description": f"AADSTS{err.code}: {err.description} Trace ID: {trace_id} "
            f"Correlation ID: {correlation_id} Timestamp: {stamp}",
            "error_codes": [err.code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{self.url}/error?code={err.code}",
        }
        return Response.json(err.status, body, self._aad_headers(trace_id), content_type=JSON_UTF8)

    @staticmethod
    def _aad_headers(trace_id: str) -> dict[str, str]:
        return {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache", "x-ms-request-id": trace_id}

    def _token_endpoint(self, request: Request, tenant: str) -> Response:
        try:
            return self._issue_token(request, tenant)
        except AadError as err:
            return self._aad_response(err)

    def _issue_token(self, request: Request, tenant: str) -> Response:
        if request.method != "POST":
            raise AadError(
                400,
                "invalid_request",
                900561,
                f"The endpoint only accepts POST requests. Received a {request.method} request.",
            )
        with self._lock:
            known_tenant = tenant in self._tenants
        if not TENANT_PATTERN.match(tenant) or not known_tenant:
            raise AadError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud. Check with your subscription administrator, this may "
                "happen if there are no active subscriptions for the tenant.",
            )
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items() if v}
        grant_type = required_field(form, "grant_type")
        if grant_type != "client_credentials":
            raise AadError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        client_id = required_field(form, "client_id")
        with self._lock:
            app = self._apps.get((tenant, client_id))
        if app is None:
            raise AadError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This "
                "can happen if the application has not been installed by the administrator of the tenant or "
                "consented to by any user in the tenant. You may have sent your authentication request to "
                "the wrong tenant.",
            )
        scope = required_field(form, "scope")
        resource = self._resource_for_scope(scope, tenant)
        assertion = form.get("client_assertion")
        if not assertion or form.get("client_assertion_type") != JWT_BEARER_ASSERTION_TYPE:
            raise AadError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        self._validate_assertion(app, assertion)
        return self._token_response(app, resource, form.get("claims"))

    def _resource_for_scope(self, scope: str, tenant: str) -> str:
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise AadError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must have a "
                "scope value with /.default suffixed to the resource identifier (application ID URI).",
            )
        resource = scopes[0].removesuffix("/.default")
        if resource.rstrip("/") not in self._accepted_resources():
            raise AadError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named {tenant}. This "
                "can happen if the application has not been installed by the administrator of the tenant or "
                "consented to by any user in the tenant. You might have sent your authentication request to "
                "the wrong tenant.",
            )
        return resource.rstrip("/")

    def _accepted_resources(self) -> set[str]:
        accepted = {KEY_VAULT_RESOURCE}
        if self.resource:
            accepted.add(self.resource.rstrip("/"))
        for host in self.cert_hosts:
            shown = f"[{host}]" if ":" in host else host
            accepted.add(f"https://{shown}:{self.port}")
        return accepted

    def _validate_assertion(self, app: AppRegistration, assertion: str) -> None:
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AadError(400, "invalid_request", 50027, "JWT token is invalid or malformed.") from None
        iss, sub = str(claims.get("iss", "")), str(claims.get("sub", ""))
        raw_aud = claims.get("aud", [])
        audiences = [raw_aud] if isinstance(raw_aud, str) else [str(a) for a in raw_aud]
        by_issuer = [c for c in app.credentials if c.issuer == iss]
        if not by_issuer:
            self._no_fic_match(700211, f"issuer '{iss}'", iss, sub, audiences)
        if header.get("kid") != self._oidc_kid:
            raise AadError(
                401,
                "invalid_client",
                7000272,
                f"The certificate with identifier {header.get('kid')} used to sign the federated credential "
                f"could not be found in the metadata of identity provider {iss}. Please validate that your "
                "Identity Provider's metadata exposes the key used to sign the incoming token.",
            )
        try:
            jwt.decode(
                assertion,
                self._oidc_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise AadError(
                401,
                "invalid_client",
                50013,
                "Assertion failed signature validation. [Reason - The provided signature value did not match "
                "the expected signature value.]",
            ) from None
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat", 0))
        if not isinstance(exp, int | float) or now >= exp or now < float(nbf or 0):
            raise AadError(
                401,
                "invalid_client",
                700024,
                f"Client assertion is not within its valid time range. Current time: {iso7(now)}, assertion "
                f"valid from {iso7(float(nbf or 0))}, expiry time of assertion {iso7(float(exp or 0))}. "
                "Review the documentation at "
                "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
            )
        by_audience = [c for c in by_issuer if c.audience in audiences]
        if not by_audience:
            self._no_fic_match(700212, f"audience '{', '.join(audiences)}'", iss, sub, audiences)
        if not any(c.subject == sub for c in by_audience):
            self._no_fic_match(700213, f"subject '{sub}'", iss, sub, audiences)

    def _no_fic_match(self, code: int, what: str, iss: str, sub: str, audiences: list[str]) -> None:
        if self.legacy_fic_errors:
            raise AadError(
                400,
                "invalid_request",
                70021,
                f"No matching federated identity record found for presented assertion. Assertion Issuer: "
                f"'{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{', '.join(audiences)}'. "
                f"{FIC_DOCS}",
            )
        raise AadError(
            401,
            "invalid_client",
            code,
            f"No matching federated identity record found for presented assertion {what}. Check your "
            f"federated identity credential Subject, Audience and Issuer against the presented assertion. "
            f"{FIC_DOCS}",
        )

    def _token_response(self, app: AppRegistration, resource: str, claims_param: str | None) -> Response:
        now = int(time.time())
        lifetime = int(self.token_lifetime)
        claims: dict[str, Any] = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{app.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "appid": app.client_id,
            "appidacr": "2",
            "idp": f"https://sts.windows.net/{app.tenant_id}/",
            "oid": app.object_id,
            "sub": app.object_id,
            "tid": app.tenant_id,
            "uti": b64url(_secrets.token_bytes(16)),
            "ver": "1.0",
        }
        if claims_param and "CP1" in claims_param:
            claims["xms_cc"] = ["CP1"]
        token = jwt.encode(
            claims, self._entra_key, algorithm="RS256", headers={"kid": self._entra_kid, "typ": "JWT"}
        )
        body = {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }
        return Response.json(200, body, self._aad_headers(str(uuid.uuid4())), content_type=JSON_UTF8)
