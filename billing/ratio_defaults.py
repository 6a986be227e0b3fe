"""New API's built-in price tables (setting/operation_setting/*.go, 2025-04 snapshot).

Model ratio 1 = $0.002 / 1K tokens ($2 / 1M). Prices are USD per call.
"""

from __future__ import annotations

DEFAULT_MODEL_RATIO: dict[str, float] = {
    "gpt-4": 15, "gpt-4-0613": 15, "gpt-4-32k": 30, "gpt-4-32k-0613": 30,
    "gpt-4-1106-preview": 5, "gpt-4-0125-preview": 5, "gpt-4-turbo-preview": 5, "gpt-4-vision-preview": 5,
    "gpt-4-1106-vision-preview": 5, "gpt-4-turbo": 5, "gpt-4-turbo-2024-04-09": 5,
    "gpt-4o": 1.25, "gpt-4o-2024-05-13": 2.5, "gpt-4o-2024-08-06": 1.25, "gpt-4o-2024-11-20": 1.25,
    "chatgpt-4o-latest": 2.5, "gpt-4o-mini": 0.075, "gpt-4o-mini-2024-07-18": 0.075,
    "gpt-4.5-preview": 37.5, "gpt-4.5-preview-2025-02-27": 37.5,
    "gpt-4o-realtime-preview": 2.5, "gpt-4o-realtime-preview-2024-10-01": 2.5,
    "gpt-4o-realtime-preview-2024-12-17": 2.5, "gpt-4o-mini-realtime-preview": 0.3,
    "gpt-4o-mini-realtime-preview-2024-12-17": 0.3,
    "gpt-4o-audio-preview": 1.25, "gpt-4o-audio-preview-2024-10-01": 1.25, "gpt-4o-audio-preview-2024-12-17": 1.25,
    "gpt-4o-mini-audio-preview": 0.075, "gpt-4o-mini-audio-preview-2024-12-17": 0.075,
    "o1": 7.5, "o1-2024-12-17": 7.5, "o1-preview": 7.5, "o1-preview-2024-09-12": 7.5,
    "o1-mini": 0.55, "o1-mini-2024-09-12": 0.55,
    "o3-mini": 0.55, "o3-mini-2025-01-31": 0.55, "o3-mini-high": 0.55, "o3-mini-2025-01-31-high": 0.55,
    "o3-mini-low": 0.55, "o3-mini-2025-01-31-low": 0.55, "o3-mini-medium": 0.55, "o3-mini-2025-01-31-medium": 0.55,
    "gpt-4-all": 15, "gpt-4o-all": 15, "gpt-4-gizmo-*": 15, "gpt-4o-gizmo-*": 2.5,
    "gpt-3.5-turbo": 0.25, "gpt-3.5-turbo-0613": 0.75, "gpt-3.5-turbo-16k": 1.5, "gpt-3.5-turbo-16k-0613": 1.5,
    "gpt-3.5-turbo-instruct": 0.75, "gpt-3.5-turbo-1106": 0.5, "gpt-3.5-turbo-0125": 0.25,
    "babbage-002": 0.2, "davinci-002": 1,
    "text-ada-001": 0.2, "text-babbage-001": 0.25, "text-curie-001": 1, "text-davinci-002": 10, "text-davinci-003": 10,
    "text-embedding-ada-002": 0.05, "text-embedding-3-small": 0.01, "text-embedding-3-large": 0.065,
    "text-moderation-stable": 0.1, "text-moderation-latest": 0.1, "omni-moderation-latest": 0.1,
    # New API writes these as 0.02 * USD and 0.04 * USD (USD = 500 ratio units): per-image dollars.
    "dall-e-2": 10, "dall-e-3": 20,
    "whisper-1": 15, "tts-1": 7.5, "tts-1-1106": 7.5, "tts-1-hd": 15, "tts-1-hd-1106": 15,
    "claude-instant-1": 0.4, "claude-2.0": 4, "claude-2.1": 4,
    "claude-3-haiku-20240307": 0.125, "claude-3-5-haiku-20241022": 0.5,
    "claude-3-sonnet-20240229": 1.5, "claude-3-5-sonnet-20240620": 1.5, "claude-3-5-sonnet-20241022": 1.5,
    "claude-3-7-sonnet-20250219": 1.5, "claude-3-7-sonnet-20250219-thinking": 1.5,
    "claude-3-opus-20240229": 7.5,
    "gemini-pro": 1, "gemini-pro-vision": 1, "gemini-1.0-pro": 1,
    "gemini-1.5-pro": 1.25, "gemini-1.5-pro-latest": 1.25, "gemini-1.5-flash": 0.0375, "gemini-1.5-flash-latest": 0.0375,
    "gemini-2.0-flash": 0.05, "gemini-2.0-flash-001": 0.05, "gemini-2.0-flash-lite": 0.0375,
    "gemini-2.5-pro-exp-03-25": 0.625, "gemini-2.5-pro-preview-03-25": 0.625,
    "text-embedding-004": 0.001,
    "command": 0.5, "command-nightly": 0.5, "command-light": 0.5, "command-light-nightly": 0.5,
    "command-r": 0.25, "command-r-plus": 1.5, "command-r-08-2024": 0.075, "command-r-plus-08-2024": 1.25,
    "rerank-english-v3.0": 0.1, "rerank-multilingual-v3.0": 0.1, "rerank-v3.5": 0.1,
    "jina-reranker-v2-base-multilingual": 0.01, "jina-embeddings-v3": 0.01,
    "deepseek-chat": 0.135, "deepseek-coder": 0.135, "deepseek-reasoner": 0.275,
    "moonshot-v1-8k": 1, "moonshot-v1-32k": 2, "moonshot-v1-128k": 5,
    "mistral-tiny": 0.125, "mistral-small-latest": 0.5, "mistral-medium-latest": 1.35, "mistral-large-latest": 4,
    "open-mistral-7b": 0.125, "open-mixtral-8x7b": 0.35, "mistral-embed": 0.05,
    "grok-beta": 2.5, "grok-2": 1, "grok-2-vision": 1, "grok-3": 1.5, "grok-3-mini": 0.15,
    "glm-4": 7.143, "glm-4v": 0.05 * 7.143, "glm-4-flash": 0, "glm-4-plus": 0.05 * 7.143, "embedding-2": 0.0357,
    "yi-34b-chat-0205": 0.18, "yi-34b-chat-200k": 0.864, "yi-vl-plus": 0.432, "yi-large": 1.4,
    "360gpt-pro": 0.8572, "360GPT_S2_V9": 0.8572, "embedding-bert-512-v1": 0.0715,
    "llama-3.1-sonar-small-128k-online": 0.1, "llama-3.1-sonar-large-128k-online": 0.5,
    "abab6.5-chat": 0.1, "abab6.5s-chat": 0.1, "abab5.5-chat": 1.0715,
    "ERNIE-4.0-8K": 0.12 * 8.572, "ERNIE-3.5-8K": 0.012 * 8.572, "ERNIE-Speed-8K": 0.0001, "ERNIE-Lite-8K": 0.0001,
    "llama3-8b-8192": 0.025, "llama3-70b-8192": 0.295, "llama2-70b-4096": 0.35,
    "@cf/meta/llama-3.1-8b-instruct": 1,
    "suno_music": 1, "suno_lyrics": 1,
}

DEFAULT_MODEL_PRICE: dict[str, float] = {
    "dall-e-3": 0.04, "imagen-3.0-generate-002": 0.03, "gpt-4-gizmo-*": 0.1, "gpt-4o-gizmo-*": 0.1,
    "suno_music": 0.1, "suno_lyrics": 0.01,
    "mj_imagine": 0.1, "mj_variation": 0.1, "mj_reroll": 0.1, "mj_blend": 0.1, "mj_modal": 0.1, "mj_zoom": 0.1,
    "mj_shorten": 0.1, "mj_high_variation": 0.1, "mj_low_variation": 0.1, "mj_pan": 0.1, "mj_video": 0.8,
    "mj_edits": 0.1, "mj_inpaint": 0, "mj_custom_zoom": 0,
    "mj_describe": 0.05, "mj_upscale": 0.05, "swap_face": 0.05, "mj_upload": 0.05,
}

DEFAULT_COMPLETION_RATIO: dict[str, float] = {"gpt-4-gizmo-*": 2, "gpt-4o-gizmo-*": 3, "gpt-4-all": 2}

DEFAULT_CACHE_RATIO: dict[str, float] = {
    "gpt-4": 0.5, "o1": 0.5, "o1-2024-12-17": 0.5, "o1-preview": 0.5, "o1-preview-2024-09-12": 0.5,
    "o1-mini": 0.5, "o1-mini-2024-09-12": 0.5, "o3-mini": 0.5, "o3-mini-2025-01-31": 0.5,
    "gpt-4o": 0.5, "gpt-4o-2024-05-13": 0.5, "gpt-4o-2024-08-06": 0.5, "gpt-4o-2024-11-20": 0.5,
    "gpt-4o-mini": 0.5, "gpt-4o-mini-2024-07-18": 0.5, "gpt-4.5-preview": 0.5, "gpt-4.5-preview-2025-02-27": 0.5,
    "gpt-4o-realtime-preview": 0.5, "gpt-4o-mini-realtime-preview": 0.5,
    "deepseek-chat": 0.25, "deepseek-reasoner": 0.25, "deepseek-coder": 0.25,
    "claude-3-sonnet-20240229": 0.1, "claude-3-opus-20240229": 0.1, "claude-3-haiku-20240307": 0.1,
    "claude-3-5-haiku-20241022": 0.1, "claude-3-5-sonnet-20240620": 0.1, "claude-3-5-sonnet-20241022": 0.1,
    "claude-3-7-sonnet-20250219": 0.1, "claude-3-7-sonnet-20250219-thinking": 0.1,
}

DEFAULT_GROUP_RATIO: dict[str, float] = {"default": 1, "vip": 1, "svip": 1}
DEFAULT_USER_USABLE_GROUPS: dict[str, str] = {"default": "默认分组", "vip": "vip分组"}
