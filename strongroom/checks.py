"""System checks that stop an unsafe production start. Ids: strongroom.E001 ...

An unsafe setting is an Error, not a Warning: `strongroom serve` refuses to start with it.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register

from strongroom.environment import ConfigError


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@register()
def check_key_file(app_configs: Any, **kwargs: Any) -> list[Error]:
    from strongroom.crypto.keyfile import load_kek

    if not settings.KEK_FILE.exists():
        return []  # created by `strongroom serve` on a new installation
    try:
        load_kek(settings.KEK_FILE)
    except ConfigError as exc:
        return [Error(str(exc), id="strongroom.E001")]
    return []


@register()
def check_kek_provider(app_configs: Any, **kwargs: Any) -> list[Error]:
    """The key-encryption key can be used: the versions file is sound, or the HSM token is
    reachable with the configured PIN. An unusable KEK stops start-up rather than the first read."""
    from strongroom.crypto.kek import kek_provider
    from strongroom.crypto.keyfile import load_kek

    if settings.KEK_PROVIDER == "file":
        if not settings.KEK_FILE.exists():
            return []  # created by `strongroom serve` on a new installation
        try:
            load_kek(settings.KEK_FILE)
        except ConfigError:
            return []  # reported by strongroom.E001
    try:
        kek_provider().check()
    except ConfigError as exc:
        return [
            Error(
                str(exc),
                hint='See docs/encryption.md, "Key-encryption key providers", and STRONGROOM_KEK_PROVIDER.',
                id="strongroom.E006",
            )
        ]
    return []


@register()
def check_transport(app_configs: Any, **kwargs: Any) -> list[Error]:
    errors = []
    host = urlsplit(settings.PUBLIC_URL).hostname or ""
    if not settings.IS_HTTPS and not _is_loopback(host):
        errors.append(
            Error(
                f"STRONGROOM_PUBLIC_URL={settings.PUBLIC_URL} is plain HTTP on a non-loopback host: "
                "passwords and mail would cross the network in clear.",
                hint="Serve over HTTPS (strongroom serve --tls-cert/--tls-key, or a TLS proxy with "
                "STRONGROOM_BEHIND_TLS_PROXY=1) and set STRONGROOM_PUBLIC_URL=https://...",
                id="strongroom.E002",
            )
        )
    if settings.DEBUG and not _is_loopback(host):
        errors.append(
            Error(
                "STRONGROOM_DEBUG is on for a public address; debug pages reveal settings and data.",
                hint="Unset STRONGROOM_DEBUG.",
                id="strongroom.E003",
            )
        )
    if settings.SMTP_INTAKE:
        intake_host = settings.SMTP_INTAKE.rpartition(":")[0]
        if not (settings.SMTP_INTAKE_TLS_CERT and settings.SMTP_INTAKE_TLS_KEY) and not _is_loopback(intake_host):
            errors.append(
                Error(
                    f"STRONGROOM_SMTP_INTAKE={settings.SMTP_INTAKE} listens beyond loopback without TLS.",
                    hint="Set STRONGROOM_SMTP_INTAKE_TLS_CERT and STRONGROOM_SMTP_INTAKE_TLS_KEY.",
                    id="strongroom.E004",
                )
            )
    return errors


@register()
def check_breached_passwords_file(app_configs: Any, **kwargs: Any) -> list[Error]:
    """A configured breached-password list that cannot be searched fails closed at start-up."""
    from strongroom.identity.passwords import check_breached_file

    problem = check_breached_file(settings.BREACHED_PASSWORDS_FILE)
    if problem is None:
        return []
    return [
        Error(
            problem, hint="Fix or unset STRONGROOM_BREACHED_PASSWORDS_FILE (docs/passwords.md).", id="strongroom.E005"
        )
    ]
