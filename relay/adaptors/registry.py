"""Every channel type the gateway knows, one record each: its name, default base URL, the built-in
models it lists, what it accepts, and the adaptor that speaks to it.

Adding a provider = one adaptor module + one entry here (and its ChannelType member). The channel
editor, the model catalog, base-URL defaults and the relay all read these records.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.adaptors.azure import AzureAdaptor
from relay.adaptors.base import Adaptor, serves_realtime, speaks_responses
from relay.adaptors.bedrock import BedrockAdaptor
from relay.adaptors.claude import ClaudeAdaptor
from relay.adaptors.cohere import CohereAdaptor
from relay.adaptors.compatible import CompatibleAdaptor, VolcEngineAdaptor, XAIAdaptor
from relay.adaptors.dify import DifyAdaptor
from relay.adaptors.gemini import GeminiAdaptor
from relay.adaptors.openai import CustomURLAdaptor, OpenAIAdaptor
from relay.adaptors.vertex import VertexAdaptor
from relay.channels.types import ChannelType as T


@dataclass(frozen=True, slots=True)
class Provider:
    type: T
    name: str
    base_url: str = ""  # "" = none: the channel must set base_url (or the adaptor derives it)
    adaptor: Adaptor | None = None  # None: New API's fallback, the OpenAI adaptor (OpenAI's defaults)
    models: tuple[str, ...] = ()  # name prefixes of the built-in models the channel editor offers
    stream_options: bool = True  # accepts OpenAI's stream_options (OpenAI-family adaptors)
    realtime: bool = False  # serves /v1/realtime
    responses: bool = False  # serves /v1/responses natively (others get it converted to chat)
    task_platform: str = ""  # its channels serve this task platform (Midjourney, Suno): no channel test
    # takes Anthropic cache_control markers on chat content parts (prompt caching in the OpenAI format)
    cache_control: bool = False


_V1 = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
    "embeddings": "/v1/embeddings",
    "moderations": "/v1/moderations",
}
_CLOUDFLARE = "/client/v4/accounts/{other}/ai/v1"

PROVIDERS: tuple[Provider, ...] = (
    Provider(T.UNKNOWN, "Unknown"),
    Provider(
        T.OPENAI,
        "OpenAI",
        "https://api.openai.com",
        OpenAIAdaptor(),
        models=(
            "gpt-",
            "o1",
            "o3",
            "o4",
            "chatgpt-",
            "text-embedding-",
            "text-",
            "dall-e",
            "whisper",
            "tts-",
            "babbage",
            "davinci",
            "omni-moderation",
        ),
        realtime=True,
        responses=True,
    ),
    Provider(T.MIDJOURNEY, "Midjourney", "https://oa.api2d.net", task_platform="Midjourney"),
    Provider(
        T.AZURE,
        "Azure",
        "",
        AzureAdaptor(),
        models=("gpt-", "o1", "o3", "text-embedding-", "dall-e", "whisper", "tts-"),
        realtime=True,
        responses=True,
    ),
    Provider(T.OLLAMA, "Ollama", "http://localhost:11434", CompatibleAdaptor("ollama")),
    Provider(
        T.MIDJOURNEY_PLUS, "MidjourneyPlus", "https://api.openai-sb.com", task_platform="Midjourney Plus"
    ),
    Provider(T.OPENAI_MAX, "OpenAIMax", "https://api.openaimax.com"),
    Provider(T.OHMYGPT, "OhMyGPT", "https://api.ohmygpt.com"),
    Provider(T.CUSTOM, "Custom", "", CustomURLAdaptor()),
    Provider(T.AILS, "AILS", "https://api.caipacity.com"),
    Provider(T.AIPROXY, "AIProxy", "https://api.aiproxy.io"),
    Provider(T.PALM, "PaLM"),
    Provider(T.API2GPT, "API2GPT", "https://api.api2gpt.com"),
    Provider(T.AIGC2D, "AIGC2D", "https://api.aigc2d.com"),
    Provider(T.ANTHROPIC, "Anthropic", "https://api.anthropic.com", ClaudeAdaptor(), models=("claude-",)),
    Provider(T.BAIDU, "Baidu", "https://aip.baidubce.com", models=("ERNIE-", "ernie-")),
    Provider(T.ZHIPU, "Zhipu", "https://open.bigmodel.cn", models=("chatglm",)),
    Provider(
        T.ALI,
        "Ali",
        "https://dashscope.aliyuncs.com",
        models=("qwen", "text-embedding-v"),
        cache_control=True,
    ),
    Provider(T.XUNFEI, "Xunfei", models=("SparkDesk",)),
    Provider(T.AI360, "360", "https://api.360.cn", CompatibleAdaptor("360"), stream_options=False),
    Provider(
        T.OPENROUTER,
        "OpenRouter",
        "https://openrouter.ai/api",
        CompatibleAdaptor(
            "openrouter",
            headers={"HTTP-Referer": "https://github.com/Calcium-Ion/new-api", "X-Title": "New API"},
        ),
        stream_options=False,
        cache_control=True,
    ),
    Provider(T.AIPROXY_LIBRARY, "AIProxyLibrary", "https://api.aiproxy.io"),
    Provider(T.FASTGPT, "FastGPT", "https://fastgpt.run/api/openapi"),
    Provider(T.TENCENT, "Tencent", "https://hunyuan.tencentcloudapi.com", models=("hunyuan",)),
    Provider(
        T.GEMINI,
        "Gemini",
        "https://generativelanguage.googleapis.com",
        GeminiAdaptor(),
        models=("gemini-", "text-embedding-004"),
    ),
    Provider(
        T.MOONSHOT,
        "Moonshot",
        "https://api.moonshot.cn",
        CompatibleAdaptor("moonshot"),
        models=("moonshot-",),
        stream_options=False,
    ),
    Provider(
        T.ZHIPU_V4,
        "Zhipu_v4",
        "https://open.bigmodel.cn",
        CompatibleAdaptor(
            "zhipu_v4",
            paths={"chat": "/api/paas/v4/chat/completions", "embeddings": "/api/paas/v4/embeddings"},
        ),
        models=("glm-",),
        stream_options=False,
    ),
    Provider(
        T.PERPLEXITY,
        "Perplexity",
        "https://api.perplexity.ai",
        CompatibleAdaptor("perplexity", paths={"chat": "/chat/completions"}),
        stream_options=False,
    ),
    Provider(
        T.LINGYIWANWU,
        "LingYiWanWu",
        "https://api.lingyiwanwu.com",
        CompatibleAdaptor("lingyiwanwu"),
        models=("yi-",),
        stream_options=False,
    ),
    Provider(T.AWS, "AWS", "", BedrockAdaptor(), models=("claude-",)),
    Provider(
        T.COHERE,
        "Cohere",
        "https://api.cohere.ai",
        CohereAdaptor(),
        models=("command",),
        stream_options=False,
    ),
    Provider(
        T.MINIMAX,
        "MiniMax",
        "https://api.minimax.chat",
        CompatibleAdaptor(
            "minimax", paths={"chat": "/v1/text/chatcompletion_v2", "embeddings": "/v1/embeddings"}
        ),
        models=("abab",),
        stream_options=False,
    ),
    Provider(T.SUNO_API, "SunoAPI", task_platform="Suno"),
    Provider(T.DIFY, "Dify", "https://api.dify.ai", DifyAdaptor(), stream_options=False),
    # Embeddings at /v1/embeddings; rerank in rerank.py.
    Provider(T.JINA, "Jina", "https://api.jina.ai", CompatibleAdaptor("jina"), stream_options=False),
    Provider(
        T.CLOUDFLARE,
        "Cloudflare",
        "https://api.cloudflare.com",
        CompatibleAdaptor(
            "cloudflare",
            paths={
                "chat": f"{_CLOUDFLARE}/chat/completions",
                "completions": f"{_CLOUDFLARE}/completions",
                "embeddings": f"{_CLOUDFLARE}/embeddings",
            },
        ),
        models=("@cf/",),
    ),
    Provider(
        T.SILICONFLOW,
        "SiliconFlow",
        "https://api.siliconflow.cn",
        CompatibleAdaptor("siliconflow", paths=_V1),
        stream_options=False,
    ),
    Provider(T.VERTEX_AI, "VertexAI", "", VertexAdaptor(), models=("claude-", "gemini-")),
    Provider(
        T.MISTRAL,
        "Mistral",
        "https://api.mistral.ai",
        CompatibleAdaptor("mistral"),
        models=("mistral-", "open-mistral", "open-mixtral", "codestral"),
        stream_options=False,
    ),
    Provider(
        T.DEEPSEEK,
        "DeepSeek",
        "https://api.deepseek.com",
        CompatibleAdaptor(
            "deepseek", paths={"chat": "/v1/chat/completions", "completions": "/beta/completions"}
        ),
        models=("deepseek-",),
        stream_options=False,
    ),
    Provider(T.MOKA_AI, "MokaAI", "https://api.moka.ai"),
    Provider(
        T.VOLCENGINE,
        "VolcEngine",
        "https://ark.cn-beijing.volces.com",
        VolcEngineAdaptor(
            "volcengine", paths={"chat": "/api/v3/chat/completions", "embeddings": "/api/v3/embeddings"}
        ),
        models=("Doubao", "doubao"),
    ),
    Provider(
        T.BAIDU_V2,
        "BaiduV2",
        "https://qianfan.baidubce.com",
        CompatibleAdaptor("baidu_v2", paths={"chat": "/v2/chat/completions", "embeddings": "/v2/embeddings"}),
        stream_options=False,
    ),
    Provider(T.XINFERENCE, "Xinference", "", CompatibleAdaptor("xinference"), stream_options=False),
    Provider(
        T.XAI,
        "xAI",
        "https://api.x.ai",
        XAIAdaptor("xai", paths={"chat": "/v1/chat/completions"}, reasoning_suffix_prefixes=("grok-3-mini",)),
        models=("grok-",),
    ),
)

PROVIDERS_BY_TYPE: dict[int, Provider] = {p.type: p for p in PROVIDERS}


def _declared(provider: Provider) -> Adaptor | None:
    if provider.adaptor is not None:
        provider.adaptor.declare(provider.base_url, provider.stream_options)
    return provider.adaptor


_ADAPTORS: dict[int, Adaptor] = {p.type: a for p in PROVIDERS if (a := _declared(p)) is not None}
# The channel types whose upstream speaks the Realtime websocket, through an adaptor that can dial it.
REALTIME_TYPES: frozenset[int] = frozenset(
    p.type for p in PROVIDERS if p.realtime and p.adaptor is not None and serves_realtime(p.adaptor)
)
# The channel types whose upstream serves the Responses API itself (every other one gets it as chat).
RESPONSES_TYPES: frozenset[int] = frozenset(
    p.type for p in PROVIDERS if p.responses and p.adaptor is not None and speaks_responses(p.adaptor)
)
# New API falls back to the OpenAI adaptor for types without their own; so do we.
FALLBACK: Adaptor = _ADAPTORS[T.OPENAI]
# For form selects: "1 · OpenAI". Unknown (0) is a valid stored value but not a sensible choice.
CHANNEL_TYPE_CHOICES: list[tuple[int, str]] = [
    (int(p.type), f"{int(p.type)} · {p.name}") for p in PROVIDERS if p.type != T.UNKNOWN
]


def adaptor_for(channel_type: int) -> Adaptor:
    return _ADAPTORS.get(channel_type, FALLBACK)


def provider_for(channel_type: int) -> Provider | None:
    return PROVIDERS_BY_TYPE.get(channel_type)


def channel_type_name(channel_type: int) -> str:
    known = PROVIDERS_BY_TYPE.get(channel_type)
    return known.name if known else f"undefined ({channel_type})"


def default_base_url(channel_type: int) -> str:
    known = PROVIDERS_BY_TYPE.get(channel_type)
    return known.base_url if known else ""


def effective_base_url(channel_type: int, base_url: str | None) -> str:
    """The channel's own base URL when set, else its type's default (RelayInfo.BaseUrl)."""
    return (base_url or "").strip() or default_base_url(channel_type)
