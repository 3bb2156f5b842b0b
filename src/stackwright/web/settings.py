"""Who the web view serves and how it knows who is asking.

Identity comes from a trusted reverse proxy (oauth2-proxy and the like): the proxy
authenticates the person and passes their identity in a header (``X-Forwarded-Email``
by default in oauth2-proxy). The header is believed only on connections from the
configured proxy addresses; from anywhere else it is ignored, and the request is
anonymous (read-only). A local development mode names a fixed identity instead, is
labelled on every page, and serves only loopback addresses.

Settings come from ``web:`` in ``stackwright.yaml`` and from `serve`'s flags (which win):

    web:
      identity_header: X-Forwarded-Email
      trusted_proxies: [127.0.0.1]
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackwright.errors import ProjectError, StackwrightError

DEFAULT_PROXIES = ("127.0.0.1", "::1")


class WebSection(BaseModel):
    """``web:`` of stackwright.yaml."""

    model_config = ConfigDict(extra="forbid")

    identity_header: str | None = None
    trusted_proxies: list[str] = Field(default_factory=lambda: list(DEFAULT_PROXIES))


class UnsafeServe(StackwrightError):
    """The server would serve other machines without knowing who anybody is."""


@dataclass(frozen=True)
class Identity:
    name: str
    auth: str
    """``proxy`` (named by the trusted proxy) or ``dev`` (local development mode)."""


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    identity_header: str | None = None
    trusted_proxies: tuple[str, ...] = DEFAULT_PROXIES
    dev_user: str | None = None

    @property
    def dev_mode(self) -> bool:
        return self.dev_user is not None and self.identity_header is None

    def identity(self, client_host: str | None, headers: Mapping[str, str]) -> Identity | None:
        """Who sent this request, or None (anonymous: read-only)."""
        if self.identity_header is not None:
            name = headers.get(self.identity_header.lower(), "").strip()
            if name and client_host is not None and trusted(client_host, self.trusted_proxies):
                return Identity(name, "proxy")
            return None
        if self.dev_user is not None:
            return Identity(self.dev_user, "dev")
        return None


def trusted(host: str, proxies: Sequence[str]) -> bool:
    """True when ``host`` is one of ``proxies`` (addresses or networks)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(p, strict=False) for p in proxies)


def web_section(settings: Mapping[str, Any], file: str) -> WebSection:
    try:
        return WebSection(**(settings.get("web") or {}))
    except (ValidationError, TypeError) as exc:
        raise ProjectError(f"`web:` {exc}".splitlines()[0], file=file,
                           hint="web: {identity_header: X-Forwarded-Email, trusted_proxies: [127.0.0.1]}") from None


def check_safe(settings: WebSettings) -> None:
    """Refuse to serve a non-loopback address without authentication, and a proxy
    list that does not parse."""
    for proxy in settings.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise UnsafeServe(f"trusted proxy {proxy!r} is not an IP address or network",
                              hint="e.g. --trusted-proxy 10.0.0.5 or --trusted-proxy 10.0.0.0/24") from None
    if settings.dev_user is not None and not settings.dev_user.strip():
        raise UnsafeServe("--dev-user needs a name to act as", hint='e.g. --dev-user "$(git config user.email)"')
    if loopback(settings.host):
        return
    if settings.identity_header is None:
        mode = " (--dev-user is for loopback only)" if settings.dev_user is not None else ""
        raise UnsafeServe(
            f"refusing to serve {settings.host}, which is not a loopback address, without authentication{mode}",
            hint="put an authenticating proxy in front and pass --identity-header X-Forwarded-Email "
            "--trusted-proxy ADDRESS (or `web:` in stackwright.yaml); see docs/web.md")


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
