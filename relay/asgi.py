"""Placeholder: replaced by the relay router."""

from __future__ import annotations


class RelayRouter:
    def __init__(self, fallback) -> None:
        self.fallback = fallback

    async def __call__(self, scope, receive, send) -> None:
        await self.fallback(scope, receive, send)
