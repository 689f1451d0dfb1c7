"""The catalog's field rules for text: names (Azure Key Vault secret names, also single Vault path
segments), Kubernetes names, mounts, URLs, Keycloak realms, run ids, and free text without control
characters, which could forge a `file:line:` line or rewrite a terminal when printed
(docs/design.md#the-catalog)."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

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


def _plain_text(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("must not contain control characters (newline, tab, escape, bidi overrides, ...)")
    return value


def _path_segment(value: str) -> str:
    """A Keycloak realm: one URL path segment, so no '/' or '\\', and not '.' or '..'."""
    if value in {".", ".."} or "/" in value or "\\" in value:
        raise ValueError("must be one path segment: no '/' or '\\', and not '.' or '..'")
    return value


Text = Annotated[str, AfterValidator(_plain_text)]
Realm = Annotated[str, AfterValidator(_plain_text), AfterValidator(_path_segment)]


def check_url(value: str, schemes: tuple[str, ...]) -> str:
    _plain_text(value)
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


def _to_str(value: Any) -> Any:
    # YAML turns `runId: 7` into an int; a runId is an opaque label, so accept it as text.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


RunId = Annotated[
    str, BeforeValidator(_to_str), Field(min_length=1, max_length=128), AfterValidator(_plain_text)
]


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


Grace = Annotated[int, BeforeValidator(parse_duration), Field(strict=True)]
