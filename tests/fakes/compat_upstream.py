"""The fake OpenAI upstream, also answering the provider-specific chat paths (MiniMax's
/v1/text/chatcompletion_v2) so every OpenAI-compatible adaptor can be exercised end to end.
`raw_paths` keeps the path each request really arrived at."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.openai_upstream import FakeOpenAI

ALIASES = {"/v1/text/chatcompletion_v2": "/v1/chat/completions"}


@dataclass
class FakeCompatible(FakeOpenAI):
    raw_paths: list[str] = field(default_factory=list)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.raw_paths.append(request.path_qs)
        alias = ALIASES.get(request.path)
        if alias:
            request = request.clone(rel_url=request.rel_url.with_path(alias))
        return await super()._handle(request)
