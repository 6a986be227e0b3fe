"""GET /v1/models and /v1/models/{id}: the models the caller's token may use."""

from __future__ import annotations

from typing import Any

from relay import auth, state
from relay.edge.wire import ClientRequest, Response, json_response
from relay.errors import LocalError

CREATED = 1626777600


def _owner(model: str) -> str:
    m = model.lower()
    for prefix, owner in (
        ("claude", "anthropic"),
        ("gemini", "google"),
        ("command", "cohere"),
        ("deepseek", "deepseek"),
        ("jina", "jina"),
        ("mistral", "mistral"),
        ("grok", "xai"),
        ("llama", "meta"),
    ):
        if m.startswith(prefix):
            return owner
    return (
        "openai"
        if m.startswith(("gpt", "o1", "o3", "text-", "dall-e", "whisper", "tts", "chatgpt"))
        else "custom"
    )


def model_object(model: str) -> dict[str, Any]:
    return {
        "id": model,
        "object": "model",
        "created": CREATED,
        "owned_by": _owner(model),
        "permission": [],
        "root": model,
        "parent": None,
    }


def visible_models(caller: auth.Caller, index: state.ChannelIndex) -> list[str]:
    if caller.token.model_limits_enabled:
        return sorted(caller.token.model_limits)
    return index.models_by_group.get(caller.group, [])


async def list_models(req: ClientRequest) -> Response:
    await state.ensure_options_loaded()
    caller = await auth.authenticate(req.headers, req.path)
    # A listing is not a failure: no catch-up here (the bus brings a new channel within milliseconds).
    models = visible_models(caller, await state.channels.index())
    # OpenAI's list shape, plus New API's `success` key for tools written against it.
    return json_response({"object": "list", "success": True, "data": [model_object(m) for m in models]})


async def retrieve_model(req: ClientRequest, model: str) -> Response:
    await state.ensure_options_loaded()
    caller = await auth.authenticate(req.headers, req.path)
    index = await state.channels.index()
    if model not in visible_models(caller, index):  # or added a moment ago through another process?
        fresh = await state.fresher_channels(index)
        if fresh is None or model not in visible_models(caller, fresh):
            raise LocalError(
                f"The model '{model}' does not exist",
                status=404,
                type="invalid_request_error",
                code="model_not_found",
                param="model",
            )
    return json_response(model_object(model))
