"""Through a real LiteLLM proxy (pinned, own venv; see gateway.py): what the gateway does to the
wire, measured by the counting relay between it and the emulator."""

from __future__ import annotations

import httpx2
import pytest

from gateway import Gateway, litellm_gateway  # noqa: F401  (the session fixture)

CREATE = {"model": "sora-2", "prompt": "a lighthouse at dusk", "seconds": "4", "size": "720x1280"}


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
