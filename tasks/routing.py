"""Caller checks shared by the Midjourney and Suno relays, and the channel route of a new task."""

from __future__ import annotations

from relay import auth, state
from relay.auth import Caller
from relay.channels.choice import Route
from relay.edge.wire import ClientRequest


async def authenticate(req: ClientRequest) -> Caller:
    await state.ensure_options_loaded()
    caller = await auth.authenticate(req.headers, req.path)
    auth.check_ip(caller.token, req.client_ip)
    return caller


def route(caller: Caller, model: str) -> Route:
    """The channels a new task may go to (a follow-up goes to its task's own channel instead)."""
    if caller.pinned_channel_id is None:
        auth.check_model_allowed(caller.token, model)
    return Route(caller, model)
