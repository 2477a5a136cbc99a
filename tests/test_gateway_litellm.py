"""Through a real LiteLLM proxy (pinned, own venv; see gateway.py): what the gateway does to the
wire, measured by the counting relay between it and the emulator, and the whole production
through it over the MCP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp import Client

from backend_scenario import run_scenario
from gateway import Gateway, litellm_gateway  # noqa: F401  (the session fixture)
from helpers import structured, tool_error
from sora_mcp.config import Settings
from sora_mcp.server.app import build_server

CREATE = {"model": "sora-2", "prompt": "a lighthouse at dusk", "seconds": "4", "size": "720x1280"}


@asynccontextmanager
async def through(gateway: Gateway) -> AsyncIterator[Client]:
    settings = Settings.from_env(
        backend="remote", base_url=gateway.base_url, api_key=gateway.api_key, profile="litellm"
    )
    async with Client(build_server(settings)) as client:
        yield client


@pytest.mark.parametrize("status", [500, 429])
def test_the_gateway_resends_a_failed_create_upstream_unless_told_not_to(
    litellm_gateway: Gateway,  # noqa: F811  (the fixture imported above)
    status: int,
) -> None:
    relay = litellm_gateway.relay
    headers = {"Authorization": f"Bearer {litellm_gateway.api_key}"}
    with httpx2.Client(base_url=litellm_gateway.base_url, headers=headers, timeout=60) as client:
        mark = relay.mark()
        relay.fail_next(status, path="/v1/videos", retry_after=1)
        retried = client.post("/videos", json=CREATE)
        assert retried.status_code == 200, litellm_gateway.log_tail()
        assert relay.since(mark) == [("POST", "/v1/videos")] * 2

        mark = relay.mark()
        relay.fail_next(status, path="/v1/videos", retry_after=1)
        once = client.post("/videos", json=CREATE, headers={"x-litellm-num-retries": "0"})
        assert once.status_code == status
        assert relay.since(mark) == [("POST", "/v1/videos")]
    relay.clear_failures()


@pytest.mark.anyio
@pytest.mark.parametrize("status", [500, 429])
async def test_a_create_that_fails_upstream_reaches_it_exactly_once(
    litellm_gateway: Gateway,  # noqa: F811
    status: int,
) -> None:
    relay = litellm_gateway.relay
    async with through(litellm_gateway) as client:
        mark = relay.mark()
        relay.fail_next(status, path="/v1/videos")
        result = await client.call_tool("generate", {"prompt": "a buoy bobs in fog"})
        listed = structured(await client.call_tool("list_videos", {}))
    relay.clear_failures()
    assert [r for r in relay.since(mark) if r[0] == "POST"] == [("POST", "/v1/videos")]
    if status == 429:
        # Refused, so nothing was started: a plain error, nothing left behind.
        assert tool_error(result)["kind"] == "rate_limited"
    else:
        # The job may exist: answered as its record ('unknown', no id, the cost at risk), never
        # resent, and looked for on the backend by the server itself.
        answer = structured(result)
        assert [(v["status"], v["id"]) for v in answer["videos"]] == [("unknown", None)]
        assert answer["estimated_cost_usd"] > 0 and len(answer["errors"]) == 1
        assert [v["status"] for v in listed["videos"] if v["prompt"] == "a buoy bobs in fog"] == ["unknown"]


@pytest.mark.anyio
async def test_the_whole_production_runs_through_litellm_with_one_upstream_post_per_billable_call(
    litellm_gateway: Gateway,  # noqa: F811
) -> None:
    relay = litellm_gateway.relay
    mark = relay.mark()
    async with through(litellm_gateway) as client:
        steps = await run_scenario(client)
    posts = [path for method, path in relay.since(mark) if method == "POST"]
    # generate, extend (a new clip), edit (a new clip), the character, the clip starring it,
    # and the two batch items (direct): one upstream POST each, nothing re-sent.
    assert posts.count("/v1/videos") == 6, posts
    assert posts.count("/v1/videos/characters") == 1, posts
    assert len(posts) == 7, posts
    assert steps["extend"]["fallback"] and steps["thumbnail"]["fallback"] and steps["edit"]["fallback"]
    assert steps["batch"]["mode"] == "direct"
    assert steps["delete"]["remote"] == "unsupported"
    assert len(steps["generate"]["id"]) >= 150
