"""Which addresses the gateway may fetch from or post to on a user's behalf (media URLs, webhooks).

A user-supplied URL must not reach the gateway's own network: every address its host resolves to
must be global (no private, loopback, link-local, reserved or multicast address), unless the
operator allows private addresses with MEDIA_FETCH_ALLOW_PRIVATE. Callers connect to the checked
address itself, so a second DNS lookup cannot change it, and check each redirect again.
"""

from __future__ import annotations

import ipaddress
import socket

from django.conf import settings


def address_allowed(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


def all_allowed(addresses: list[str]) -> bool:
    """True when every address may be reached (always, when private addresses are allowed)."""
    return bool(settings.MEDIA_FETCH_ALLOW_PRIVATE) or all(address_allowed(a) for a in addresses)


def resolve_public_sync(host: str, port: int) -> str:
    """One address for host after checking all it resolves to; ValueError when refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ValueError(f"cannot resolve host {host}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise ValueError(f"cannot resolve host {host}")
    if not all_allowed(addresses):
        raise ValueError("URL points to a private, loopback or reserved address")
    return addresses[0]
