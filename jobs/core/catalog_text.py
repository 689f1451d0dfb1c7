"""The catalog's field rules for text: names (Azure Key Vault secret names, also single Vault path
segments), Kubernetes names, mounts, URLs, Keycloak realms, run ids, and free text without control
characters, which could forge a `file:line:` line or rewrite a terminal when printed
(docs/design.md#the-catalog). Standard library only: the catalog's error paths run without pydantic;
the annotated field types built from these rules live in `jobs.core.catalog_model`."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Final
from urllib.parse import urlsplit

# Azure Key Vault secret names: 1-127 letters, digits and dashes. Every catalog name must be a valid
# AKV name, which also makes it a valid single Vault path segment.
NAME_PATTERN: Final = re.compile(r"^[0-9A-Za-z-]{1,127}$")
MOUNT_PATTERN: Final = re.compile(r"^[0-9A-Za-z_.-]+(/[0-9A-Za-z_.-]+)*$")
K8S_NAME: Final = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
PRODUCTION: Final = "production"


# Unicode categories refused in names and free text: controls (newline, tab, ESC...), format characters
# (bidi overrides), line/paragraph separators, surrogates, private use and unassigned code points. Any
# of them could forge a `file:line:` line or rewrite a terminal when the text is printed.
_UNPRINTABLE: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(char) in _UNPRINTABLE for char in value)


def plain_text(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("must not contain control characters (newline, tab, escape, bidi overrides, ...)")
    return value


def path_segment(value: str) -> str:
    """A Keycloak realm: one URL path segment, so no '/' or '\\', and not '.' or '..'."""
    if value in {".", ".."} or "/" in value or "\\" in value:
        raise ValueError("must be one path segment: no '/' or '\\', and not '.' or '..'")
    return value


def check_url(value: str, schemes: tuple[str, ...]) -> str:
    plain_text(value)
    wanted = " or ".join(f"{scheme}://" for scheme in schemes)
    if not value.startswith(tuple(f"{scheme}://" for scheme in schemes)):
        raise ValueError(f"must be an {wanted} URL")
    try:
        host = urlsplit(value).hostname
    except ValueError:
        host = None
    if not host:
        raise ValueError(f"must be an {wanted} URL with a host")
    return value


def is_valid_name(value: str) -> bool:
    return bool(NAME_PATTERN.fullmatch(value))


# -- the field validators (the model's and the stdlib checker's; docs/design.md#the-catalog) ---------
def check_mount(value: str) -> str:
    if not MOUNT_PATTERN.fullmatch(value):
        raise ValueError("must be a Vault mount path such as 'secret' (no leading or trailing '/')")
    if any(segment in {".", ".."} for segment in value.split("/")):
        raise ValueError("must not contain '.' or '..' path segments")
    return value


def check_akv_url(value: str) -> str:
    if not value.startswith("https://"):
        raise ValueError("must be an https:// URL (the Key Vault SDK refuses plain HTTP)")
    check_url(value, ("https",))
    return value if value.endswith("/") else value + "/"


def check_prefix(value: str) -> str:
    if value and not re.fullmatch(r"[0-9A-Za-z-]{1,126}", value):
        raise ValueError("may contain only letters, digits and '-'")
    return value


def check_keycloak_url(value: str) -> str:
    return check_url(value, ("http", "https")).rstrip("/")


def check_k8s_name(value: str) -> str:
    if not K8S_NAME.fullmatch(value):
        raise ValueError("must be a Kubernetes object name (lower-case DNS subdomain)")
    return value


def check_entry_name(value: str) -> str:
    if not is_valid_name(value):
        raise ValueError("must be 1-127 letters, digits or '-' (a valid Vault path segment and AKV name)")
    return value


def check_akv_name(value: str | None) -> str | None:
    if value is not None and not is_valid_name(value):
        raise ValueError("must be 1-127 letters, digits or '-' (Azure Key Vault secret name rules)")
    return value


def to_str(value: Any) -> Any:
    # YAML turns `runId: 7` into an int; a runId is an opaque label, so accept it as text.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# `keycloak.rotate.grace`: how long the old secret must stay valid after a rotation.
GRACE_MIN: Final = 60  # seconds: ESO, the kubelet and a pod reload need at least this long
GRACE_MAX: Final = 7 * 86400  # seconds: a window left open longer is a second live credential
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNIT_SECONDS: Final = (86400, 3600, 60, 1)


def parse_duration(value: Any) -> Any:
    """ "15m", "1h30m", "2d", "90s" -> seconds, within GRACE_MIN..GRACE_MAX. A bare number is refused:
    the unit must be written."""
    if not isinstance(value, str):
        raise ValueError("must be a duration with its unit, such as 15m, 1h30m, 2d or 90s")  # noqa: TRY004 (pydantic reports ValueError)
    match = _DURATION.fullmatch(value.strip())
    if not value.strip() or match is None:
        raise ValueError("must be a duration such as 15m, 1h30m, 2d or 90s")
    seconds = sum(int(part or 0) * unit for part, unit in zip(match.groups(), _UNIT_SECONDS, strict=True))
    if not GRACE_MIN <= seconds <= GRACE_MAX:
        raise ValueError(f"must be between {GRACE_MIN // 60}m and {GRACE_MAX // 86400}d")
    return seconds
