"""Kubernetes client configuration: the in-cluster service account, else KUBECONFIG, with any key
material the library writes to TMPDIR loaded into memory and deleted at once."""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
from pathlib import Path
from typing import Any, Final

import kubernetes.client
import kubernetes.config
import yaml
from kubernetes.config.config_exception import ConfigException

from jobs.core.errors import ConfigError
from jobs.core.logs import register_secret
from jobs.core.settings import KubeSettings, load_settings

log = logging.getLogger(__name__)
_CLIENT_CERT_CONTEXT: Final = "_secret_origin_client_cert_context"


def load_configuration() -> kubernetes.client.Configuration:
    """In-cluster service account if present, else KUBECONFIG; ConfigError when neither works."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        log.debug("Kubernetes: in-cluster service account")
    except ConfigException as in_cluster:
        load_settings(KubeSettings)  # names a KUBECONFIG file that does not exist (the library skips it)
        try:
            # KUBECONFIG is read here, not at import time as the library's default does.
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=os.environ.get("KUBECONFIG") or None, client_configuration=configuration
            )
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            # Never the parser's text: it quotes the token it choked on, which may be the credential.
            raise ConfigError(f"KUBECONFIG is not valid YAML{where} ({type(exc).__name__})") from None
        except (ConfigException, OSError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"no Kubernetes configuration: not in a pod ({in_cluster}) and no usable KUBECONFIG "
                f"({type(exc).__name__}: {exc})"
            ) from None
    configuration.retries = 0  # our RetryPolicy retries; urllib3's own loop would hide attempts
    for credential in (configuration.api_key or {}).values():
        register_secret(str(credential).removeprefix("Bearer ").strip())
    _keys_into_memory(configuration)
    return configuration


def _library_temp_files() -> dict[str, str]:
    files: dict[str, str] = kubernetes.config.kube_config._temp_files
    return files


def _keys_into_memory(configuration: kubernetes.client.Configuration) -> None:
    """The kubernetes client writes kubeconfig `*-data` (client key, certificate, CA) to files in TMPDIR
    and deletes them only at a clean exit: load them into an SSL context now, then delete them, so no
    key material stays on disk after any exit, SIGKILL included. Files the kubeconfig names are kept."""
    written = set(_library_temp_files().values())
    try:
        if configuration.ssl_ca_cert in written:
            configuration.ca_cert_data = Path(configuration.ssl_ca_cert).read_text(encoding="utf-8")
            configuration.ssl_ca_cert = None
        if configuration.cert_file and configuration.key_file:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if not (configuration.ssl_ca_cert or configuration.ca_cert_data):
                context.load_default_certs()
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
            setattr(configuration, _CLIENT_CERT_CONTEXT, context)
            configuration.cert_file = configuration.key_file = None
    except (OSError, ssl.SSLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"KUBECONFIG client certificate or CA: {type(exc).__name__}") from None
    finally:
        for name in written:
            with contextlib.suppress(OSError):
                os.remove(name)
        _library_temp_files().clear()


def use_client_cert_context(api: kubernetes.client.ApiClient, configuration: Any) -> None:
    context = getattr(configuration, _CLIENT_CERT_CONTEXT, None)
    if context is not None:
        api.rest_client.pool_manager.connection_pool_kw.update(ssl_context=context)
