"""Channel type numbers and channel statuses, by name (New API's `common/constants.go`).

The numbers are New API's, which diverge from One API's from 26 upward (and at 2/4/5); databases
migrated from One API are renumbered before they get here. Types 28, 29, 30 and 32 are undefined.
Quirks compare against these names, never against the raw numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ChannelType(IntEnum):
    UNKNOWN = 0
    OPENAI = 1
    MIDJOURNEY = 2
    AZURE = 3
    OLLAMA = 4
    MIDJOURNEY_PLUS = 5
    OPENAI_MAX = 6
    OHMYGPT = 7
    CUSTOM = 8
    AILS = 9
    AIPROXY = 10
    PALM = 11
    API2GPT = 12
    AIGC2D = 13
    ANTHROPIC = 14
    BAIDU = 15
    ZHIPU = 16
    ALI = 17
    XUNFEI = 18
    AI360 = 19
    OPENROUTER = 20
    AIPROXY_LIBRARY = 21
    FASTGPT = 22
    TENCENT = 23
    GEMINI = 24
    MOONSHOT = 25
    ZHIPU_V4 = 26
    PERPLEXITY = 27
    LINGYIWANWU = 31
    AWS = 33
    COHERE = 34
    MINIMAX = 35
    SUNO_API = 36
    DIFY = 37
    JINA = 38
    CLOUDFLARE = 39
    SILICONFLOW = 40
    VERTEX_AI = 41
    MISTRAL = 42
    DEEPSEEK = 43
    MOKA_AI = 44
    VOLCENGINE = 45
    BAIDU_V2 = 46
    XINFERENCE = 47
    XAI = 48


class ChannelStatus(IntEnum):
    ENABLED = 1
    MANUALLY_DISABLED = 2
    AUTO_DISABLED = 3  # by the relay or a channel test; a later test may enable it again


@dataclass(frozen=True)
class _TypeInfo:
    number: ChannelType
    name: str
    base_url: str  # "" = none: the channel must set base_url (or the adaptor derives it)


_TYPES = [
    _TypeInfo(ChannelType.UNKNOWN, "Unknown", ""),
    _TypeInfo(ChannelType.OPENAI, "OpenAI", "https://api.openai.com"),
    _TypeInfo(ChannelType.MIDJOURNEY, "Midjourney", "https://oa.api2d.net"),
    _TypeInfo(ChannelType.AZURE, "Azure", ""),
    _TypeInfo(ChannelType.OLLAMA, "Ollama", "http://localhost:11434"),
    _TypeInfo(ChannelType.MIDJOURNEY_PLUS, "MidjourneyPlus", "https://api.openai-sb.com"),
    _TypeInfo(ChannelType.OPENAI_MAX, "OpenAIMax", "https://api.openaimax.com"),
    _TypeInfo(ChannelType.OHMYGPT, "OhMyGPT", "https://api.ohmygpt.com"),
    _TypeInfo(ChannelType.CUSTOM, "Custom", ""),
    _TypeInfo(ChannelType.AILS, "AILS", "https://api.caipacity.com"),
    _TypeInfo(ChannelType.AIPROXY, "AIProxy", "https://api.aiproxy.io"),
    _TypeInfo(ChannelType.PALM, "PaLM", ""),
    _TypeInfo(ChannelType.API2GPT, "API2GPT", "https://api.api2gpt.com"),
    _TypeInfo(ChannelType.AIGC2D, "AIGC2D", "https://api.aigc2d.com"),
    _TypeInfo(ChannelType.ANTHROPIC, "Anthropic", "https://api.anthropic.com"),
    _TypeInfo(ChannelType.BAIDU, "Baidu", "https://aip.baidubce.com"),
    _TypeInfo(ChannelType.ZHIPU, "Zhipu", "https://open.bigmodel.cn"),
    _TypeInfo(ChannelType.ALI, "Ali", "https://dashscope.aliyuncs.com"),
    _TypeInfo(ChannelType.XUNFEI, "Xunfei", ""),
    _TypeInfo(ChannelType.AI360, "360", "https://api.360.cn"),
    _TypeInfo(ChannelType.OPENROUTER, "OpenRouter", "https://openrouter.ai/api"),
    _TypeInfo(ChannelType.AIPROXY_LIBRARY, "AIProxyLibrary", "https://api.aiproxy.io"),
    _TypeInfo(ChannelType.FASTGPT, "FastGPT", "https://fastgpt.run/api/openapi"),
    _TypeInfo(ChannelType.TENCENT, "Tencent", "https://hunyuan.tencentcloudapi.com"),
    _TypeInfo(ChannelType.GEMINI, "Gemini", "https://generativelanguage.googleapis.com"),
    _TypeInfo(ChannelType.MOONSHOT, "Moonshot", "https://api.moonshot.cn"),
    _TypeInfo(ChannelType.ZHIPU_V4, "Zhipu_v4", "https://open.bigmodel.cn"),
    _TypeInfo(ChannelType.PERPLEXITY, "Perplexity", "https://api.perplexity.ai"),
    _TypeInfo(ChannelType.LINGYIWANWU, "LingYiWanWu", "https://api.lingyiwanwu.com"),
    _TypeInfo(ChannelType.AWS, "AWS", ""),
    _TypeInfo(ChannelType.COHERE, "Cohere", "https://api.cohere.ai"),
    _TypeInfo(ChannelType.MINIMAX, "MiniMax", "https://api.minimax.chat"),
    _TypeInfo(ChannelType.SUNO_API, "SunoAPI", ""),
    _TypeInfo(ChannelType.DIFY, "Dify", "https://api.dify.ai"),
    _TypeInfo(ChannelType.JINA, "Jina", "https://api.jina.ai"),
    _TypeInfo(ChannelType.CLOUDFLARE, "Cloudflare", "https://api.cloudflare.com"),
    _TypeInfo(ChannelType.SILICONFLOW, "SiliconFlow", "https://api.siliconflow.cn"),
    _TypeInfo(ChannelType.VERTEX_AI, "VertexAI", ""),
    _TypeInfo(ChannelType.MISTRAL, "Mistral", "https://api.mistral.ai"),
    _TypeInfo(ChannelType.DEEPSEEK, "DeepSeek", "https://api.deepseek.com"),
    _TypeInfo(ChannelType.MOKA_AI, "MokaAI", "https://api.moka.ai"),
    _TypeInfo(ChannelType.VOLCENGINE, "VolcEngine", "https://ark.cn-beijing.volces.com"),
    _TypeInfo(ChannelType.BAIDU_V2, "BaiduV2", "https://qianfan.baidubce.com"),
    _TypeInfo(ChannelType.XINFERENCE, "Xinference", ""),
    _TypeInfo(ChannelType.XAI, "xAI", "https://api.x.ai"),
]

CHANNEL_TYPES: dict[int, _TypeInfo] = {t.number: t for t in _TYPES}
# For form selects: "1 · OpenAI". Unknown (0) is a valid stored value but not a sensible choice.
CHANNEL_TYPE_CHOICES: list[tuple[int, str]] = [
    (t.number, f"{t.number} · {t.name}") for t in _TYPES if t.number
]


def is_known_type(number: int) -> bool:
    return number in CHANNEL_TYPES


def channel_type_name(number: int) -> str:
    known = CHANNEL_TYPES.get(number)
    return known.name if known else f"undefined ({number})"


def default_base_url(number: int) -> str:
    known = CHANNEL_TYPES.get(number)
    return known.base_url if known else ""


def effective_base_url(number: int, base_url: str | None) -> str:
    """The channel's own base URL when set, else its type's default (RelayInfo.BaseUrl)."""
    return (base_url or "").strip() or default_base_url(number)
