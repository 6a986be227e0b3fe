"""OpenAI Responses ⇄ chat completions, for /v1/responses requests on channels that only chat.

A Responses request (instructions, input items, function tools) becomes one chat completion; the
chat answer becomes a Response object (message, reasoning and function_call output items). The
stream translation lives in responses_stream.py; both share the builders here.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from relay.adaptors.base import Usage
from relay.adaptors.openai_stream import usage_from

# Output items of built-in tools billed per call, and the tool whose price they take.
TOOL_ITEMS = {"web_search_call": "web_search_preview", "file_search_call": "file_search"}
# Request fields the Response object echoes back (with these defaults when absent).
ECHOED: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "user": None,
}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def responses_usage(obj: Any) -> Usage | None:
    """A Responses `usage` block (input/output tokens with their details) as our Usage."""
    if not isinstance(obj, dict):
        return None
    if "input_tokens" not in obj and "output_tokens" not in obj:
        return usage_from(obj)
    prompt = int(obj.get("input_tokens") or 0)
    completion = int(obj.get("output_tokens") or 0)
    if prompt == 0 and completion == 0:
        return None
    cached = int((obj.get("input_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((obj.get("output_tokens_details") or {}).get("reasoning_tokens") or 0)
    return Usage(prompt, completion, cached, 0, reasoning)


def usage_body(u: Usage | None) -> dict[str, Any]:
    u = u or Usage()
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total,
    }


# -- request -------------------------------------------------------------------------------------
def _part_to_chat(part: Any) -> dict[str, Any] | None:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, dict):
        return None
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text", "summary_text"):
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind in ("input_image", "image_url"):
        url = part.get("image_url")
        if isinstance(url, dict):
            url = url.get("url")
        if not url:
            return None
        image: dict[str, Any] = {"url": url}
        if part.get("detail") and part["detail"] != "auto":
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and part.get("file_data"):
        return {
            "type": "file",
            "file": {"filename": part.get("filename", ""), "file_data": part["file_data"]},
        }
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or "")}
    return None


def _content_to_chat(content: Any) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    parts = [p for p in (_part_to_chat(x) for x in content or []) if p is not None]
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    content = _content_to_chat(output)
    return content if isinstance(content, str) else orjson.dumps(output).decode()


def items_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's `input` as a list of items (a bare string is one user message)."""
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    if isinstance(raw, list):
        return [item for item in raw if isinstance(item, dict)]
    return []


def items_to_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type") or ("message" if "role" in item else "")
        if kind == "message":
            role = item.get("role") or "user"
            if role == "developer":
                role = "system"  # few chat providers know the developer role
            messages.append({"role": role, "content": _content_to_chat(item.get("content"))})
        elif kind in ("function_call", "custom_tool_call"):
            if kind == "function_call":
                args = item.get("arguments")
            else:  # a free-text tool is a function of one string here (see _tools_to_chat)
                args = orjson.dumps({"input": str(item.get("input") or "")}).decode()
            call = {
                "id": item.get("call_id") or item.get("id") or new_id("call"),
                "type": "function",
                "function": {"name": item.get("name", ""), "arguments": args or "{}"},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            elif last is not None and last["role"] == "assistant" and isinstance(last.get("content"), str):
                last["tool_calls"] = [call]
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": item.get("call_id", ""),
                    "content": _output_text(item.get("output")),
                }
            )
        # reasoning, item_reference and built-in tool calls have no chat equivalent: left out
    return messages


def _tools_to_chat(tools: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for tool in tools or []:
        if not isinstance(tool, dict) or not tool.get("name"):
            continue
        if tool.get("type") == "custom":  # free-text input (Codex's apply_patch): one string argument
            out.append({"type": "function", "function": _custom_function(tool)})
            continue
        if tool.get("type") != "function":
            continue  # built-in tools (web search, file search…) run only at OpenAI
        fn: dict[str, Any] = {
            "name": tool["name"],
            "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
        }
        if tool.get("description"):
            fn["description"] = tool["description"]
        if tool.get("strict") is not None:
            fn["strict"] = tool["strict"]
        out.append({"type": "function", "function": fn})
    return out


def _custom_function(tool: dict[str, Any]) -> dict[str, Any]:
    description = str(tool.get("description") or "")
    fmt = tool.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and fmt.get("definition"):
        description += f"\n\nThe input follows this {fmt.get('syntax') or ''} grammar:\n{fmt['definition']}"
    return {
        "name": tool["name"],
        "description": description.strip(),
        "parameters": {
            "type": "object",
            "properties": {"input": {"type": "string", "description": "the tool's whole input, as text"}},
            "required": ["input"],
        },
    }


def custom_names(request: dict[str, Any]) -> frozenset[str]:
    """The request's free-text tools: a chat call of one of these answers as a custom_tool_call."""
    tools = request.get("tools")
    if not isinstance(tools, list):
        return frozenset()
    return frozenset(
        str(t["name"]) for t in tools if isinstance(t, dict) and t.get("type") == "custom" and t.get("name")
    )


def custom_input(arguments: str) -> str:
    """The free text a chat call's JSON arguments carry (the arguments themselves if not JSON)."""
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get("input"), str):
        return parsed["input"]
    return arguments


def to_chat_request(body: dict[str, Any], model: str, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat completion a Responses request becomes; `history` holds the items of the
    previous responses it continues (oldest first)."""
    out: dict[str, Any] = {"model": model}
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": str(body["instructions"])})
    messages += items_to_messages(history + items_of(body))
    out["messages"] = messages
    if body.get("max_output_tokens"):
        out["max_tokens"] = body["max_output_tokens"]
    for key in ("temperature", "top_p", "user", "stream", "top_logprobs"):
        if body.get(key) is not None:
            out[key] = body[key]
    tools = _tools_to_chat(body.get("tools"))
    if tools:
        out["tools"] = tools
        if body.get("parallel_tool_calls") is not None:
            out["parallel_tool_calls"] = body["parallel_tool_calls"]
        choice = body.get("tool_choice")
        if isinstance(choice, str):
            out["tool_choice"] = choice
        elif isinstance(choice, dict) and choice.get("type") in ("function", "custom") and choice.get("name"):
            out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    effort = (body.get("reasoning") or {}).get("effort") if isinstance(body.get("reasoning"), dict) else None
    if effort in ("low", "medium", "high"):
        out["reasoning_effort"] = effort
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_schema":
            schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
            out["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif fmt.get("type") == "json_object":
            out["response_format"] = {"type": "json_object"}
    return out


# -- response ------------------------------------------------------------------------------------
def message_item(text: str, item_id: str = "", status: str = "completed") -> dict[str, Any]:
    return {
        "id": item_id or new_id("msg"),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def call_item(
    call_id: str, name: str, arguments: str, item_id: str = "", status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": item_id or new_id("fc"),
        "type": "function_call",
        "status": status,
        "call_id": call_id or new_id("call"),
        "name": name,
        "arguments": arguments,
    }


def custom_item(
    call_id: str, name: str, text: str, item_id: str = "", status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": item_id or new_id("ctc"),
        "type": "custom_tool_call",
        "status": status,
        "call_id": call_id or new_id("call"),
        "name": name,
        "input": text,
    }


def reasoning_item(text: str, item_id: str = "") -> dict[str, Any]:
    return {
        "id": item_id or new_id("rs"),
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}],
    }


def response_object(
    request: dict[str, Any],
    response_id: str,
    model: str,
    output: list[dict[str, Any]],
    usage: Usage | None,
    status: str = "completed",
    created_at: int | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at or int(time.time()),
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "model": model,
        "output": output,
        "usage": usage_body(usage) if usage is not None else None,
    }
    for key, default in ECHOED.items():
        value = request.get(key)
        obj[key] = default if value is None else value
    return obj


def chat_to_response(
    data: dict[str, Any], request: dict[str, Any], response_id: str, model: str, usage: Usage | None
) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    status = "completed"
    for choice in data.get("choices") or []:
        msg = choice.get("message") or {}
        reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            output.append(reasoning_item(reasoning))
        content = msg.get("content")
        if isinstance(content, str) and content:
            output.append(message_item(content))
        custom = custom_names(request)
        for call in msg.get("tool_calls") or []:
            fn = call.get("function") or {}
            name, args = fn.get("name", ""), fn.get("arguments") or "{}"
            if name in custom:
                output.append(custom_item(call.get("id", ""), name, custom_input(args)))
            else:
                output.append(call_item(call.get("id", ""), name, args))
        if choice.get("finish_reason") == "length":
            status = "incomplete"
        break
    return response_object(request, response_id, model, output, usage, status)


def output_items_for_history(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The output items a later request continues from (reasoning summaries carry no chat meaning)."""
    return [i for i in response.get("output") or [] if isinstance(i, dict) and i.get("type") != "reasoning"]


def with_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input items as input_items lists them: each with an id."""
    out = []
    for item in items:
        item = dict(item)
        if "type" not in item and "role" in item:
            item["type"] = "message"
        item.setdefault("id", new_id("msg" if item.get("type") == "message" else "item"))
        out.append(item)
    return out


def tool_calls(body: dict[str, Any], output: Any) -> dict[str, int]:
    """Built-in tool calls in a Response's output, by the tool whose price they take."""
    declared = {str(t.get("type")) for t in body.get("tools") or [] if isinstance(t, dict)}
    calls: dict[str, int] = {}
    for item in output or []:
        kind = item.get("type") if isinstance(item, dict) else None
        tool = TOOL_ITEMS.get(str(kind))
        if tool is None:
            continue
        if tool == "web_search_preview" and "web_search" in declared:
            tool = "web_search"
        calls[tool] = calls.get(tool, 0) + 1
    return calls
