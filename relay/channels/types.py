"""New API's channel type numbers, their names and default base URLs (`common/constants.go`).

Spec: shared/spec/relay.md §7.2. The numbers are New API's, which diverge from One API's from 26
upward (and at 2/4/5); databases migrated from One API are renumbered before they get here.
Types 28, 29, 30 and 32 are undefined.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChannelType:
    number: int
    name: str
    base_url: str  # "" = none: the channel must set base_url (or the adaptor derives it)


_TYPES = [
    ChannelType(0, "Unknown", ""),
    ChannelType(1, "OpenAI", "https://api.openai.com"),
    ChannelType(2, "Midjourney", "https://oa.api2d.net"),
    ChannelType(3, "Azure", ""),
    ChannelType(4, "Ollama", "http://localhost:11434"),
    ChannelType(5, "MidjourneyPlus", "https://api.openai-sb.com"),
    ChannelType(6, "OpenAIMax", "https://api.openaimax.com"),
    ChannelType(7, "OhMyGPT", "https://api.ohmygpt.com"),
    ChannelType(8, "Custom", ""),
    ChannelType(9, "AILS", "https://api.caipacity.com"),
    ChannelType(10, "AIProxy", "https://api.aiproxy.io"),
    ChannelType(11, "PaLM", ""),
    ChannelType(12, "API2GPT", "https://api.api2gpt.com"),
    ChannelType(13, "AIGC2D", "https://api.aigc2d.com"),
    ChannelType(14, "Anthropic", "https://api.anthropic.com"),
    ChannelType(15, "Baidu", "https://aip.baidubce.com"),
    ChannelType(16, "Zhipu", "https://open.bigmodel.cn"),
    ChannelType(17, "Ali", "https://dashscope.aliyuncs.com"),
    ChannelType(18, "Xunfei", ""),
    ChannelType(19, "360", "https://api.360.cn"),
    ChannelType(20, "OpenRouter", "https://openrouter.ai/api"),
    ChannelType(21, "AIProxyLibrary", "https://api.aiproxy.io"),
    ChannelType(22, "FastGPT", "https://fastgpt.run/api/openapi"),
    ChannelType(23, "Tencent", "https://hunyuan.tencentcloudapi.com"),
    ChannelType(24, "Gemini", "https://generativelanguage.googleapis.com"),
    ChannelType(25, "Moonshot", "https://api.moonshot.cn"),
    ChannelType(26, "Zhipu_v4", "https://open.bigmodel.cn"),
    ChannelType(27, "Perplexity", "https://api.perplexity.ai"),
    ChannelType(31, "LingYiWanWu", "https://api.lingyiwanwu.com"),
    ChannelType(33, "AWS", ""),
    ChannelType(34, "Cohere", "https://api.cohere.ai"),
    ChannelType(35, "MiniMax", "https://api.minimax.chat"),
    ChannelType(36, "SunoAPI", ""),
    ChannelType(37, "Dify", "https://api.dify.ai"),
    ChannelType(38, "Jina", "https://api.jina.ai"),
    ChannelType(39, "Cloudflare", "https://api.cloudflare.com"),
    ChannelType(40, "SiliconFlow", "https://api.siliconflow.cn"),
    ChannelType(41, "VertexAI", ""),
    ChannelType(42, "Mistral", "https://api.mistral.ai"),
    ChannelType(43, "DeepSeek", "https://api.deepseek.com"),
    ChannelType(44, "MokaAI", "https://api.moka.ai"),
    ChannelType(45, "VolcEngine", "https://ark.cn-beijing.volces.com"),
    ChannelType(46, "BaiduV2", "https://qianfan.baidubce.com"),
    ChannelType(47, "Xinference", ""),
    ChannelType(48, "xAI", "https://api.x.ai"),
]

CHANNEL_TYPES: dict[int, ChannelType] = {t.number: t for t in _TYPES}
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
