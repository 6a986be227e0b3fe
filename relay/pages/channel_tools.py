"""The channel editor's buttons: fetch the upstream's model list, and test a channel with its latency.

Admin-session views (the admin's own login and CSRF token) over the same services as
/api/channel/fetch_models and /api/channel/test/:id. A stored key is only ever sent to the
channel's stored address, unless root asks: a plain admin cannot point a saved key elsewhere.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from newapi_site import audit
from newapi_site.api.base import ApiError
from relay.api.services import fetch_upstream_models
from relay.channels.tester import test_channel_sync
from relay.models import Channel


def _refused(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"success": False, "message": message}, status=status)


def _staff(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_staff)


@require_POST
def fetch_models(request: HttpRequest) -> JsonResponse:
    if not _staff(request):
        return _refused("not signed in to the admin", 403)
    try:
        channel_type = int(request.POST.get("type") or 1)
        channel_id = int(request.POST.get("id") or 0)
    except ValueError:
        return _refused("type and id must be numbers")
    base_url = request.POST.get("base_url", "")
    key = request.POST.get("key", "").strip()
    if not key and channel_id:
        channel = Channel.objects.filter(pk=channel_id).first()
        if channel is None:
            return _refused("no such channel", 404)
        key = channel.key or ""
        if not request.user.is_superuser:
            channel_type, base_url = channel.type, channel.base_url or ""
    if not key:
        return _refused("enter the key first")
    try:
        models = fetch_upstream_models(channel_type, base_url, key)
    except ApiError as exc:
        return _refused(exc.message, 502)
    return JsonResponse({"success": True, "data": sorted(set(models))})


@require_POST
def test_channel(request: HttpRequest, channel_id: int) -> JsonResponse:
    if not _staff(request):
        return _refused("not signed in to the admin", 403)
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return _refused("no such channel", 404)
    model = request.POST.get("model", "").strip() or None
    result = test_channel_sync(channel, model)
    # A test writes the response time, and may disable or re-enable the channel.
    audit.record(request, channel, "test", model=model, success=result.success)
    return JsonResponse({"success": result.success, "message": result.message, "time_ms": result.time_ms})
