"""Midjourney actions, their model names, and the two shorthand forms."""

from __future__ import annotations

IMAGINE, DESCRIBE, BLEND, UPSCALE, VARIATION, REROLL = (
    "IMAGINE",
    "DESCRIBE",
    "BLEND",
    "UPSCALE",
    "VARIATION",
    "REROLL",
)
INPAINT, MODAL, ZOOM, CUSTOM_ZOOM, SHORTEN = "INPAINT", "MODAL", "ZOOM", "CUSTOM_ZOOM", "SHORTEN"
HIGH_VARIATION, LOW_VARIATION, PAN, SWAP_FACE, UPLOAD = (
    "HIGH_VARIATION",
    "LOW_VARIATION",
    "PAN",
    "SWAP_FACE",
    "UPLOAD",
)
VIDEO, EDITS = "VIDEO", "EDITS"

# Actions that are free of charge in New API (the upstream bills them separately).
FREE_ACTIONS = {INPAINT, CUSTOM_ZOOM}


class ActionError(ValueError):
    """A malformed action request; the message is New API's description code."""


def model_for(action: str) -> str:
    return "swap_face" if action == SWAP_FACE else "mj_" + action.lower()


def action_from_custom_id(custom_id: str) -> tuple[str, int]:
    """`MJ::JOB::upsample::2::<hash>` → (UPSCALE, 2). Short ids are errors, not crashes."""
    if not custom_id:
        raise ActionError("custom_id_is_required")
    parts = custom_id.split("::")
    if len(parts) < 2:
        raise ActionError(f"unknown_action:{custom_id}")
    token = parts[2] if parts[1] == "JOB" and len(parts) > 2 else parts[1]

    def index_part() -> int:
        try:
            return int(parts[3])
        except (IndexError, ValueError):
            raise ActionError(f"unknown_action:{custom_id}") from None

    if "upsample" in token:
        return UPSCALE, index_part()
    if token == "variation":
        return VARIATION, index_part()
    if token == "low_variation":
        return LOW_VARIATION, 1
    if token == "high_variation":
        return HIGH_VARIATION, 1
    if "pan" in token:
        return PAN, 1
    if "reroll" in token:
        return REROLL, 1
    if token == "Outpaint":
        return ZOOM, 1
    if token == "CustomZoom":
        return CUSTOM_ZOOM, 1
    if token == "Inpaint":
        return INPAINT, 1
    raise ActionError(f"unknown_action:{custom_id}")


def parse_simple_change(content: str) -> tuple[str, str, int]:
    """`"<taskId> u2"` → (taskId, UPSCALE, 2); `r` is a reroll."""
    parts = (content or "").strip().split(" ")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ActionError("content_parse_failed")
    task_id, op = parts[0], parts[1].lower()
    if op == "r":
        return task_id, REROLL, 1
    if len(op) == 2 and op[0] in "uv" and op[1] in "1234":
        return task_id, (UPSCALE if op[0] == "u" else VARIATION), int(op[1])
    raise ActionError("content_parse_failed")
