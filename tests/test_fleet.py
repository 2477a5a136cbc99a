"""Several real `sora-mcp serve --transport http` processes (each with its own home, as on
separate hosts) sharing one PostgreSQL registry and one backend (the standalone emulator),
reached through a counting, fault-injecting relay where a test needs one."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import psycopg
import pytest
from mcp import Client, MCPError
from mcp.client.context import ClientRequestContext
from mcp.types import INVALID_PARAMS, CallToolResult, ElicitRequestParams, ElicitResult

from fleet_relay import Faults, balancer, relay
from helpers import error_code, structured
from procs import child_env, free_port, wait_until
from sora_mcp.registry.postgres import PostgresRegistry
from sora_mcp.registry.records import VideoRecord

pytestmark = pytest.mark.anyio

CLIP: dict[str, Any] = {
    "prompt": "a paper boat on a rain gutter",
    "model": "sora-2",
    "seconds": 4,
    "size": "720x1280",
}
CLIP_COST = 0.40  # sora-2, 4 s
API_KEY = "sk-fleet-test"


@dataclass
class Replica:
    url: str
    proc: subprocess.Popen[bytes]


def _port_open(port: int) -> bool:
    try:
        with httpx2.Client(timeout=1) as http:
            http.get(f"http://127.0.0.1:{port}/")
    except httpx2.TransportError:
        return False
    return True


@contextmanager
def _process(
    args: list[str], env: dict[str, str], log: Path
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`python -m sora_mcp ARGS --port N` until the block ends (killed if it will not stop)."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sora_mcp", *args, "--port", str(port)], env=env, stderr=out
        )
    try:
        # Several Python processes start at once on a small shared machine: allow them time.
        wait_until(lambda: proc.poll() is not None or _port_open(port), 60, f"sora-mcp {args[0]} to listen")
        assert proc.poll() is None, log.read_text()
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@contextmanager
def _emulator(tmp_path: Path, speed: float = 400) -> Iterator[str]:
    """The standalone emulator: the one backend of the fleet; yields its base URL."""
    env = child_env(tmp_path / "emulator")
    with _process(["emulator", "--speed", str(speed)], env, tmp_path / "emulator.log") as (port, _proc):
        yield f"http://127.0.0.1:{port}/v1"


@contextmanager
def _replicas(
    tmp_path: Path, postgres_url: str, count: int, backend: str, **extra: str
) -> Iterator[list[Replica]]:
    """`count` HTTP servers on one registry and one backend, each with its own home."""
    with ExitStack() as stack:
        replicas = []
        for n in range(count):
            env = child_env(
                tmp_path / f"host{n}",
                400,
                SORA_MCP_REGISTRY_URL=postgres_url,
                SORA_MCP_BACKEND="remote",
                OPENAI_BASE_URL=backend,
                OPENAI_API_KEY=API_KEY,
                # Spending is guarded by the budget here; asking the user is a test of its own.
                **({"SORA_MCP_CONFIRM_ABOVE_USD": "off"} | extra),
            )
            args = ["serve", "--transport", "http"]
            port, proc = stack.enter_context(_process(args, env, tmp_path / f"server{n}.log"))
            replicas.append(Replica(f"http://127.0.0.1:{port}/mcp", proc))
        yield replicas


def _backend_jobs(backend: str) -> list[dict[str, Any]]:
    """Every job the backend holds (all pages): what was really sent, and billed."""
    jobs: list[dict[str, Any]] = []
    with httpx2.Client(base_url=backend, timeout=30, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100} | ({"after": after} if after else {})
            page = http.get("/videos", params=params)
            page.raise_for_status()
            body = page.json()
            jobs += body["data"]
            if not body.get("has_more") or not body["data"]:
                return jobs
            after = body["data"][-1]["id"]


def _leases(postgres_url: str) -> dict[str, int]:
    """Live leases per owner ("host:pid:…")."""
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT lease_owner, count(*) FROM videos WHERE lease_owner IS NOT NULL GROUP BY lease_owner"
        ).fetchall()
    return {str(owner): int(n) for owner, n in rows}


def _busiest(postgres_url: str, replicas: list[Replica]) -> Replica:
    """The replica holding the most leases right now."""
    found: dict[str, int] = {}
    wait_until(lambda: bool(found.update(_leases(postgres_url)) or found), 60, "a replica to hold a lease")
    owner = max(found, key=lambda o: found[o])
    pid = int(owner.split(":")[1])
    return next(r for r in replicas if r.proc.pid == pid)


async def _call(url: str, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    async with Client(url) as client:
        return await client.call_tool(tool, arguments)


async def test_eight_concurrent_generates_on_four_servers_never_spend_past_a_budget_that_fits_three(
    tmp_path: Path, postgres_url: str
) -> None:
    results: list[CallToolResult] = []
    budget = f"{3 * CLIP_COST:.2f}"
    with (
        _emulator(tmp_path) as backend,
        _replicas(tmp_path, postgres_url, 4, backend, SORA_MCP_BUDGET_USD=budget) as replicas,
    ):

        async def one(n: int) -> None:
            results.append(await _call(replicas[n % 4].url, "generate", {**CLIP, "prompt": f"boat {n}"}))

        with anyio.fail_after(120):
            async with anyio.create_task_group() as group:
                for n in range(8):
                    group.start_soon(one, n)
        jobs = _backend_jobs(backend)

    accepted = [r for r in results if not r.is_error]
    refused = [error_code(r)[0] for r in results if r.is_error]
    assert len(jobs) == len(accepted) == 3
    assert refused == ["daily_limit"] * 5
    with PostgresRegistry.open(postgres_url) as registry:
        spent = sum(r.estimated_cost_usd for r in registry.videos_since(0))
        assert sorted(r.id or "" for r in registry.videos_since(0)) == sorted(j["id"] for j in jobs)
    assert spent <= 3 * CLIP_COST + 1e-9


async def test_a_retried_call_with_the_same_key_on_another_server_returns_the_same_job_and_sends_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    arguments = {**CLIP, "idempotency_key": "ad-variant-7"}
    with _emulator(tmp_path) as backend, _replicas(tmp_path, postgres_url, 2, backend) as replicas:
        with anyio.fail_after(120):
            first = structured(await _call(replicas[0].url, "generate", arguments))
            sent_after_first = len(_backend_jobs(backend))
            again = structured(await _call(replicas[1].url, "generate", arguments))
            same_server = structured(await _call(replicas[0].url, "generate", arguments))
            other_key = structured(
                await _call(replicas[1].url, "generate", {**arguments, "idempotency_key": "ad-8"})
            )
        jobs = _backend_jobs(backend)

    first_ids = [v["id"] for v in first["videos"]]
    assert len(first_ids) == 1 and first_ids[0]
    assert [v["id"] for v in again["videos"]] == first_ids
    assert [v["id"] for v in same_server["videos"]] == first_ids
    # The very record of the first call (its local id too), not a lookalike.
    assert (
        again["videos"][0]["local_id"]
        == same_server["videos"][0]["local_id"]
        == first["videos"][0]["local_id"]
    )
    assert [v["id"] for v in other_key["videos"]] != first_ids
    assert (sent_after_first, len(jobs)) == (1, 2)


async def test_a_replica_answers_for_work_another_replica_started(tmp_path: Path, postgres_url: str) -> None:
    with _emulator(tmp_path) as backend, _replicas(tmp_path, postgres_url, 2, backend) as replicas:
        with anyio.fail_after(120):
            started = structured(await _call(replicas[0].url, "generate", CLIP))
            video_id = started["videos"][0]["id"]
            followed = structured(
                await _call(replicas[1].url, "get_video", {"video_id": video_id, "wait_seconds": 60})
            )
            listed = structured(await _call(replicas[0].url, "list_videos", {}))

    assert followed["video"]["status"] == "completed"
    assert [v["id"] for v in listed["videos"]] == [video_id]
    assert listed["videos"][0]["status"] == "completed"


async def test_four_servers_fifty_generates_each_through_lost_answers_and_5xx_bill_each_call_once(
    tmp_path: Path, postgres_url: str
) -> None:
    faults = Faults(drop=0.10, server_error=0.10)
    calls = 4 * 50
    with _emulator(tmp_path) as backend, relay(backend, faults) as (relayed, counts):
        with _replicas(tmp_path, postgres_url, 4, relayed) as replicas:
            limiter = anyio.CapacityLimiter(8)  # a small shared machine: 8 calls in flight

            async def one(n: int) -> None:
                async with limiter:
                    await _call(replicas[n % 4].url, "generate", {**CLIP, "prompt": f"shot {n:03d}"})

            with anyio.fail_after(600):
                async with anyio.create_task_group() as group:
                    for n in range(calls):
                        group.start_soon(one, n)
                # What the README advises after a lost answer: get_video on the local id, on
                # any replica; it looks for the job in the backend's list (never resends).
                with PostgresRegistry.open(postgres_url) as registry:
                    lost = [r.local_id for r in registry.videos_since(0) if r.id is None]
                for n, local_id in enumerate(lost):
                    await _call(replicas[n % 4].url, "get_video", {"video_id": local_id})
        jobs = _backend_jobs(backend)

    with PostgresRegistry.open(postgres_url) as registry:
        records = registry.videos_since(0)
    attached = [r.id for r in records if r.id is not None]
    assert counts.creates == calls  # billable POSTs = calls: none resent
    assert counts.dropped > 0 and counts.server_errors > 0
    assert max(counts.prompts.values()) == 1  # no prompt reached the backend twice
    assert len(jobs) == counts.forwarded
    assert sorted(attached) == sorted(j["id"] for j in jobs)  # 0 jobs without a record
    assert len(set(attached)) == len(attached)


async def test_a_direct_batch_across_three_replicas_completes_once_each_when_the_busiest_is_killed(
    tmp_path: Path, postgres_url: str
) -> None:
    items = [{**CLIP, "prompt": f"frame {n:02d} of the kite", "custom_id": f"k{n:02d}"} for n in range(60)]
    lease = {"SORA_MCP_BATCH_LEASE_SECONDS": "3"}
    with _emulator(tmp_path) as backend, relay(backend, Faults(delay=0.25)) as (relayed, counts):
        with _replicas(tmp_path, postgres_url, 3, relayed, **lease) as replicas, anyio.fail_after(300):
            started = structured(await _call(replicas[0].url, "batch", {"requests": items, "mode": "direct"}))
            senders: set[str] = set()

            # Meanwhile, note which replicas hold leases: the fleet shares the batch.
            def twenty_sent() -> bool:
                senders.update(_leases(postgres_url))
                return counts.creates >= 20

            wait_until(twenty_sent, 120, "20 sends")
            busiest = _busiest(postgres_url, replicas)
            busiest.proc.kill()  # SIGKILL: no cleanup; its leases simply stop being renewed
            busiest.proc.wait(timeout=10)
            survivor = next(r for r in replicas if r is not busiest)
            done: dict[str, Any] = {"still_running": True}
            while done["still_running"]:
                arguments = {"batch_id": started["batch_id"], "wait_seconds": 60}
                done = structured(await _call(survivor.url, "get_batch", arguments))
        jobs = _backend_jobs(backend)

    statuses = Counter(item["status"] for item in done["items"].values())
    assert statuses == {"completed": 60}
    assert counts.creates == 60 and max(counts.prompts.values()) == 1  # every item sent exactly once
    assert sorted(j["prompt"] for j in jobs) == sorted(i["prompt"] for i in items)
    assert sorted(item["video_id"] for item in done["items"].values()) == sorted(j["id"] for j in jobs)
    assert len(senders) >= 2  # more than one replica sent items


def _start_job(backend: str, prompt: str) -> dict[str, Any]:
    """A job started straight on the backend, as by a server that died before recording more."""
    with httpx2.Client(base_url=backend, timeout=30, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        answer = http.post("/videos", json={**CLIP, "prompt": prompt, "seconds": "4"})
        answer.raise_for_status()
        job: dict[str, Any] = answer.json()
    return job


def _left_running(postgres_url: str, backend_label: str, jobs: list[dict[str, Any]], lost: int) -> list[str]:
    """The registry as dead servers left it: jobs recorded with their ids, and the last `lost`
    ones without (their answers never came back). Returns the local ids."""
    local_ids = []
    with PostgresRegistry.open(postgres_url) as registry:
        for n, job in enumerate(jobs):
            at = float(job["created_at"])
            answered = n < len(jobs) - lost
            intent = VideoRecord(
                local_id=f"left-{n}",
                backend=backend_label,
                model=str(CLIP["model"]),
                prompt=job["prompt"],
                size=str(CLIP["size"]),
                seconds=4,
                status="submitting" if answered else "unknown",
                created_at=at,
                updated_at=at,
                estimated_cost_usd=CLIP_COST,
            )
            registry.record_intent(intent)
            if answered:
                registry.record_submitted(
                    intent.local_id,
                    video_id=job["id"],
                    status=job["status"],
                    progress=0,
                    remote_created_at=job["created_at"],
                )
            local_ids.append(intent.local_id)
    return local_ids


def _all_downloaded(postgres_url: str, local_ids: list[str]) -> bool:
    with PostgresRegistry.open(postgres_url) as registry:
        records = [registry.get_video(local_id) for local_id in local_ids]
    return all(
        r is not None and r.status == "completed" and Path(r.files.get("video", "")).is_file()
        for r in records
    )


async def test_every_replica_resumes_and_each_video_left_running_is_followed_and_downloaded_by_one(
    tmp_path: Path, postgres_url: str
) -> None:
    with _emulator(tmp_path, speed=2) as backend, relay(backend) as (relayed, counts):
        jobs = [_start_job(backend, f"lantern {n} drifts downriver") for n in range(8)]
        local_ids = _left_running(postgres_url, urlsplit(relayed).netloc, jobs, lost=2)
        with _replicas(tmp_path, postgres_url, 3, relayed):  # each resumes what it finds at start
            wait_until(lambda: _all_downloaded(postgres_url, local_ids), 240, "every video downloaded")
    with PostgresRegistry.open(postgres_url) as registry:
        records = [registry.get_video(local_id) for local_id in local_ids]

    assert [r.id for r in records if r is not None] == [job["id"] for job in jobs]  # lost ones found
    fetched = Counter(
        path.split("/videos/")[1].split("/")[0]
        for (method, path), n in counts.requests.items()
        for _ in range(n)
        if method == "GET" and "/content" in path and "variant=video" in path
    )
    assert fetched == {job["id"]: 1 for job in jobs}  # each MP4 fetched once, fleet-wide
    homes = Counter(
        next(n for n in range(3) if Path(r.files["video"]).is_relative_to(tmp_path / f"host{n}"))
        for r in records
        if r is not None
    )
    assert len(homes) >= 2  # the work was shared: more than one replica followed videos
    assert counts.creates == 0  # nothing was sent again


class _Agrees:
    """A user who agrees to every spending question, counting them."""

    def __init__(self) -> None:
        self.asked = 0

    async def __call__(self, _context: ClientRequestContext, _params: ElicitRequestParams) -> ElicitResult:
        self.asked += 1
        return ElicitResult(action="accept", content={"start": True})


@pytest.mark.parametrize("shared", [True, False], ids=["same keys", "own keys"])
async def test_a_question_asked_on_one_replica_is_answered_on_another_only_with_shared_state_keys(
    tmp_path: Path, postgres_url: str, shared: bool
) -> None:
    user = _Agrees()
    outcome: CallToolResult | MCPError
    for n in range(2):
        (tmp_path / f"site{n}").mkdir()
    with _emulator(tmp_path) as backend, relay(backend) as (relayed, counts), ExitStack() as stack:
        replicas = [
            stack.enter_context(
                _replicas(
                    tmp_path / f"site{n}",
                    postgres_url,
                    1,
                    relayed,
                    SORA_MCP_CONFIRM_ABOVE_USD="0.1",  # a $0.40 clip asks first
                    SORA_MCP_REQUEST_STATE_KEYS=("k" if shared else str(n)) * 40,
                )
            )[0]
            for n in range(2)
        ]
        with balancer(replicas[0].url, replicas[1].url) as (url, served), anyio.fail_after(60):
            async with Client(url, elicitation_callback=user, mode="2026-07-28") as client:  # type: ignore[arg-type]
                try:
                    outcome = await client.call_tool("generate", CLIP)
                except MCPError as exc:
                    outcome = exc

    assert user.asked == 1 and served[replicas[1].url] == 1  # asked on one, answered on the other
    if shared:
        assert isinstance(outcome, CallToolResult) and len(structured(outcome)["videos"]) == 1
        assert counts.creates == 1
    else:  # the other replica cannot open the state the first sealed: refused, nothing sent
        assert isinstance(outcome, MCPError) and outcome.code == INVALID_PARAMS
        assert counts.creates == 0
