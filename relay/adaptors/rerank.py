"""Rerank per provider: where to send it, and how the answer becomes
{results:[{index, relevance_score, document?}], usage:{prompt_tokens, total_tokens}}.

Jina, SiliconFlow, Xinference and OpenAI-type channels take the request as is at {base}/v1/rerank
with a Bearer key; Cohere gets its own body shape.
"""

from __future__ import annotations

from typing import Any

import orjson

from relay.adaptors.base import RelayContext, UpstreamRequest, Usage
from relay.adaptors.registry import effective_base_url
from relay.channels.types import ChannelType


def _base(ctx: RelayContext) -> str:
    return effective_base_url(ctx.channel.type, ctx.channel.base_url) or "https://api.openai.com"


def build_rerank_request(ctx: RelayContext) -> UpstreamRequest:
    body = dict(ctx.body)
    body["model"] = ctx.upstream_model
    if ctx.channel.type == ChannelType.COHERE:
        body = {
            "model": ctx.upstream_model,
            "query": body.get("query"),
            "documents": body.get("documents"),
            "top_n": body.get("top_n") or len(body.get("documents") or []),
            "return_documents": bool(body.get("return_documents", True)),
        }
    headers = {"Authorization": f"Bearer {ctx.channel.key}", "Content-Type": "application/json"}
    return UpstreamRequest("POST", _base(ctx) + "/v1/rerank", headers, orjson.dumps(body))


def parse_rerank(
    ctx: RelayContext, data: dict[str, Any], counted_prompt: int
) -> tuple[dict[str, Any], Usage]:
    documents = ctx.body.get("documents") or []
    want_docs = bool(ctx.body.get("return_documents"))
    results: list[dict[str, Any]] = []
    for item in data.get("results") or []:
        if not isinstance(item, dict):
            continue
        index = int(item.get("index") or 0)
        result: dict[str, Any] = {
            "index": index,
            "relevance_score": float(item.get("relevance_score") or item.get("score") or 0),
        }
        if item.get("document") is not None:
            result["document"] = item["document"]
        elif want_docs and 0 <= index < len(documents):
            result["document"] = documents[index]
        results.append(result)
    prompt = 0
    usage = u if isinstance(u := data.get("usage"), dict) else {}
    meta = m if isinstance(m := data.get("meta"), dict) else {}
    if usage:
        prompt = int(usage.get("total_tokens") or usage.get("prompt_tokens") or 0)
    elif isinstance(meta.get("tokens"), dict):  # SiliconFlow
        prompt = int(meta["tokens"].get("input_tokens") or 0) + int(meta["tokens"].get("output_tokens") or 0)
    elif isinstance(meta.get("billed_units"), dict):  # Cohere
        prompt = int(meta["billed_units"].get("input_tokens") or 0)
    prompt = prompt or counted_prompt
    return {"results": results, "usage": {"prompt_tokens": prompt, "total_tokens": prompt}}, Usage(prompt, 0)
