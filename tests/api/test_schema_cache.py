"""GET /api/schema/ is generated once per process, served with an ETag, and rate limited like /api."""

from __future__ import annotations

import httpx

from newapi_site.api import schema
from tests.conftest import live, start_gateway


def test_schema_is_built_once_and_served_from_memory(anon, db):
    first = anon.client.get("/api/schema/?format=json")
    assert first.status_code == 200 and first.json()["openapi"].startswith("3.")
    built = schema.builds()
    assert built == 1
    for _ in range(3):
        again = anon.client.get("/api/schema/?format=json")
        assert again.content == first.content and again["ETag"] == first["ETag"]
    yaml = anon.client.get("/api/schema/")
    assert yaml["Content-Type"].startswith("application/vnd.oai.openapi") and yaml["ETag"] != first["ETag"]
    assert anon.client.get("/api/schema/", HTTP_IF_NONE_MATCH=yaml["ETag"]).status_code == 304
    assert schema.builds() == built  # other formats and versions render the same built schema
    assert anon.client.get("/api/schema/?version=x").content == yaml.content


@live
def test_schema_through_the_gateway_is_cached_and_throttled():
    gw = start_gateway({"GLOBAL_API_RATE_LIMIT_ENABLE": "true", "GLOBAL_API_RATE_LIMIT": "4"})
    try:
        url = f"{gw.url}/api/schema/?format=json"
        first = httpx.get(url, timeout=20)
        second = httpx.get(url, timeout=20)
        assert first.status_code == second.status_code == 200
        assert first.content == second.content and first.headers["etag"] == second.headers["etag"]
        unchanged = httpx.get(url, headers={"If-None-Match": first.headers["etag"]}, timeout=20)
        assert unchanged.status_code == 304 and unchanged.content == b""
        assert httpx.get(url, timeout=20).status_code == 200
        assert httpx.get(url, timeout=20).status_code == 429  # the fifth call in the window
    finally:
        gw.stop()
