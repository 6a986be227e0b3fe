"""The client's IP address, for every part of the gateway (relay, realtime, /api, logs).

Forwarding headers (X-Forwarded-For, X-Real-IP, X-Forwarded-Proto) are written by whoever sends
the request, so they count only when the TCP peer is one of TRUSTED_PROXIES. Then the client is
the right-most X-Forwarded-For address that is not itself a trusted proxy: each proxy appends the
address it saw, so everything left of the first untrusted hop may be forged.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from django.conf import settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: list[str] | tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """IPs or CIDRs; a bad entry is a configuration error, not something to skip silently."""
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())


@lru_cache(maxsize=1)
def _trusted(raw: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return parse_networks(raw)


def trusted_networks() -> tuple[IPNetwork, ...]:
    return _trusted(tuple(settings.TRUSTED_PROXIES))


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_trusted(addr: str, networks: tuple[IPNetwork, ...] | None = None) -> bool:
    networks = trusted_networks() if networks is None else networks
    if not networks:
        return False
    ip = _address(addr)
    return ip is not None and any(ip in net for net in networks)


def resolve(peer: str, forwarded_for: str | None, real_ip: str | None) -> str:
    """The client address given the TCP peer and the raw forwarding headers."""
    networks = trusted_networks()
    if not networks or not is_trusted(peer, networks):
        return peer
    if forwarded_for:
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not is_trusted(hop, networks):
                return hop
        if hops:  # every hop is one of our proxies: the first one is as close to the client as we know
            return hops[0]
    if real_ip and real_ip.strip():
        return real_ip.strip()
    return peer


def _scope_headers(scope: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    forwarded: list[str] = []
    real_ip = proto = None
    for name, value in scope.get("headers") or ():
        name = name.lower()
        if name == b"x-forwarded-for":
            forwarded.append(value.decode("latin-1"))
        elif name == b"x-real-ip":
            real_ip = value.decode("latin-1")
        elif name == b"x-forwarded-proto":
            proto = value.decode("latin-1")
    return (",".join(forwarded) or None), real_ip, proto


def _peer(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def from_scope(scope: dict[str, Any]) -> str:
    """An ASGI http/websocket scope."""
    peer = _peer(scope)
    if not trusted_networks():
        return peer
    forwarded, real_ip, _proto = _scope_headers(scope)
    return resolve(peer, forwarded, real_ip)


def from_headers(headers: dict[str, str], peer: str) -> str:
    """Headers already decoded into a lower-cased dict (the relay router's form)."""
    if not trusted_networks():
        return peer
    return resolve(peer, headers.get("x-forwarded-for"), headers.get("x-real-ip"))


def from_request(request: Any) -> str:
    """A Django HttpRequest (or DRF Request)."""
    meta = getattr(request, "_request", request).META
    peer = meta.get("REMOTE_ADDR", "") or ""
    if not trusted_networks():
        return peer
    return resolve(peer, meta.get("HTTP_X_FORWARDED_FOR"), meta.get("HTTP_X_REAL_IP"))
