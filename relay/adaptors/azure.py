"""Azure OpenAI: deployments named after the model, `api-key` header.

api-version: the client's `?api-version`, else channel.other, else AZURE_DEFAULT_API_VERSION.
Deployment: the upstream model with dots removed (gpt-3.5-turbo → gpt-35-turbo).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from django.conf import settings

from relay.adaptors.base import RealtimeTarget, RelayContext, UpstreamRequest
from relay.adaptors.openai import OpenAIAdaptor, websocket_base
from relay.state import ChannelInfo
from relay.upstream.safe_paths import check_url_segment

CF_GATEWAY = "https://gateway.ai.cloudflare.com"


def api_version(ctx: RelayContext) -> str:
    return _api_version(parse_qs(ctx.query), ctx.channel)


def _api_version(query: dict[str, list[str]], channel: ChannelInfo) -> str:
    from_query = query.get("api-version")
    if from_query and from_query[0]:
        return from_query[0]
    return channel.other.strip() or settings.AZURE_DEFAULT_API_VERSION


class AzureAdaptor(OpenAIAdaptor):
    name = "azure"

    def request_url(self, ctx: RelayContext) -> str:
        deployment = check_url_segment(ctx.upstream_model).replace(".", "")
        task = ctx.path.split("?", 1)[0]
        for prefix in ("/v1/", "/pg/"):
            if task.startswith(prefix):
                task = task[len(prefix) :]
                break
        base = self.base_url(ctx.channel)
        if base.startswith(CF_GATEWAY):  # Cloudflare AI Gateway proxies drop /openai/deployments
            return f"{base}/{deployment}/{task}?api-version={api_version(ctx)}"
        return f"{base}/openai/deployments/{deployment}/{task}?api-version={api_version(ctx)}"

    def request_headers(self, ctx: RelayContext) -> dict[str, str]:
        headers = super().request_headers(ctx)
        headers.pop("Authorization", None)
        headers.pop("OpenAI-Organization", None)
        headers["api-key"] = ctx.channel.key
        return headers

    def responses_request(self, ctx: RelayContext, method: str, sub_path: str) -> UpstreamRequest:
        """Azure's v1 API (`/openai/v1/responses`): the deployment goes in the body's model."""
        ctx.upstream_model = check_url_segment(ctx.upstream_model).replace(".", "")
        url = f"{self.base_url(ctx.channel)}/openai/v1/responses{sub_path}"
        return self._responses_request(ctx, method, f"{url}?{ctx.query}" if ctx.query else url)

    def realtime_target(
        self,
        channel: ChannelInfo,
        model: str,
        path: str,
        query: dict[str, list[str]],
        key_in_subprotocol: bool,
    ) -> RealtimeTarget:
        params = {
            "deployment": check_url_segment(model).replace(".", ""),
            "api-version": _api_version(query, channel),
        }
        url = f"{websocket_base(self.base_url(channel))}/openai/realtime?{urlencode(params)}"
        return RealtimeTarget(url, {"api-key": channel.key})
