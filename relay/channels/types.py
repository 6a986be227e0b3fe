"""Channel type numbers and channel statuses, by name (New API's `common/constants.go`).

The numbers are New API's, which diverge from One API's from 26 upward (and at 2/4/5); databases
migrated from One API are renumbered before they get here. Types 28, 29, 30 and 32 are undefined.
Quirks compare against these names, never against the raw numbers. What each type is (name, default
base URL, adaptor) is its record in relay/adaptors/registry.py.
"""

from __future__ import annotations

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
