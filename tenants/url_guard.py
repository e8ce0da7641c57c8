"""The one guard for outbound URLs: which addresses webhooks and external calendars may reach.

Unless private addresses are allowed (``WEBHOOK_ALLOW_PRIVATE_URLS``), a host must resolve only to
public addresses: no loopback, private, link-local, shared (CGNAT), multicast, reserved or
unspecified ranges, including IPv4 addresses hidden inside IPv6 forms (mapped, NAT64, 6to4,
Teredo). ``allowed_networks`` (``OUTBOUND_ALLOWED_NETWORKS``) names networks that may be reached
although they are not public (an intranet CalDAV server). Webhooks also require ``https://``
(``require_https``); calendar feeds may be plain http.

A URL is checked when it is saved (``url_check``) and again before every request
(``url_resolve``), every redirect hop included; the request is then sent to an address that was
checked (``pinned_target``), so a DNS answer that changes between check and connect (DNS
rebinding) cannot redirect it.

No Django and no ORM here: plain functions over strings and addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

MAX_URL_LENGTH = 2000
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeUrl(ValueError):
    """The URL may not be used. ``permanent``: it will never become usable by itself (wrong scheme,
    malformed); otherwise it might (a name that resolves elsewhere later, a DNS failure)."""

    def __init__(self, message: str, *, permanent: bool):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def address_is_public(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for globally routable unicast addresses."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None and not address_is_public(inner):
            return False
    return bool(
        ip.is_global
        and not (
            ip.is_private
            or ip.is_loopback
            or ip.is_link_local
            or ip.is_multicast
            or ip.is_reserved
            or ip.is_unspecified
        )
    )


def url_parse(url: str, *, allow_private: bool, require_https: bool = True) -> SplitResult:
    """The URL's parts after the checks that need no network; raises ``UnsafeUrl``."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeUrl("must be a URL.", permanent=True)
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"must be at most {MAX_URL_LENGTH} characters.", permanent=True)
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UnsafeUrl("must not contain spaces or control characters.", permanent=True)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("is not a valid URL.", permanent=True) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrl("must start with https://.", permanent=True)
    if scheme == "http" and require_https and not allow_private:
        raise UnsafeUrl("must use https:// (plain http is not allowed unless WEBHOOK_ALLOW_PRIVATE_URLS=true).", permanent=True)
    if not parts.hostname:
        raise UnsafeUrl("must name a host.", permanent=True)
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("must not contain a user name or password.", permanent=True)
    if port == 0:
        raise UnsafeUrl("must not use port 0.", permanent=True)
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        raise UnsafeUrl("has an invalid host name.", permanent=True) from None
    return parts


def host_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host.encode("idna").decode("ascii"), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise UnsafeUrl(f"host {host!r} does not resolve ({exc}).", permanent=False) from None
    addresses: list[str] = []
    for info in infos:
        address = info[4][0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeUrl(f"host {host!r} does not resolve.", permanent=False)
    return addresses


def _default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


def address_is_allowed(address: str, *, allowed_networks: Iterable[str] = ()) -> bool:
    """Public, or inside one of ``allowed_networks`` (CIDR strings)."""
    if address_is_public(address):
        return True
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    for network in allowed_networks:
        net = ipaddress.ip_network(network, strict=False)
        if ip.version == net.version and ip in net:
            return True
    return False


def _addresses_checked(parts: SplitResult, *, allow_private: bool, allowed_networks: Iterable[str]) -> list[str]:
    addresses = host_resolve(parts.hostname, _default_port(parts))
    allowed_networks = tuple(allowed_networks)
    blocked = [] if allow_private else [
        a for a in addresses if not address_is_allowed(a, allowed_networks=allowed_networks)
    ]
    if blocked:
        raise UnsafeUrl(
            f"must resolve to public addresses only ({parts.hostname} resolves to private address "
            f"{', '.join(blocked)}).",
            permanent=False,
        )
    return addresses


def url_check(
    url: str, *, allow_private: bool, require_https: bool = True, allowed_networks: Iterable[str] = ()
) -> list[str]:
    """Check ``url`` when it is saved; returns the allowed addresses its host resolves to (none are
    looked up when private addresses are allowed). Raises ``UnsafeUrl``."""
    parts = url_parse(url, allow_private=allow_private, require_https=require_https)
    if allow_private:
        return []
    return _addresses_checked(parts, allow_private=False, allowed_networks=allowed_networks)


def url_resolve(
    url: str, *, allow_private: bool, require_https: bool = True, allowed_networks: Iterable[str] = ()
) -> list[str]:
    """Check ``url`` before a request; returns the addresses to connect to, in the resolver's
    order, each public or in ``allowed_networks`` unless private addresses are allowed. The host is
    looked up also when they are allowed, so that development and tests send exactly as production
    does: to a checked address (``pinned_target``), never to whatever a second lookup answers.
    Raises ``UnsafeUrl``."""
    parts = url_parse(url, allow_private=allow_private, require_https=require_https)
    return _addresses_checked(parts, allow_private=allow_private, allowed_networks=allowed_networks)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class PinnedTarget:
    """A request aimed at one checked address while keeping the original host for the ``Host``
    header and for TLS (SNI and certificate verification)."""

    url: str  # the URL with the host replaced by the address
    host_header: str
    sni_hostname: str


def pinned_target(url: str, address: str) -> PinnedTarget:
    parts = urlsplit(url)
    host = parts.hostname.encode("idna").decode("ascii") if not _is_ip(parts.hostname) else parts.hostname
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    ip_text = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = f"{ip_text}:{parts.port}" if parts.port else ip_text
    original_host = f"[{host}]" if ":" in host else host
    host_header = f"{original_host}:{parts.port}" if parts.port else original_host
    return PinnedTarget(
        url=urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
        host_header=host_header,
        sni_hostname=host,
    )
