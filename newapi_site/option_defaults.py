"""New API's option defaults, as the strings the table stores.

The platform's own defaults are listed here; an app whose options need its own tables (billing's
price ratios) adds them with `register_defaults` from its AppConfig.ready, before the first load.
`DEFAULT_OPTIONS` is the complete registry once Django has started.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

_DISABLE_KEYWORDS = "\n".join(
    [
        "Your credit balance is too low",
        "This organization has been disabled.",
        "You exceeded your current quota",
        "Permission denied",
        "The security token included in the request is invalid",
        "Operation not allowed",
        "Your account is not authorized",
    ]
)

_CHATS = [
    {"ChatGPT Next Web 官方示例": 'https://app.nextchat.dev/#/?settings={"key":"{key}","url":"{address}"}'},
    {
        "Lobe Chat 官方示例": 'https://chat-preview.lobehub.com/?settings={"keyVaults":{"openai":{"apiKey":"{key}","baseURL":"{address}/v1"}}}'
    },
    {
        "AI as Workspace": 'https://aiaw.app/set-provider?provider={"type":"openai","settings":{"apiKey":"{key}","baseURL":"{address}/v1","compatibility":"strict"}}'
    },
    {"AMA 问天": "ama://set-api-key?server={address}&key={key}"},
    {"OpenCat": "opencat://team/join?domain={address}&token={key}"},
]


def _b(value: bool) -> str:
    return "true" if value else "false"


DEFAULT_OPTIONS: dict[str, str] = {
    # general / UI
    "SystemName": "New API",
    "Logo": "",
    "Footer": "",
    "Notice": "",
    "About": "",
    "HomePageContent": "",
    "ServerAddress": "",
    "TopUpLink": "",
    "Chats": json.dumps(_CHATS, ensure_ascii=False),
    "DefaultCollapseSidebar": _b(False),
    "DisplayInCurrencyEnabled": _b(True),
    "DisplayTokenStatEnabled": _b(True),
    "DrawingEnabled": _b(True),
    "TaskEnabled": _b(True),
    "DataExportEnabled": _b(True),
    "DataExportInterval": "5",
    "DataExportDefaultTime": "hour",
    "LogConsumeEnabled": _b(True),
    "LogRetentionDays": "0",  # delete logs older than this many days (daily); 0 keeps them forever
    "DemoSiteEnabled": _b(False),
    "SelfUseModeEnabled": _b(False),
    "general_setting.docs_link": "https://docs.newapi.pro",
    "WorkerUrl": "",
    "WorkerValidKey": "",
    # login / registration
    "RegisterEnabled": _b(True),
    "PasswordRegisterEnabled": _b(True),
    "PasswordLoginEnabled": _b(True),
    "EmailVerificationEnabled": _b(False),
    "EmailDomainRestrictionEnabled": _b(False),
    "EmailDomainWhitelist": "gmail.com,163.com,126.com,qq.com,outlook.com,hotmail.com,icloud.com,yahoo.com,foxmail.com",
    "EmailAliasRestrictionEnabled": _b(False),
    "GitHubOAuthEnabled": _b(False),
    "GitHubClientId": "",
    "GitHubClientSecret": "",
    "LinuxDOOAuthEnabled": _b(False),
    "WeChatAuthEnabled": _b(False),
    "WeChatServerAddress": "",
    "WeChatServerToken": "",
    "WeChatAccountQRCodeImageURL": "",
    "TelegramOAuthEnabled": _b(False),
    "TelegramBotToken": "",
    "TelegramBotName": "",
    "oidc.enabled": _b(False),
    "oidc.client_id": "",
    "oidc.client_secret": "",
    "oidc.well_known": "",
    "oidc.authorization_endpoint": "",
    "oidc.token_endpoint": "",
    "oidc.user_info_endpoint": "",
    "TurnstileCheckEnabled": _b(False),
    "TurnstileSiteKey": "",
    "TurnstileSecretKey": "",
    "SMTPServer": "",
    "SMTPPort": "587",
    "SMTPAccount": "",
    "SMTPFrom": "",
    "SMTPToken": "",
    "SMTPSSLEnabled": _b(False),
    # quota
    "QuotaPerUnit": "500000",
    "QuotaForNewUser": "0",
    "QuotaForInviter": "0",
    "QuotaForInvitee": "0",
    "QuotaRemindThreshold": "1000",
    "PreConsumedQuota": "500",
    # ours: per user and process, at most this many requests at once without a hold under the
    # trusted rule (and only while their estimates stay within 1/100 of the balance); further ones
    # hold their estimate. 0 turns the rule off.
    "TrustedConcurrencyLimit": "64",
    "RetryTimes": "0",
    # ratios / pricing: registered by billing
    # payment
    "PayAddress": "",
    "CustomCallbackAddress": "",
    "EpayId": "",
    "EpayKey": "",
    "Price": "7.3",
    "MinTopUp": "1",
    # channel operations
    "AutomaticDisableChannelEnabled": _b(False),
    "AutomaticEnableChannelEnabled": _b(False),
    "ChannelDisableThreshold": "5",
    "AutomaticDisableKeywords": _DISABLE_KEYWORDS,
    # rate limit
    "ModelRequestRateLimitEnabled": _b(False),
    "ModelRequestRateLimitDurationMinutes": "1",
    "ModelRequestRateLimitCount": "0",
    "ModelRequestRateLimitSuccessCount": "1000",
    # moderation
    "CheckSensitiveEnabled": _b(True),
    "CheckSensitiveOnPromptEnabled": _b(True),
    "StopOnSensitiveEnabled": _b(True),
    "SensitiveWords": "test_sensitive",
    "StreamCacheQueueLength": "0",
    # midjourney
    "MjNotifyEnabled": _b(False),
    "MjAccountFilterEnabled": _b(False),
    "MjModeClearEnabled": _b(False),
    "MjForwardUrlEnabled": _b(True),
    "MjActionCheckSuccessEnabled": _b(True),
    # model settings (config structs)
    "claude.model_headers_settings": "{}",
    "claude.default_max_tokens": json.dumps({"default": 8192}),
    "claude.thinking_adapter_enabled": _b(True),
    "claude.thinking_adapter_budget_tokens_percentage": "0.8",
    "gemini.safety_settings": json.dumps({"default": "OFF", "HARM_CATEGORY_CIVIC_INTEGRITY": "BLOCK_NONE"}),
    "gemini.version_settings": json.dumps({"default": "v1beta", "gemini-1.0-pro": "v1"}),
    "global.pass_through_request_enabled": _b(False),
}


def register_defaults(defaults: Mapping[str, str]) -> None:
    """Add an app's option defaults; a key two apps both claim with different values is a bug."""
    for key, value in defaults.items():
        if DEFAULT_OPTIONS.setdefault(key, value) != value:
            raise ValueError(f"option {key!r} already has a different default")
