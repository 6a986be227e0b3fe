"""The adaptor registry: channel type → adaptor. Adding a provider = one module + one line here."""

from __future__ import annotations

from relay.adaptors.azure import AzureAdaptor
from relay.adaptors.base import Adaptor
from relay.adaptors.bedrock import BedrockAdaptor
from relay.adaptors.claude import ClaudeAdaptor
from relay.adaptors.cohere import CohereAdaptor
from relay.adaptors.compatible import COMPATIBLE
from relay.adaptors.dify import DifyAdaptor
from relay.adaptors.gemini import GeminiAdaptor
from relay.adaptors.openai import CustomURLAdaptor, OpenAIAdaptor
from relay.adaptors.vertex import VertexAdaptor

_OPENAI = OpenAIAdaptor()

REGISTRY: dict[int, Adaptor] = {
    0: _OPENAI,
    1: _OPENAI,
    8: CustomURLAdaptor(),
    3: AzureAdaptor(),
    14: ClaudeAdaptor(),
    33: BedrockAdaptor(),
    24: GeminiAdaptor(),
    34: CohereAdaptor(),
    37: DifyAdaptor(),
    41: VertexAdaptor(),
    **COMPATIBLE,
}


def register(channel_type: int, adaptor: Adaptor) -> None:
    REGISTRY[channel_type] = adaptor


def adaptor_for(channel_type: int) -> Adaptor:
    adaptor = REGISTRY.get(channel_type)
    if adaptor is None:
        # New API falls back to the OpenAI adaptor for unlisted types; so do we.
        return _OPENAI
    return adaptor
