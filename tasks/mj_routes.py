"""Registers the Midjourney and Suno relay routes on the relay router (relay/edge/asgi.py `add_route`).

Every Midjourney path also exists under any one-segment mode prefix: /fast/mj/..., /mj-turbo/mj/...
"""

from __future__ import annotations

from typing import Any

from relay.edge.asgi import add_route
from relay.edge.wire import ClientRequest, Response

from . import mj, mj_notify, suno

MJ = r"(?:/[^/]+)?/mj"
SUBMIT_KINDS = [
    "imagine",
    "change",
    "simple-change",
    "describe",
    "blend",
    "action",
    "modal",
    "shorten",
    "upload-discord-images",
    "video",
    "edits",
]


def _submit(kind: str):
    async def handler(req: ClientRequest, **_: Any) -> Response:
        return await mj.submit(req, kind)

    return handler


def register() -> None:
    for kind in SUBMIT_KINDS:
        add_route("POST", rf"{MJ}/submit/{kind}", _submit(kind))
    add_route("POST", rf"{MJ}/insight-face/swap", lambda req, **_: mj.swap_face(req))
    add_route("POST", rf"{MJ}/notify", mj_notify.notify)
    add_route("POST", rf"{MJ}/task/list-by-condition", mj.list_by_condition)
    add_route("GET", rf"{MJ}/task/(?P<id>[^/]+)/fetch", mj.fetch)
    add_route("GET", rf"{MJ}/task/(?P<id>[^/]+)/image-seed", mj.image_seed)
    add_route("GET", rf"{MJ}/image/(?P<id>[^/]+)", mj.image)
    add_route("POST", r"/suno/submit/(?P<action>[^/]+)", suno.submit)
    add_route("POST", r"/suno/fetch", suno.fetch_many)
    add_route("GET", r"/suno/fetch/(?P<id>[^/]+)", suno.fetch_one)


register()
