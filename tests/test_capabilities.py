"""One capabilities object per client: the profile's declaration merged with what the backend
showed at run time, one refusal, and the fallbacks declared in `studio/derive.py`."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import pytest

from sora_mcp.api.capabilities import ALL_CAPABILITIES, Capabilities, means_endpoint_missing
from sora_mcp.api.client import VideosClient
from sora_mcp.api.profile import BackendProfile
from sora_mcp.errors import APIStatusError, InvalidRequest, NotFoundError
from sora_mcp.studio.derive import FALLBACKS

Handler = Callable[[httpx2.Request], httpx2.Response]


def client_answering(handler: Handler, profile: BackendProfile | None = None) -> VideosClient:
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler), base_url="http://backend/v1")
    return VideosClient(http, profile=profile or BackendProfile(name="gateway"))


def refusal(status: int, *, code: str | None = None, param: str | None = None) -> APIStatusError:
    return APIStatusError("refused", status_code=status, code=code, param=param)


def test_a_misspelt_capability_in_a_profile_is_refused_when_the_profile_is_built() -> None:
    with pytest.raises(ValueError, match="edtis"):
        BackendProfile(capabilities=frozenset({"edtis"}))  # type: ignore[arg-type]


def test_the_profile_declaration_is_where_the_capabilities_start() -> None:
    caps = Capabilities("bare", frozenset({"list"}))
    assert caps.has("list")
    assert not caps.has("remix")
    assert caps.summary()["list"] is None
    assert "bare" in (caps.summary()["remix"] or "")
    assert set(caps.summary()) == ALL_CAPABILITIES


@pytest.mark.parametrize(
    ("status", "code", "param", "id_in_path", "missing"),
    [
        (405, None, None, False, True),
        (501, None, None, True, True),
        (404, None, None, False, True),
        (404, "unknown_url", None, False, True),
        (404, "video_not_found", None, False, False),
        (404, None, "video", False, False),
        (404, None, None, True, False),
        (400, None, None, False, False),
    ],
)
def test_only_answers_about_the_route_count_as_a_missing_endpoint(
    status: int, code: str | None, param: str | None, id_in_path: bool, missing: bool
) -> None:
    exc = refusal(status, code=code, param=param)
    assert means_endpoint_missing(exc, id_in_path=id_in_path) is missing


@pytest.mark.anyio
async def test_a_405_teaches_the_client_and_the_next_call_is_refused_before_sending() -> None:
    sent: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.url.path)
        return httpx2.Response(405, json={"error": {"message": "Method Not Allowed"}})

    client = client_answering(handler)
    with pytest.raises(APIStatusError) as first:
        await client.extend_video("video_1", prompt="more", seconds=4)
    assert first.value.status_code == 405
    assert not client.capabilities.has("extensions")
    assert "405" in (client.capabilities.why_missing("extensions") or "")

    with pytest.raises(InvalidRequest):
        await client.extend_video("video_1", prompt="more", seconds=4)
    assert sent == ["/v1/videos/extensions"]
    assert client.capabilities.has("remix")  # learning is per capability


@pytest.mark.anyio
async def test_an_unknown_video_does_not_make_an_endpoint_look_missing() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        envelope = {"message": "No video found", "code": "video_not_found", "param": None}
        return httpx2.Response(404, json={"error": envelope})

    client = client_answering(handler)
    with pytest.raises(NotFoundError):
        await client.remix_video("video_gone", prompt="p")
    with pytest.raises(NotFoundError):
        await client.delete_video("video_gone")
    assert client.capabilities.has("remix")
    assert client.capabilities.has("delete")


def test_the_require_refusal_keeps_its_parameter_and_says_nothing_was_sent() -> None:
    caps = Capabilities("no-batches", frozenset())
    with pytest.raises(InvalidRequest) as refused:
        caps.require("batches", "run a native batch", advice="Use mode='direct'.", param="mode")
    assert refused.value.param == "mode"
    assert "nothing was sent" in str(refused.value)


def test_every_declared_fallback_names_a_known_capability() -> None:
    assert FALLBACKS
    for capability, fallback in FALLBACKS.items():
        assert capability in ALL_CAPABILITIES
        assert fallback.capability == capability
