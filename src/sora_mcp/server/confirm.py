"""Ask before spending: a billable call above SORA_MCP_CONFIRM_ABOVE_USD waits for the user's yes.

Each billable tool takes an approval parameter that a resolver of this module fills before the
tool body runs — the SDK's `Resolve`/`Elicit`, which asks inside an `InputRequiredResult` on
2026-07-28 connections and as an elicitation request on older ones. The body, and so the
billable request, runs once after the answer, or not at all:

- at or under the threshold, or with confirmation off (the emulator's default): no question;
- a client with form elicitation: the user sees the figures and accepts or declines;
- a client without: the call is refused with a quote and a single-use token bound to these
  exact arguments, valid for ten minutes; the repeated call passes it as `confirm_token`. The
  token is kept in the registry, so the repeat may reach any replica of a fleet.

Resolvers only decide; every refusal is raised by `require_consent` in the tool body as a
`SpendNotConfirmed`, so it reaches the client like any domain error (kind, code, token).
This module imports nothing from the rest of `server/`, so any of it can import this.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context, Elicit, Resolve
from pydantic import BaseModel, Field

from sora_mcp import catalog
from sora_mcp.batch.plan import BatchRequest, plan_batch
from sora_mcp.errors import SoraError, SpendNotConfirmed
from sora_mcp.registry.interface import RegistryStore
from sora_mcp.studio.budget import spent_today
from sora_mcp.studio.studio import Studio

TOKEN_TTL_SECONDS = 600

# No description of its own (tools/list has a budget): the not_confirmed answer that hands out a
# token says how to pass it, and so do the instructions when confirmation is on.
ConfirmToken = str | None


class SpendConsent(BaseModel):
    """The question the user answers."""

    start: bool = Field(
        default=True, title="Start it", description="Start the job and spend the amount shown."
    )


class Approval(BaseModel):
    """What a resolver answers when it did not ask the user: go ahead (`not_needed`, `token`),
    or refuse with a quote the user must confirm first (`quote`)."""

    how: Literal["not_needed", "token", "quote"]
    code: str = "confirmation_needed"
    message: str = ""
    token: str | None = None
    cost_usd: float | None = None


@dataclass(frozen=True)
class Quote:
    tool: str
    what: str
    """The job in a few words, e.g. '2 × 8 s sora-2-pro 1792x1024 clips'."""
    cost_usd: float | None
    """List-price estimate; None when the catalogue has no price (the backend may still bill)."""


def needs_confirmation(cost_usd: float | None, threshold: float | None) -> bool:
    """Above the threshold asks; 0 asks before every billable call, priced or not."""
    if threshold is None:
        return False
    if cost_usd is None:
        return threshold == 0
    return cost_usd > threshold + 1e-9


def issue_token(registry: RegistryStore, digest: str, now: float) -> str:
    """A single-use token for the call whose arguments hash to `digest`. Kept in the registry,
    so the repeated call may reach any replica of a fleet (a balancer without affinity)."""
    token = "cfm_" + secrets.token_urlsafe(12)  # recognisable in a transcript
    registry.issue_confirmation(token, digest, now + TOKEN_TTL_SECONDS)
    return token


def redeem_token(
    registry: RegistryStore, token: str, digest: str, now: float
) -> Literal["ok", "expired", "unknown", "other_call"]:
    """Use a token up; whatever the outcome, it cannot be used again (by any replica)."""
    entry = registry.redeem_confirmation(token)
    if entry is None:
        return "unknown"
    if entry[1] <= now:
        return "expired"
    return "ok" if secrets.compare_digest(entry[0], digest) else "other_call"


def require_consent(approval: ElicitationResult[SpendConsent]) -> None:
    """In a billable tool's body, before anything is sent: stop unless the spend was approved.

    Raises:
        SpendNotConfirmed: a quote to confirm first, or the user declined or dismissed it.
    """
    declined = (
        "Not sent: the user declined the cost. Nothing was billed. Offer something cheaper "
        "(shorter, fewer variations, sora-2) or ask what they want instead."
    )
    if isinstance(approval, AcceptedElicitation):
        data: Any = approval.data
        if isinstance(data, Approval) and data.how == "quote":
            raise SpendNotConfirmed(
                data.message, code=data.code, confirm_token=data.token, estimated_cost_usd=data.cost_usd
            )
        if isinstance(data, Approval) or (isinstance(data, SpendConsent) and data.start):
            return
        raise SpendNotConfirmed(declined, code="declined")
    if approval.action == "decline":
        raise SpendNotConfirmed(declined, code="declined")
    raise SpendNotConfirmed(
        "Not sent: the confirmation was dismissed. Nothing was billed; ask the user first.", code="dismissed"
    )


# ---- the resolvers, one per billable tool (each takes that tool's arguments by name) ----


async def ask_generate(
    ctx: Context[Any], model: str, size: str, seconds: int, variations: int, confirm_token: str | None
) -> Elicit[SpendConsent] | Approval:
    noun = "clip" if variations == 1 else "clips"
    cost = round(catalog.estimate_cost(model, size, seconds) * variations, 2)
    return await _gate(
        ctx, Quote("generate", f"{variations} × {seconds} s {model} {size} {noun}", cost), confirm_token
    )


async def ask_extend(
    ctx: Context[Any], video_id: str, seconds: int, confirm_token: str | None
) -> Elicit[SpendConsent] | Approval:
    source = _source(ctx, video_id)
    if source is None:
        return Approval(how="not_needed")  # the body refuses the unknown video before sending
    cost = catalog.estimate_cost(source.model, source.size, seconds)
    what = f"{seconds} s more of {video_id} ({source.model} {source.size})"
    return await _gate(ctx, Quote("extend", what, cost), confirm_token)


async def ask_edit(
    ctx: Context[Any], video_id: str, confirm_token: str | None
) -> Elicit[SpendConsent] | Approval:
    source = _source(ctx, video_id)
    if source is None:
        return Approval(how="not_needed")
    cost = catalog.estimate_cost(source.model, source.size, source.seconds)
    what = f"an edit of {video_id} ({source.seconds} s {source.model} {source.size})"
    return await _gate(ctx, Quote("edit", what, cost), confirm_token)


async def ask_create_character(
    ctx: Context[Any], name: str, confirm_token: str | None
) -> Elicit[SpendConsent] | Approval:
    what = f"uploading the character {name!r} (no list price; some backends bill it)"
    return await _gate(ctx, Quote("create_character", what, None), confirm_token)


async def ask_batch(
    ctx: Context[Any],
    requests: list[BatchRequest] | None,
    jsonl_path: str | None,
    dry_run: bool,
    confirm_token: str | None,
) -> Elicit[SpendConsent] | Approval:
    if dry_run or ctx.request_context.lifespan_context.settings.confirm_above_usd is None:
        return Approval(how="not_needed")  # nothing to ask: do not plan the batch twice
    try:
        plan = await plan_batch(_studio(ctx), requests=requests, jsonl_path=jsonl_path)
    except SoraError:
        return Approval(how="not_needed")  # the body reports every problem; nothing is sent
    return await _gate(
        ctx, Quote("batch", f"a batch of {len(plan.items)} clips", plan.total_cost), confirm_token
    )


GenerateApproval = Annotated[ElicitationResult[SpendConsent], Resolve(ask_generate)]
ExtendApproval = Annotated[ElicitationResult[SpendConsent], Resolve(ask_extend)]
EditApproval = Annotated[ElicitationResult[SpendConsent], Resolve(ask_edit)]
CharacterApproval = Annotated[ElicitationResult[SpendConsent], Resolve(ask_create_character)]
BatchApproval = Annotated[ElicitationResult[SpendConsent], Resolve(ask_batch)]


# ---- the decision shared by every billable tool ----


async def _gate(ctx: Context[Any], quote: Quote, token: str | None) -> Elicit[SpendConsent] | Approval:
    state = ctx.request_context.lifespan_context
    threshold: float | None = state.settings.confirm_above_usd
    if not needs_confirmation(quote.cost_usd, threshold):
        return Approval(how="not_needed")
    assert threshold is not None
    studio = _studio(ctx)
    digest = _call_digest(ctx)
    code, why = "confirmation_needed", ""
    if token is not None:
        outcome = redeem_token(studio.registry, token, digest, studio.clock.now())
        if outcome == "ok":
            return Approval(how="token")
        code, why = _TOKEN_TROUBLE[outcome]
    figures = _figures(studio, quote, threshold)
    if _can_elicit(ctx):
        return Elicit(f"{why}{figures} Start it?", SpendConsent)
    new_token = issue_token(studio.registry, digest, studio.clock.now())
    message = (
        f"Not sent: confirmation needed. {why}{figures} Ask the user. If they agree, call {quote.tool} "
        f'again with exactly the same arguments plus confirm_token="{new_token}" (works once, for 10 minutes).'
    )
    return Approval(how="quote", code=code, message=message, token=new_token, cost_usd=quote.cost_usd)


_TOKEN_TROUBLE = {
    "expired": ("token_expired", "That confirm_token has expired (tokens last 10 minutes). "),
    "unknown": ("token_unknown", "That confirm_token is unknown or already used. "),
    "other_call": ("token_mismatch", "That confirm_token was given for other arguments. "),
}


def _figures(studio: Studio, quote: Quote, threshold: float) -> str:
    price = (
        f"about ${quote.cost_usd:.2f} at list prices" if quote.cost_usd is not None else "an unknown amount"
    )
    spent = spent_today(studio.registry, studio.clock)
    where = " (the emulator: simulated, nothing is billed)" if studio.settings.is_emulator else ""
    return (
        f"{quote.tool}: {quote.what} would cost {price}{where}, above the ${threshold:.2f} that "
        f"SORA_MCP_CONFIRM_ABOVE_USD asks about; spent today: ${spent:.2f}."
    )


def _can_elicit(ctx: Context[Any]) -> bool:
    # The SDK's own rule: a bare `elicitation: {}` counts as form support; url-only does not.
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _call_digest(ctx: Context[Any]) -> str:
    """The call's tool and arguments (less the token): what a token stands for."""
    params = ctx.request_context.params or {}
    arguments = {k: v for k, v in (params.get("arguments") or {}).items() if k != "confirm_token"}
    canonical = json.dumps([params.get("name"), arguments], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _studio(ctx: Context[Any]) -> Studio:
    studio: Studio = ctx.request_context.lifespan_context.studio
    return studio


def _source(ctx: Context[Any], video_id: str) -> Any:
    try:
        return _studio(ctx).registry.get_video(video_id)
    except SoraError:
        return None
