"""One relay request once it is priced and its quota held: what the text pipeline, its modes
(media, Claude Messages) and the stream meter share, kept apart so that none imports another's module."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from billing.ledger import Hold
from billing.pricing import Price
from relay import auth
from relay.edge.wire import ClientRequest
from relay.errors import RelayError
from relay.metering import image_tokens as media
from relay.metering import tokenizer
from relay.modes import responses_convert
from relay.modes.claude_convert import claude_to_openai_request
from relay.modes.gemini_convert import to_chat_request

log = logging.getLogger("newapi.relay")


@dataclass(slots=True)
class Job:
    """Everything decided before the first upstream attempt."""

    req: ClientRequest
    mode: str
    caller: auth.Caller
    body: dict[str, Any]
    model: str
    price: Price
    is_stream: bool
    hold: Hold
    prompt_tokens: int | None = None
    estimate: int = 0  # the pre-consume estimate (what an unheld request may spend before holding)

    def count_prompt(self) -> int:
        if self.prompt_tokens is None:
            self.prompt_tokens = count_prompt(self.mode, self.body, self.model)
        return self.prompt_tokens

    async def count_prompt_media(self) -> None:
        """Before billing from a counted prompt (usage missing): images at their real size.
        Best effort: the answer is already in, so a failed fetch falls back to the flat estimate."""
        if self.prompt_tokens is None and self.mode == "chat" and media.image_parts(self.body):
            try:
                self.prompt_tokens = await media.count_chat_prompt(self.body, self.model, self.is_stream)
            except RelayError as err:
                log.info("image prompt count fell back to the estimate: %s", err.message)


def count_prompt(mode: str, body: dict[str, Any], model: str) -> int:
    if mode == "chat":
        return tokenizer.count_messages(body.get("messages") or [], model, body.get("tools"))
    if mode == "completions":
        return tokenizer.count_input(body.get("prompt"), model)
    if mode == "claude":  # counted as the chat request it converts to
        converted = claude_to_openai_request(body, model)
        return tokenizer.count_messages(converted["messages"], model, converted.get("tools"))
    if mode == "gemini":  # generateContent, counted as the chat request it converts to
        chat = to_chat_request(body, model, stream=False)
        return tokenizer.count_messages(chat["messages"], model, chat.get("tools"))
    if mode == "responses":  # counted as the chat request it converts to
        chat = responses_convert.to_chat_request(body, model, [])
        return tokenizer.count_messages(chat["messages"], model, chat.get("tools"))
    return tokenizer.count_input(body.get("input"), model)
